"""Hand errors per sample: MPJPE, MPVPE and their Procrustes-aligned versions, MRRPE, handedness accuracy, 2D PCK.

All take positions in any one unit (meters in this project) and return per-sample errors in that unit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hands.eval.alignment import procrustes_align


def _mean_over_valid(errors: Tensor, valid: Tensor | None) -> Tensor:
    if valid is None:
        return errors.mean(dim=1)
    valid = valid.to(errors)
    return (errors * valid).sum(1) / valid.sum(1).clamp_min(1)


def mean_per_point_error(pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean Euclidean distance (B,) over the (valid) points of pred, gt (B,N,3); valid (B,N)."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ in shape")
    return _mean_over_valid((pred - gt).norm(dim=-1), valid)


def mpjpe(pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean per-joint position error (B,) of already aligned joints (B,J,3)."""
    return mean_per_point_error(pred, gt, valid)


def mpvpe(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean per-vertex position error (B,) of already aligned vertices (B,V,3)."""
    return mean_per_point_error(pred, gt)


def pa_mpjpe(pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> Tensor:
    """MPJPE (B,) after Procrustes (scale, rotation, translation) alignment on the valid joints."""
    return mean_per_point_error(procrustes_align(pred, gt, valid), gt, valid)


def pa_mpvpe(pred: Tensor, gt: Tensor) -> Tensor:
    """MPVPE (B,) after Procrustes alignment of the vertices."""
    return mean_per_point_error(procrustes_align(pred, gt), gt)


def mrrpe(pred_right_root: Tensor, pred_left_root: Tensor, gt_right_root: Tensor, gt_left_root: Tensor) -> Tensor:
    """Mean relative-root position error (B,): |(left - right)_pred - (left - right)_gt|, roots (B,3)."""
    return ((pred_left_root - pred_right_root) - (gt_left_root - gt_right_root)).norm(dim=-1)


def handedness_correct(pred_hand_type: Tensor, gt_hand_type: Tensor, threshold: float = 0.5) -> Tensor:
    """(B,) bool: both presence scores [right, left] (B,2) on the right side of `threshold` (InterNet)."""
    return ((pred_hand_type > threshold) == (gt_hand_type > threshold)).all(dim=-1)


def pck_2d(pred: Tensor, gt: Tensor, fraction: float, valid: Tensor | None = None) -> Tensor:
    """Percentage of correct keypoints (B,): the share of keypoints (B,N,2) within `fraction` of the larger side of
    the ground truth's bounding box, over the valid (B,N) ones."""
    lo = torch.where(valid[..., None], gt, torch.inf).amin(1) if valid is not None else gt.amin(1)
    hi = torch.where(valid[..., None], gt, -torch.inf).amax(1) if valid is not None else gt.amax(1)
    threshold = fraction * (hi - lo).amax(-1)
    correct = ((pred - gt).norm(dim=-1) < threshold[:, None]).to(pred.dtype)
    return _mean_over_valid(correct, valid)
