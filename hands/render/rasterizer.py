"""A pure-PyTorch triangle rasterizer with a z-buffer (CPU or CUDA, no compiled extension).

Each face is expanded to the pixels of its screen bounding box, tested with edge functions, and the nearest
surface per pixel wins via `scatter_reduce`. Pixel (u, v) samples the image plane at integer coordinates, as
OpenCV's projection `u = fx X/Z + cx` does. Depth and barycentrics are perspective-correct and differentiable
with respect to the vertices (the visible-face assignment itself is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Fragments:
    """Per-pixel rasterization result for one image.

    face_ids (H,W) int64, -1 for background; depth (H,W) camera z in meters, 0 for background;
    barycentrics (H,W,3) perspective-correct, 0 for background; mask (H,W) bool.
    """

    face_ids: Tensor
    depth: Tensor
    barycentrics: Tensor

    @property
    def mask(self) -> Tensor:
        return self.face_ids >= 0


def project_points(points_cam: Tensor, K: Tensor) -> Tensor:
    """OpenCV pinhole projection of camera-frame points (...,3) with intrinsics K (3,3) -> pixels (...,2)."""
    z = points_cam[..., 2:3]
    return (points_cam[..., :2] / z) * torch.stack([K[0, 0], K[1, 1]]) + torch.stack([K[0, 2], K[1, 2]])


def rasterize(vertices_cam: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int], near: float = 1e-3) -> Fragments:
    """Rasterize a mesh given in the camera frame (OpenCV: x right, y down, z forward; meters).

    vertices_cam (V,3); faces (F,3) int64; K (3,3); image_size (H, W). Several meshes can be drawn together by
    concatenating them (offset the faces); occlusion between them is resolved per pixel.
    """
    H, W = image_size
    if vertices_cam.dim() != 2 or vertices_cam.shape[-1] != 3:
        raise ValueError(f"rasterize: vertices_cam should have shape (V, 3), got {tuple(vertices_cam.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"rasterize: faces should have shape (F, 3), got {tuple(faces.shape)}")
    device, dtype = vertices_cam.device, vertices_cam.dtype
    K = K.to(device=device, dtype=dtype)
    tri = vertices_cam[faces]  # (F,3,3)
    visible = (tri[..., 2] > near).all(dim=1)
    face_index = torch.nonzero(visible).squeeze(1)
    tri = tri[face_index]
    uv = project_points(tri, K)  # (F,3,2)
    with torch.no_grad():
        # Pixel range of each face's bounding box; a face entirely off screen gets a non-positive width or height.
        lo = uv.amin(dim=1).ceil().long().clamp_min(0)
        hi = uv.amax(dim=1).floor().long()
        widths = (hi[:, 0].clamp(max=W - 1) - lo[:, 0] + 1).clamp_min(0)
        heights = (hi[:, 1].clamp(max=H - 1) - lo[:, 1] + 1).clamp_min(0)
        counts = widths * heights
        total = int(counts.sum())
        cand_face = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
        start = torch.cumsum(counts, 0) - counts
        local = torch.arange(total, device=device) - start[cand_face]
        px = lo[cand_face, 0] + local % widths[cand_face]
        py = lo[cand_face, 1] + local // widths[cand_face]
    p = torch.stack([px, py], dim=1).to(dtype)
    a, b, c = uv[cand_face, 0], uv[cand_face, 1], uv[cand_face, 2]

    def edge(p0: Tensor, p1: Tensor, q: Tensor) -> Tensor:
        return (p1[:, 0] - p0[:, 0]) * (q[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (q[:, 0] - p0[:, 0])

    area = edge(a, b, c)
    w0, w1, w2 = edge(b, c, p), edge(c, a, p), edge(a, b, p)
    safe_area = torch.where(area.abs() < 1e-12, torch.ones_like(area), area)
    bary_screen = torch.stack([w0, w1, w2], dim=1) / safe_area[:, None]
    inside = (bary_screen >= 0).all(dim=1) & (area.abs() >= 1e-12)
    cand_face, px, py, bary_screen = cand_face[inside], px[inside], py[inside], bary_screen[inside]
    inv_z = 1.0 / tri[cand_face, :, 2]
    bary_persp = bary_screen * inv_z
    denom = bary_persp.sum(dim=1, keepdim=True)
    depth = 1.0 / denom.squeeze(1)
    bary_persp = bary_persp / denom
    pixel = py * W + px
    with torch.no_grad():
        zbuf = torch.full((H * W,), float("inf"), device=device, dtype=dtype)
        zbuf.scatter_reduce_(0, pixel, depth.detach(), reduce="amin")
        winner = depth.detach() == zbuf[pixel]
        best_face = torch.full((H * W,), torch.iinfo(torch.long).max, device=device, dtype=torch.long)
        best_face.scatter_reduce_(0, pixel[winner], cand_face[winner], reduce="amin")
        chosen = winner & (best_face[pixel] == cand_face)
    face_map = torch.full((H * W,), -1, device=device, dtype=torch.long)
    face_map[pixel[chosen]] = face_index[cand_face[chosen]]
    depth_map = torch.zeros(H * W, device=device, dtype=dtype).index_put((pixel[chosen],), depth[chosen])
    bary_map = torch.zeros(H * W, 3, device=device, dtype=dtype).index_put((pixel[chosen],), bary_persp[chosen])
    return Fragments(face_map.view(H, W), depth_map.view(H, W), bary_map.view(H, W, 3))
