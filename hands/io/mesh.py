"""Mesh export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hands.io.atomic import atomic_write_bytes


def save_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray, overwrite: bool = False) -> Path:
    """Write a triangle mesh (V,3) / (F,3) 0-based as Wavefront OBJ (atomically)."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64)]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode(), overwrite)
