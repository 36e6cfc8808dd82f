"""Rotation representations: axis-angle, rotation matrix, quaternion (w, x, y, z) and 6D.

All functions are batched over leading dimensions, differentiable, and keep the input's dtype and device.
Axis-angle vectors have the rotation angle (radians) as their norm.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

SixDLayout = Literal["columns", "rows"]


def _check_last_dims(x: Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(x.shape[x.dim() - len(shape):]) != shape or x.dim() < len(shape):
        raise ValueError(f"{name}: expected shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


# skew(v) = v @ _SKEW_BASIS: one matmul instead of nine stacked entries (Rodrigues is a hot path).
_SKEW_BASIS = torch.tensor(
    [[[0, 0, 0], [0, 0, -1], [0, 1, 0]], [[0, 0, 1], [0, 0, 0], [-1, 0, 0]], [[0, -1, 0], [1, 0, 0], [0, 0, 0]]],
    dtype=torch.float64,
).reshape(3, 9)


def skew(v: Tensor) -> Tensor:
    """Cross-product matrices `[v]_x` of vectors `(..., 3)` -> `(..., 3, 3)`."""
    _check_last_dims(v, (3,), "skew")
    return (v @ _SKEW_BASIS.to(dtype=v.dtype, device=v.device)).view(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula: `(..., 3)` axis-angle -> `(..., 3, 3)` rotation matrices.

    R = cos(t) I + sin(t)/t [k]x + (1 - cos t)/t^2 k k^T, with 1 - cos t = 2 sin^2(t/2) for precision at small
    angles and t softened by 1e-16 under the square root so values and gradients stay finite at the identity.
    """
    _check_last_dims(axis_angle, (3,), "axis_angle_to_matrix")
    theta = ((axis_angle * axis_angle).sum(-1, keepdim=True) + 1e-16).sqrt().unsqueeze(-1)
    sin_half = torch.sin(0.5 * theta)
    one_minus_cos = 2.0 * sin_half * sin_half
    k = skew(axis_angle)
    outer = axis_angle.unsqueeze(-1) * axis_angle.unsqueeze(-2)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return (1.0 - one_minus_cos) * eye + (torch.sin(theta) / theta) * k + (one_minus_cos / (theta * theta)) * outer


def matrix_to_quaternion(matrix: Tensor) -> Tensor:
    """`(..., 3, 3)` rotation matrices -> unit quaternions `(..., 4)` as (w, x, y, z) with w >= 0."""
    _check_last_dims(matrix, (3, 3), "matrix_to_quaternion")
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate solutions; the one with the largest denominator is numerically the best.
    q_abs_sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    q_abs = q_abs_sq.clamp_min(1e-12).sqrt()
    candidates = torch.stack(
        [
            torch.stack([q_abs_sq[..., 0], m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], q_abs_sq[..., 1], m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], q_abs_sq[..., 2], m[..., 2, 1] + m[..., 1, 2]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2], q_abs_sq[..., 3]], -1),
        ],
        dim=-2,
    ) / (2.0 * q_abs[..., None])
    best = q_abs.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_matrix(quaternion: Tensor) -> Tensor:
    """(w, x, y, z) quaternions `(..., 4)` (normalised here) -> `(..., 3, 3)` rotation matrices."""
    _check_last_dims(quaternion, (4,), "quaternion_to_matrix")
    w, x, y, z = (quaternion / quaternion.norm(dim=-1, keepdim=True)).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(*quaternion.shape[:-1], 3, 3)


def quaternion_to_axis_angle(quaternion: Tensor) -> Tensor:
    """(w, x, y, z) quaternions `(..., 4)` -> axis-angle `(..., 3)` with angle in [0, pi]."""
    _check_last_dims(quaternion, (4,), "quaternion_to_axis_angle")
    q = quaternion / quaternion.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    half = torch.atan2(sin_half, q[..., :1])
    small = sin_half < 1e-6
    # angle / sin(angle/2) -> 2 + angle^2/12 as angle -> 0
    scale = torch.where(small, 2.0 + (2 * half) ** 2 / 12.0, 2.0 * half / torch.where(small, torch.ones_like(sin_half), sin_half))
    return xyz * scale


def axis_angle_to_quaternion(axis_angle: Tensor) -> Tensor:
    """Axis-angle `(..., 3)` -> (w, x, y, z) unit quaternions `(..., 4)`."""
    _check_last_dims(axis_angle, (3,), "axis_angle_to_quaternion")
    angle = axis_angle.norm(dim=-1, keepdim=True)
    small = angle < 1e-6
    safe = torch.where(small, torch.ones_like(angle), angle)
    sin_half_over_angle = torch.where(small, 0.5 - angle**2 / 48.0, torch.sin(0.5 * safe) / safe)
    return torch.cat([torch.cos(0.5 * angle), axis_angle * sin_half_over_angle], dim=-1)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """`(..., 3, 3)` rotation matrices -> axis-angle `(..., 3)` (via quaternions; stable near 0 and pi)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rotation_6d_to_matrix(rot6d: Tensor, layout: SixDLayout = "columns") -> Tensor:
    """6D rotation (Zhou et al. 2019) `(..., 6)` -> `(..., 3, 3)` by Gram-Schmidt.

    layout="columns": the 6 numbers are a row-major 3x2 matrix whose columns are the first two matrix columns
    (the SPIN/HMR/ACR convention). layout="rows": the first 3 numbers are the first matrix row, the next 3 the
    second row (the pytorch3d convention).
    """
    _check_last_dims(rot6d, (6,), "rotation_6d_to_matrix")
    if layout == "columns":
        pair = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
        a1, a2 = pair[..., 0], pair[..., 1]
    elif layout == "rows":
        a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    else:
        raise ValueError(f"rotation_6d_to_matrix: layout must be 'columns' or 'rows', got {layout!r}")
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    stacked = torch.stack([b1, b2, b3], dim=-1)  # columns
    return stacked if layout == "columns" else stacked.transpose(-1, -2)


def matrix_to_rotation_6d(matrix: Tensor, layout: SixDLayout = "columns") -> Tensor:
    """`(..., 3, 3)` rotation matrices -> 6D `(..., 6)`; inverse of `rotation_6d_to_matrix` for each layout."""
    _check_last_dims(matrix, (3, 3), "matrix_to_rotation_6d")
    if layout == "columns":
        return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)
    if layout == "rows":
        return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)
    raise ValueError(f"matrix_to_rotation_6d: layout must be 'columns' or 'rows', got {layout!r}")


def axis_angle_to_rotation_6d(axis_angle: Tensor, layout: SixDLayout = "columns") -> Tensor:
    """Axis-angle `(..., 3)` -> 6D `(..., 6)`."""
    return matrix_to_rotation_6d(axis_angle_to_matrix(axis_angle), layout)


def rotation_6d_to_axis_angle(rot6d: Tensor, layout: SixDLayout = "columns") -> Tensor:
    """6D `(..., 6)` -> axis-angle `(..., 3)`."""
    return matrix_to_axis_angle(rotation_6d_to_matrix(rot6d, layout))
