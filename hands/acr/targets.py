"""Training targets of ACR (reference/acr.md A2/A3; ROMP's centre maps): weak-perspective cameras, centre heatmaps.

Coordinates are ACR's normalised image coordinates of the square (padded) input: -1 and +1 are the image edges,
so pixel u = (x_n + 1) S / 2 - 0.5 for an S x S input.
"""

from __future__ import annotations

import numpy as np

CENTRE_MAP_SIZE = 64
COLLISION_FACTOR = 0.2


def to_normalised(pixels: np.ndarray, size: int) -> np.ndarray:
    """Pixels (...,2) of an S x S image -> normalised [-1, 1] coordinates."""
    return (np.asarray(pixels, dtype=np.float64) + 0.5) / (size / 2) - 1


def fit_weak_perspective(joints_3d: np.ndarray, joints_2d: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Least-squares (s, tx, ty) with s * X_xy + t ~ x_n over the valid joints; joints_3d (J,3) meters (any
    origin: t absorbs it), joints_2d (J,2) normalised. Returns (3,); zeros when fewer than 2 joints are valid."""
    valid = np.ones(len(joints_3d), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.sum() < 2:
        return np.zeros(3)
    X, x = joints_3d[valid, :2], joints_2d[valid]
    n = len(X)
    # unknowns (s, tx, ty): rows [X_x, 1, 0] -> x_x and [X_y, 0, 1] -> x_y
    A = np.zeros((2 * n, 3))
    A[:n, 0], A[:n, 1] = X[:, 0], 1.0
    A[n:, 0], A[n:, 2] = X[:, 1], 1.0
    b = np.concatenate([x[:, 0], x[:, 1]])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def centre_radius(box_size_normalised: np.ndarray, map_size: int = CENTRE_MAP_SIZE) -> int:
    """Heatmap radius in cells from the hand box's normalised (h, w): |hw / 2| * size / 16 + size / 32 (ROMP)."""
    return int(np.linalg.norm(np.asarray(box_size_normalised, dtype=np.float64) / 2) * map_size / 16 + map_size / 32)


def centre_cell(centre: np.ndarray, map_size: int = CENTRE_MAP_SIZE) -> tuple[int, int]:
    """(x, y) cell of a normalised centre."""
    return int((centre[0] + 1) / 2 * map_size), int((centre[1] + 1) / 2 * map_size)


def centre_heatmap(centre: np.ndarray, radius: int, map_size: int = CENTRE_MAP_SIZE) -> np.ndarray:
    """(map_size, map_size) float32: a Gaussian of diameter 2r+1 and sigma diameter/6 at the centre's cell, peak 1.
    All zeros when the centre lies outside the map."""
    heatmap = np.zeros((map_size, map_size), dtype=np.float32)
    x, y = centre_cell(centre, map_size)
    if not (0 <= x < map_size and 0 <= y < map_size):
        return heatmap
    sigma = (2 * radius + 1) / 6
    ys, xs = np.mgrid[0:map_size, 0:map_size]
    gaussian = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    window = (np.abs(xs - x) <= radius) & (np.abs(ys - y) <= radius)
    heatmap[window] = gaussian[window]
    heatmap[y, x] = 1.0
    return heatmap


def separate_centres(centres: np.ndarray, radii: np.ndarray, map_size: int = CENTRE_MAP_SIZE,
                     factor: float = COLLISION_FACTOR) -> np.ndarray:
    """ROMP's collision-aware centres for two hands (2,2): when their Gaussians would overlap, push both apart
    symmetrically along the line between them; results are kept inside (-0.96, 0.96)."""
    centres = np.array(centres, dtype=np.float64)
    gap = np.linalg.norm(centres[1] - centres[0]) + 1e-4
    least = (radii[0] + radii[1] + 1) / map_size * 2
    if gap < least:
        offset = abs((least - gap) / gap) * (centres[1] - centres[0] + 1e-4) * factor
        centres[0] -= offset / 2
        centres[1] += offset / 2
    return np.clip(centres, -0.96, 0.96)
