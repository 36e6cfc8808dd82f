"""AttentionHand (ECCV'24): text- and mesh-conditioned hand image generation on diffusers."""
