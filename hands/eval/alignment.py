"""Alignments used before measuring 3D errors: root, scale and Procrustes (similarity) alignment."""

from __future__ import annotations

import torch
from torch import Tensor


def similarity_transform(source: Tensor, target: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Scale s (B,), rotation R (B,3,3) and translation t (B,3) minimising sum w |s R x + t - y|^2 (Umeyama).

    source, target (B,N,3); weights (B,N) >= 0 (e.g. joint validity), default all ones.
    """
    if source.shape != target.shape or source.dim() != 3 or source.shape[-1] != 3:
        raise ValueError(f"similarity_transform: expected two (B, N, 3) tensors, got {tuple(source.shape)} and {tuple(target.shape)}")
    w = torch.ones(source.shape[:2], dtype=source.dtype, device=source.device) if weights is None else weights.to(source)
    w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
    mu_x = (w[..., None] * source).sum(1)
    mu_y = (w[..., None] * target).sum(1)
    x, y = source - mu_x[:, None], target - mu_y[:, None]
    covariance = torch.einsum("bn,bni,bnj->bij", w, y, x)
    U, S, Vh = torch.linalg.svd(covariance)
    sign = torch.ones_like(S)
    sign[:, -1] = torch.sign(torch.linalg.det(U @ Vh))
    R = U @ torch.diag_embed(sign) @ Vh
    variance = (w * (x ** 2).sum(-1)).sum(1)
    scale = (S * sign).sum(1) / variance.clamp_min(1e-12)
    t = mu_y - scale[:, None] * torch.einsum("bij,bj->bi", R, mu_x)
    return scale, R, t


def procrustes_align(source: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """source (B,N,3) moved by the best similarity transform onto target (B,N,3)."""
    scale, R, t = similarity_transform(source, target, weights)
    return scale[:, None, None] * source @ R.transpose(1, 2) + t[:, None]


def root_align(points: Tensor, root: Tensor) -> Tensor:
    """points (B,N,3) minus a root (B,3)."""
    return points - root[:, None]
