"""OHTA: one-shot animatable hand avatars (MANO-HD, PairOF, texture field, volume rendering)."""
