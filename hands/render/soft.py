"""A soft, differentiable silhouette (SoftRas, Liu et al. 2019) for fitting meshes to masks.

Each face contributes a coverage D = sigmoid(+-d^2 / sigma) per pixel, where d is the pixel's distance to the
face's screen triangle in pixels (+ inside, - outside); faces combine as 1 - prod(1 - D). Only pixels where
D > `eps` are evaluated, so the cost grows with the silhouette's area, not the image's. Gradients reach every
vertex whose face lies within a few sqrt(sigma) pixels of a pixel.

Where several faces meet at the contour their halos add up, so the 0.5 level lies up to ~1.2 sqrt(sigma) pixels
outside the hard silhouette. Fit coarse to fine: start with sigma of several square pixels for a wide basin and
end near 0.1 so the fitted contour is within a third of a pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torch import Tensor

from hands.render.rasterizer import MIN_SCREEN_AREA, bounding_box_pixels, check_mesh_shapes, drawable_faces, edge_function


def _squared_distance_to_segment(p: Tensor, a: Tensor, b: Tensor) -> Tensor:
    ab = b - a
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(MIN_SCREEN_AREA)
    closest = a + t.clamp(0, 1)[..., None] * ab
    return ((p - closest) ** 2).sum(-1)


def soft_silhouette(screen: Tensor, faces: Tensor, image_size: tuple[int, int], sigma: float = 1.0,
                    eps: float = 1e-4, near: float = 1e-3, perspective: bool = True) -> Tensor:
    """Soft silhouette (B,H,W) in [0,1] of meshes given in screen space.

    screen (B,V,3) = (u, v) pixels and depth per vertex (see `Camera.project`); faces (F,3); sigma in square
    pixels sets the blur (edge width ~ sqrt(sigma) px); faces with a vertex nearer than `near` are skipped
    for perspective cameras.
    """
    check_mesh_shapes(screen, faces, "soft_silhouette")
    if sigma <= 0:
        raise ValueError(f"soft_silhouette: sigma should be positive, got {sigma}")
    H, W = image_size
    B, device, dtype = screen.shape[0], screen.device, screen.dtype
    tri = screen[:, faces]
    batch_index, face_index = drawable_faces(tri, perspective, near)
    uv = tri[batch_index, face_index, :, :2]  # (N,3,2)
    reach = math.sqrt(sigma * math.log(1 / eps - 1))  # distance beyond which D < eps
    cand, dx, dy, origin = bounding_box_pixels(uv, image_size, margin=reach)
    local_uv = uv - origin[:, None, :].to(dtype)  # box-local coordinates keep float32 accurate
    p = torch.stack([dx, dy], dim=1).to(dtype)
    a, b, c = local_uv[cand].unbind(dim=1)
    d2 = torch.minimum(torch.minimum(_squared_distance_to_segment(p, a, b), _squared_distance_to_segment(p, b, c)),
                       _squared_distance_to_segment(p, c, a))
    area = edge_function(a, b, c)
    inside = ((edge_function(b, c, p) * area >= 0) & (edge_function(c, a, p) * area >= 0)
              & (edge_function(a, b, p) * area >= 0))
    with torch.no_grad():
        pixel = (batch_index * (H * W) + origin[:, 1] * W + origin[:, 0])[cand] + dy * W + dx
    logit = torch.where(inside, d2, -d2) / sigma
    # log(1 - D) = logsigmoid(-logit), summed over faces per pixel, is the log-probability that nothing covers it.
    log_empty = torch.zeros(B * H * W, device=device, dtype=dtype).index_add(0, pixel, nnf.logsigmoid(-logit))
    return (1 - torch.exp(log_empty)).view(B, H, W)


def soft_iou(prediction: Tensor, target: Tensor) -> Tensor:
    """Soft IoU of maps in [0, 1] of the same shape (..., H, W), per map (...)."""
    intersection = (prediction * target).sum((-1, -2))
    return intersection / (prediction + target - prediction * target).sum((-1, -2)).clamp_min(1e-6)
