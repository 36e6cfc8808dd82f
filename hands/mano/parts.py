"""16-part labels of the hand surface: part k = the vertices whose largest skinning weight is MANO joint k."""

from __future__ import annotations

import numpy as np

NUM_PARTS = 16


def part_labels(weights: np.ndarray) -> np.ndarray:
    """Per-vertex part ids (V,) in 0..15 from skinning weights (V,16); equal to MANO joint ids."""
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape[1] != NUM_PARTS:
        raise ValueError(f"part_labels: weights should have shape (V, 16), got {weights.shape}")
    return weights.argmax(axis=1).astype(np.int64)


def face_part_labels(weights: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face part ids (F,): the part with the largest summed skinning weight over the face's three vertices."""
    return np.asarray(weights)[np.asarray(faces)].sum(axis=1).argmax(axis=1).astype(np.int64)
