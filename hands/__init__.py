"""hands: one research codebase for human hands (MANO, rendering, InterHand2.6M, ACR, AttentionHand, OHTA)."""

__version__ = "0.1.0"
