"""A pure-PyTorch triangle rasterizer with a z-buffer (CPU or CUDA, no compiled extension).

Input is screen space: per vertex (u, v) in pixels and the camera depth z, as `Camera.project` returns. Each
face is expanded to the pixels of its screen bounding box, tested with edge functions, and the nearest surface
per pixel wins via `scatter_reduce`. Pixel (u, v) samples the image plane at integer coordinates, as OpenCV's
`u = fx X / Z + cx` does. Depth and barycentrics are perspective-correct (or linear for an orthographic /
weak-perspective camera) and differentiable with respect to the vertices; which face is visible is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Faces whose screen area is below this (square pixels) cover no pixel centre reliably and are skipped.
MIN_SCREEN_AREA = 1e-12
EDGE_TOLERANCE_ULPS = 64


@dataclass
class Fragments:
    """Per-pixel rasterization result for a batch of images.

    face_ids (B,H,W) int64 index into the faces, -1 for background; depth (B,H,W) camera z in meters, 0 for
    background; barycentrics (B,H,W,3) perspective-correct, 0 for background.
    """

    face_ids: Tensor
    depth: Tensor
    barycentrics: Tensor

    @property
    def mask(self) -> Tensor:
        """(B,H,W) bool: pixels covered by a face."""
        return self.face_ids >= 0

    def visible(self) -> "VisiblePixels":
        """The covered pixels as flat lists, for shading only where something is drawn."""
        B, H, W = self.face_ids.shape
        flat = torch.nonzero(self.face_ids.reshape(-1) >= 0).squeeze(1)
        return VisiblePixels(flat, torch.div(flat, H * W, rounding_mode="floor"), self.face_ids.reshape(-1)[flat],
                             self.barycentrics.reshape(-1, 3)[flat], (B, H, W))


@dataclass
class VisiblePixels:
    """Covered pixels of a batch: flat index into B*H*W, batch index, face id and barycentrics (N,3)."""

    flat_index: Tensor
    batch_index: Tensor
    face_ids: Tensor
    barycentrics: Tensor
    shape: tuple[int, int, int]

    def to_image(self, values: Tensor, background: float = 0.0) -> Tensor:
        """Per-pixel values (N,...) -> images (B,H,W,...) with `background` elsewhere."""
        B, H, W = self.shape
        image = torch.full((B * H * W, *values.shape[1:]), background, dtype=values.dtype, device=values.device)
        return image.index_put((self.flat_index,), values).view(B, H, W, *values.shape[1:])


def edge_function(p0: Tensor, p1: Tensor, q: Tensor) -> Tensor:
    """Twice the signed area of triangle (p0, p1, q) in the image plane; points (...,2) -> (...)."""
    return (p1[..., 0] - p0[..., 0]) * (q[..., 1] - p0[..., 1]) - (p1[..., 1] - p0[..., 1]) * (q[..., 0] - p0[..., 0])


def check_mesh_shapes(screen: Tensor, faces: Tensor, where: str) -> None:
    """Raise a ValueError naming `where` unless screen is (B,V,3) and faces (F,3) integer indices into V."""
    if screen.dim() != 3 or screen.shape[-1] != 3:
        raise ValueError(f"{where}: vertices should have shape (B, V, 3), got {tuple(screen.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3 or faces.dtype.is_floating_point:
        raise ValueError(f"{where}: faces should be integers of shape (F, 3), got {tuple(faces.shape)} {faces.dtype}")
    if len(faces) and (int(faces.max()) >= screen.shape[1] or int(faces.min()) < 0):
        raise ValueError(f"{where}: faces index vertex {int(faces.max())} but there are {screen.shape[1]} vertices")


def bounding_box_pixels(uv: Tensor, image_size: tuple[int, int], margin: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every (triangle, pixel) pair inside each triangle's screen bounding box grown by `margin` pixels.

    uv (N,3,2) pixel coordinates. Returns the triangle index, the pixel's x and y offsets from its box's corner
    (int64 vectors, one entry per pair) and the corners `origin` (N,2) int64; pixel = origin[tri] + (dx, dy).
    Pixels outside the image are left out, so a triangle entirely off screen yields none.
    """
    H, W = image_size
    with torch.no_grad():
        origin = (uv.amin(dim=1) - margin).ceil().long().clamp_min(0)
        hi = (uv.amax(dim=1) + margin).floor().long()
        widths = (hi[:, 0].clamp(max=W - 1) - origin[:, 0] + 1).clamp_min(0)
        heights = (hi[:, 1].clamp(max=H - 1) - origin[:, 1] + 1).clamp_min(0)
        counts = widths * heights
        tri = torch.repeat_interleave(torch.arange(len(counts), device=uv.device), counts)
        local = torch.arange(len(tri), device=uv.device) - (torch.cumsum(counts, 0) - counts)[tri]
        width = widths[tri]
        return tri, local % width, local // width, origin


def drawable_faces(tri: Tensor, perspective: bool, near: float, cull_backfaces: bool = False) -> tuple[Tensor, Tensor]:
    """Batch and face indices of the screen triangles tri (B,F,3,3) worth drawing: non-degenerate, in front of
    `near` (perspective only) and, with `cull_backfaces`, counter-clockwise seen from the camera."""
    with torch.no_grad():
        area = edge_function(tri[..., 0, :2], tri[..., 1, :2], tri[..., 2, :2])  # negative = facing the camera
        keep = area.abs() >= MIN_SCREEN_AREA
        if perspective:
            keep &= (tri[..., 2] > near).all(dim=-1)
        if cull_backfaces:
            keep &= area < 0
        return torch.nonzero(keep, as_tuple=True)


def _edge_coefficients(uv: Tensor) -> Tensor:
    """Per triangle (N,3,2) the three edge functions as rows (A, B, C): w_i(x, y) = A x + B y + C, where w_i is
    twice the area of the sub-triangle opposite vertex i (so w_i / area are the barycentrics)."""
    p0, p1 = uv.roll(-1, dims=1), uv.roll(-2, dims=1)  # edge i runs from vertex i+1 to vertex i+2
    a = p0[..., 1] - p1[..., 1]
    b = p1[..., 0] - p0[..., 0]
    c = p0[..., 0] * p1[..., 1] - p0[..., 1] * p1[..., 0]
    return torch.stack([a, b, c], dim=-1)  # (N,3,3)


def sortable_depth_key(depth: Tensor, index: Tensor) -> Tensor:
    """int64 keys ordered by float32 depth, ties broken by the smaller `index` (both (N,)); index < 2**31."""
    bits = depth.detach().float().view(torch.int32)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # negative floats sort in reverse as raw integers
    return (bits.long() << 32) | index


def rasterize(screen: Tensor, faces: Tensor, image_size: tuple[int, int], *, perspective: bool = True,
              near: float = 1e-3, cull_backfaces: bool = False) -> Fragments:
    """Rasterize B meshes that share `faces` into B images.

    screen (B,V,3): (u, v) pixels and camera depth z (meters) per vertex; faces (F,3) int64; image_size (H, W).
    Several meshes are drawn into one image by concatenating them (offset their faces); occlusion is per pixel
    (nearest surface at float32 resolution, then the lowest face index). With `perspective`, faces with a
    vertex nearer than `near` are skipped and attributes are interpolated perspective-correctly; otherwise
    linearly (orthographic z). `cull_backfaces` drops faces wound clockwise on screen, i.e. whose outward normal
    (counter-clockwise winding) points away from the camera.
    """
    check_mesh_shapes(screen, faces, "rasterize")
    H, W = image_size
    B, device, dtype = screen.shape[0], screen.device, screen.dtype
    tri = screen[:, faces]  # (B,F,3,3)
    batch_index, face_index = drawable_faces(tri, perspective, near, cull_backfaces)
    tri = tri[batch_index, face_index]
    cand, dx, dy, origin = bounding_box_pixels(tri[..., :2], image_size)
    # Edge functions in coordinates local to each box keep float32 accurate; divided by the area they are the
    # screen-space barycentrics. A pixel centre exactly on an edge shared by two faces must not fall through
    # the crack between them, hence the tolerance of a few ulps.
    local_uv = tri[..., :2] - origin[:, None, :].to(dtype)
    coefficients = _edge_coefficients(local_uv)
    area = coefficients[:, 0, 2] + coefficients[:, 1, 2] + coefficients[:, 2, 2]  # sum of w_i at (0, 0)
    c = (coefficients / area[:, None, None])[cand]  # (M,3,3)
    bary = c[..., 0] * dx[:, None].to(dtype) + c[..., 1] * dy[:, None].to(dtype) + c[..., 2]
    inside = torch.nonzero((bary >= -EDGE_TOLERANCE_ULPS * torch.finfo(dtype).eps).all(dim=1)).squeeze(1)
    cand, bary = cand[inside], bary[inside]
    z = tri[cand, :, 2]
    if perspective:
        bary = bary / z
        depth = 1.0 / bary.sum(dim=1)
        bary = bary * depth[:, None]
    else:
        depth = (bary * z).sum(dim=1)
    with torch.no_grad():
        base = batch_index * (H * W) + origin[:, 1] * W + origin[:, 0]
        pixel = base[cand] + dy[inside] * W + dx[inside]
        key = sortable_depth_key(depth, cand)
        best = torch.full((B * H * W,), torch.iinfo(torch.long).max, device=device, dtype=torch.long)
        best.scatter_reduce_(0, pixel, key, reduce="amin")
        chosen = torch.nonzero(best[pixel] == key).squeeze(1)
    pixel, cand = pixel[chosen], cand[chosen]
    face_map = torch.full((B * H * W,), -1, device=device, dtype=torch.long)
    face_map[pixel] = face_index[cand]
    depth_map = torch.zeros(B * H * W, device=device, dtype=dtype).index_put((pixel,), depth[chosen])
    bary_map = torch.zeros(B * H * W, 3, device=device, dtype=dtype).index_put((pixel,), bary[chosen])
    return Fragments(face_map.view(B, H, W), depth_map.view(B, H, W), bary_map.view(B, H, W, 3))
