"""Camera translation of a posed, camera-aligned point set from its 2D projections (pinhole, OpenCV axes)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor


def solve_translation(joints: Tensor, keypoints: Tensor, K: Tensor) -> Tensor:
    """Translation (B,3), meters, minimising the algebraic projection error of camera-aligned points (B,N,3) + t
    onto pixels (B,N,2) under intrinsics (B,3,3): a linear least-squares solve, exact for noise-free data."""
    f = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]  # (B,1,2)
    centred = keypoints - K[:, None, :2, 2]  # u - c
    B, N = joints.shape[:2]
    A = joints.new_zeros(B, N, 2, 3)
    A[..., 0, 0], A[..., 1, 1] = f[..., 0], f[..., 1]
    A[..., :, 2] = -centred
    b = centred * joints[..., 2:] - f * joints[..., :2]
    return torch.linalg.lstsq(A.reshape(B, 2 * N, 3), b.reshape(B, 2 * N, 1)).solution[..., 0]


def solve_translation_pnp(joints: np.ndarray, keypoints: np.ndarray, K: np.ndarray, min_points: int = 4,
                          reprojection_error: float = 20.0, iterations: int = 100,
                          min_y: float = -2.0) -> np.ndarray | None:
    """ACR's mesh placement (acr/utils.py estimate_translation): OpenCV's RANSAC PnP (EPnP, `reprojection_error`
    px, `iterations`) between joints (N,3) in meters and keypoints (N,2) in pixels, keeping the translation it
    finds. Keypoints with y <= `min_y` px are left out, as the release does; with fewer than `min_points` left
    the answer is None (the release stops with an error there). When RANSAC finds no inliers or OpenCV fails, the
    linear least-squares translation of the kept points is returned, as in the release. Arrays as float32."""
    joints = np.asarray(joints, dtype=np.float32)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    keep = keypoints[:, 1] > min_y
    if keep.sum() < min_points:
        return None
    try:
        _, _, tvec, inliers = cv2.solvePnPRansac(joints[keep], keypoints[keep], np.asarray(K, dtype=np.float64), None,
                                                 flags=cv2.SOLVEPNP_EPNP, reprojectionError=reprojection_error,
                                                 iterationsCount=iterations)
    except cv2.error:
        inliers = None
    if inliers is not None:
        return tvec[:, 0].astype(np.float64)
    t = solve_translation(torch.from_numpy(joints[keep]).double()[None], torch.from_numpy(keypoints[keep]).double()[None],
                          torch.as_tensor(K, dtype=torch.float64)[None])
    return t[0].numpy()
