"""Inside/outside of closed triangle meshes by the generalised winding number (Jacobson et al. 2013)."""

from __future__ import annotations

import math

import torch


def winding_numbers(points: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor, chunk: int = 1 << 22) -> torch.Tensor:
    """Winding number (N,) of points (N, 3) with respect to the mesh (V, 3) / (F, 3): ~1 inside a closed,
    outward-oriented mesh, ~0 outside (fractional near holes). Work is split so at most `chunk` point-face pairs
    are held at once."""
    corners = vertices[faces]  # (F, 3, 3)
    step = max(1, chunk // max(len(faces), 1))
    out = []
    for start in range(0, len(points), step):
        rel = corners[None] - points[start:start + step, None, None]  # (n, F, 3, 3)
        a, b, c = rel[:, :, 0], rel[:, :, 1], rel[:, :, 2]
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        det = (a * torch.cross(b, c, dim=-1)).sum(-1)
        denominator = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append(torch.atan2(det, denominator).sum(-1) / (2 * math.pi))
    return torch.cat(out) if out else points.new_zeros(0)


def inside_mesh(points: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(N,) bool: points inside the closed mesh (winding number above 1/2)."""
    return winding_numbers(points, vertices, faces) > 0.5
