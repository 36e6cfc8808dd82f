"""Shaders on top of `rasterize`: the flat-shaded mesh image (AttentionHand-style condition) and overlays."""

from __future__ import annotations

import torch
from torch import Tensor

from hands.render.rasterizer import Fragments, rasterize

# Three directional lights (directions the light travels, camera frame) and an ambient term.
DEFAULT_LIGHTS = ((0.0, 0.3, 1.0), (-0.8, -0.4, 0.6), (0.8, -0.4, 0.6))
DEFAULT_LIGHT_INTENSITIES = (0.55, 0.25, 0.25)
AMBIENT = 0.25


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit normals (F,3) of triangles (counter-clockwise winding seen from outside)."""
    tri = vertices[faces]
    n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    return torch.nn.functional.normalize(n, dim=-1)


def shade_flat(vertices_cam: Tensor, faces: Tensor, fragments: Fragments, color=(0.92, 0.92, 0.92)) -> Tensor:
    """Flat Lambert shading with three directional lights plus ambient -> image (3,H,W) in [0,1], black background."""
    normals = face_normals(vertices_cam, faces)
    intensity = torch.full((len(faces),), AMBIENT, dtype=vertices_cam.dtype, device=vertices_cam.device)
    for direction, power in zip(DEFAULT_LIGHTS, DEFAULT_LIGHT_INTENSITIES):
        d = torch.nn.functional.normalize(torch.tensor(direction, dtype=vertices_cam.dtype, device=vertices_cam.device), dim=0)
        # Faces seen from the camera point toward -z; a light travelling along d lights faces whose normal is -d.
        intensity = intensity + power * (-(normals @ d)).clamp_min(0)
    base = torch.tensor(color, dtype=vertices_cam.dtype, device=vertices_cam.device)
    mask = fragments.mask
    face_ids = fragments.face_ids.clamp_min(0)
    image = (intensity[face_ids].clamp(0, 1)[..., None] * base) * mask[..., None]
    return image.permute(2, 0, 1)


def render_mesh_image(vertices_cam: Tensor, faces: Tensor, K: Tensor, image_size: tuple[int, int], color=(0.92, 0.92, 0.92)) -> Tensor:
    """Rasterize and flat-shade a mesh in the camera frame -> (3,H,W) float image in [0,1]."""
    fragments = rasterize(vertices_cam, faces, K, image_size)
    return shade_flat(vertices_cam, faces, fragments, color)
