"""Per-pixel attributes from `Fragments`: interpolation, normals, textures and the AttentionHand mesh-image shader.

The mesh image reproduces the renders AttentionHand was trained on (pyrender, redorangeyellowy/hand_rendering):
flat shading, metallic 0 / roughness 1 physically based material, ambient 0.3, black background, and three
directional lights of intensity 0.8. Those lights were added with translation-only poses, so all three point
along the camera's viewing direction: a headlight of total intensity 2.4. pyrender's BRDF is Cook-Torrance
(GGX distribution, Schlick-Smith occlusion, Schlick Fresnel) with a Lambert term, and the result is gamma-encoded
(1/2.2). The original wrote RGB arrays with `cv2.imwrite`, so the files hold the base colour (1, 1, 0.9) with
red and blue swapped: (0.9, 1, 1) is what the trained model has seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import Tensor

from hands.render.rasterizer import Fragments, VisiblePixels

MIN_ROUGHNESS = 0.04  # pyrender's floor, also the dielectric specular reflectance f0


@dataclass
class MeshImageStyle:
    """Material and lights of the mesh image (defaults: AttentionHand's training renders)."""

    base_color: tuple[float, float, float] = (0.9, 1.0, 1.0)
    """Linear RGB albedo; (0.9, 1, 1) matches the original files (their red and blue were swapped on writing)."""
    ambient: float = 0.3
    """Ambient light added as base_color * ambient."""
    lights: tuple[tuple[float, float, float, float], ...] = ((0.0, 0.0, 1.0, 2.4),)
    """Directional lights as (dx, dy, dz, intensity): the direction the light travels, camera frame (OpenCV)."""
    roughness: float = 1.0
    metallic: float = 0.0
    smooth: bool = False
    """Interpolate vertex normals (smooth shading) instead of flat face normals."""


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit face normals (B,F,3) of vertices (B,V,3); counter-clockwise faces give outward normals."""
    tri = vertices[:, faces]
    return nnf.normalize(torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1), dim=-1)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals (B,V,3)."""
    tri = vertices[:, faces]
    scaled = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)  # length = 2 x area
    normals = torch.zeros_like(vertices)
    for corner in range(3):
        normals = normals.index_add(1, faces[:, corner], scaled)
    return nnf.normalize(normals, dim=-1)


def interpolate_vertex_attributes(pixels: VisiblePixels, faces: Tensor, attributes: Tensor) -> Tensor:
    """Barycentric interpolation of per-vertex attributes (B,V,C) at the visible pixels -> (N,C)."""
    corners = attributes[pixels.batch_index[:, None], faces[pixels.face_ids]]  # (N,3,C)
    return (corners * pixels.barycentrics[..., None]).sum(dim=1)


def interpolate_face_corner_attributes(pixels: VisiblePixels, corner_attributes: Tensor) -> Tensor:
    """Barycentric interpolation of per-face-corner attributes (F,3,C) at the visible pixels -> (N,C)."""
    return (corner_attributes[pixels.face_ids] * pixels.barycentrics[..., None]).sum(dim=1)


def sample_texture(fragments: Fragments, face_uvs: Tensor, texture: Tensor) -> Tensor:
    """Texture colour per pixel (B,C,H,W) from face-corner uvs (F,3,2) in [0,1] (origin top-left) and a texture
    (B,C,Ht,Wt); bilinear, zero on the background."""
    pixels = fragments.visible()
    uv = pixels.to_image(interpolate_face_corner_attributes(pixels, face_uvs.to(texture)))  # (B,H,W,2)
    colour = nnf.grid_sample(texture, uv * 2 - 1, mode="bilinear", padding_mode="border", align_corners=False)
    return colour * fragments.mask[:, None]


def pixel_normals(pixels: VisiblePixels, vertices_cam: Tensor, faces: Tensor, smooth: bool) -> Tensor:
    """Unit camera-frame normals (N,3) at the visible pixels: flat face normals, or interpolated vertex normals."""
    if smooth:
        return nnf.normalize(interpolate_vertex_attributes(pixels, faces, vertex_normals(vertices_cam, faces)), dim=-1)
    return face_normals(vertices_cam, faces)[pixels.batch_index, pixels.face_ids]


def shade_pbr(normals: Tensor, view: Tensor, style: MeshImageStyle) -> Tensor:
    """pyrender's metallic-roughness shading, gamma-encoded: unit normals and unit directions to the viewer
    (...,3) -> colour (...,3) in [0,1]. Normals facing away from the viewer are flipped (two-sided lighting)."""
    normals = torch.where((normals * view).sum(-1, keepdim=True) < 0, -normals, normals)
    base = torch.tensor(style.base_color, dtype=normals.dtype, device=normals.device)
    roughness = min(max(style.roughness, MIN_ROUGHNESS), 1.0)
    c_diff = base * (1 - MIN_ROUGHNESS) * (1 - style.metallic)
    f0 = MIN_ROUGHNESS * (1 - style.metallic) + base * style.metallic
    alpha2 = roughness ** 4  # pyrender squares perceptual roughness, then squares again in the GGX term
    k = (roughness + 1) ** 2 / 8
    n_dot_v = (normals * view).sum(-1, keepdim=True).abs().clamp(0.001, 1.0)
    colour = base * style.ambient
    for dx, dy, dz, intensity in style.lights:
        to_light = -nnf.normalize(torch.tensor([dx, dy, dz], dtype=normals.dtype, device=normals.device), dim=0)
        half = nnf.normalize(to_light + view, dim=-1)
        n_dot_l = (normals * to_light).sum(-1, keepdim=True).clamp(0.001, 1.0)
        n_dot_h = (normals * half).sum(-1, keepdim=True).clamp(0.0, 1.0)
        v_dot_h = (view * half).sum(-1, keepdim=True).clamp(0.0, 1.0)
        fresnel = f0 + (1 - f0) * (1 - v_dot_h) ** 5
        occlusion = n_dot_v / (n_dot_v * (1 - k) + k) * n_dot_l / (n_dot_l * (1 - k) + k)
        distribution = alpha2 / (math.pi * (n_dot_h ** 2 * (alpha2 - 1) + 1) ** 2)
        diffuse = (1 - fresnel) * c_diff / math.pi
        specular = fresnel * occlusion * distribution / (4 * n_dot_l * n_dot_v + 0.001)
        colour = colour + n_dot_l * intensity * (diffuse + specular)
    return colour.clamp_min(0).pow(1 / 2.2).clamp(0, 1)


def view_directions(points_cam: Tensor, perspective: bool) -> Tensor:
    """Unit directions from camera-frame points (...,3) to the viewer: toward the origin, or -z (orthographic)."""
    if perspective:
        return nnf.normalize(-points_cam, dim=-1)
    return torch.tensor([0.0, 0.0, -1.0], dtype=points_cam.dtype, device=points_cam.device).expand_as(points_cam)


def mesh_image(fragments: Fragments, vertices_cam: Tensor, faces: Tensor, perspective: bool = True,
               style: MeshImageStyle | None = None) -> Tensor:
    """The AttentionHand-style mesh image (B,3,H,W) in [0,1], black background, from camera-frame vertices (B,V,3)."""
    style = style or MeshImageStyle()
    pixels = fragments.visible()
    normals = pixel_normals(pixels, vertices_cam, faces, style.smooth)
    points = interpolate_vertex_attributes(pixels, faces, vertices_cam)
    colour = shade_pbr(normals, view_directions(points, perspective), style)
    return pixels.to_image(colour).permute(0, 3, 1, 2)
