"""The renderer every method uses: meshes + camera -> the images asked for (mask, depth, normals, parts, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal, Union

import torch
from torch import Tensor

from hands.geometry.cameras import PerspectiveCamera, WeakPerspectiveCamera
from hands.render.meshes import Meshes
from hands.render.rasterizer import Fragments, rasterize
from hands.render.shading import MeshImageStyle, interpolate_vertex_attributes, mesh_image, pixel_normals, sample_texture
from hands.render.soft import soft_silhouette

Camera = Union[PerspectiveCamera, WeakPerspectiveCamera]
BACKENDS = ("torch", "pytorch3d")
OUTPUTS = ("mask", "depth", "face_ids", "barycentrics", "normals", "part_labels", "color", "mesh_image", "silhouette")


@dataclass
class RenderConfig:
    """How meshes are rasterized and shaded."""

    backend: Literal["torch", "pytorch3d"] = "torch"
    """'torch' (built in, CPU or CUDA) or 'pytorch3d' (when importable; perspective cameras only)."""
    cull_backfaces: bool = False
    """Skip faces whose outward side points away from the camera (pyrender's default for single-sided materials)."""
    near: float = 1e-3
    """Faces with a vertex nearer than this (meters) are not drawn (perspective cameras)."""
    smooth_normals: bool = False
    """The `normals` output interpolates vertex normals instead of using flat face normals."""
    silhouette_sigma: float = 1.0
    """Blur of the soft silhouette in square pixels (its edge is ~sqrt(sigma) pixels wide)."""
    mesh_image: MeshImageStyle = field(default_factory=MeshImageStyle)
    """Material and lights of the mesh image (defaults: AttentionHand's condition renders)."""


@dataclass
class RenderOutput:
    """What `Renderer.render` produced; fields not asked for are None.

    mask (B,H,W) bool; depth (B,H,W) camera z in meters (0 background, differentiable); face_ids (B,H,W) int64
    (-1 background); barycentrics (B,H,W,3); normals (B,H,W,3) unit, camera frame (0 background); part_labels
    (B,H,W) int64 face labels (0 background; 33 hand-part classes with `hand_meshes`); color (B,3,H,W) vertex
    colours or texture; mesh_image (B,3,H,W) AttentionHand-style shading; silhouette (B,H,W) soft, in [0,1].
    """

    fragments: Fragments
    mask: Tensor | None = None
    depth: Tensor | None = None
    face_ids: Tensor | None = None
    barycentrics: Tensor | None = None
    normals: Tensor | None = None
    part_labels: Tensor | None = None
    color: Tensor | None = None
    mesh_image: Tensor | None = None
    silhouette: Tensor | None = None


def camera_frame_vertices(camera: Camera, vertices: Tensor) -> Tensor:
    """Vertices (B,V,3) in the camera frame (weak-perspective points are already camera-aligned)."""
    return camera.to_camera_frame(vertices) if isinstance(camera, PerspectiveCamera) else vertices


class Renderer:
    """Renders `Meshes` seen by a `PerspectiveCamera` or `WeakPerspectiveCamera` into images of a fixed size."""

    def __init__(self, image_size: tuple[int, int] | int, config: RenderConfig | None = None) -> None:
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"Renderer: image_size must be a positive int or (H, W), got {image_size!r}")
        self.config = config or RenderConfig()
        if self.config.backend not in BACKENDS:
            raise ValueError(f"render.backend: unknown backend {self.config.backend!r}; choose one of {BACKENDS}")
        if self.config.backend == "pytorch3d":
            from hands.render.pytorch3d_backend import require_pytorch3d

            require_pytorch3d()

    def rasterize(self, meshes: Meshes, camera: Camera) -> Fragments:
        """Hard rasterization of the meshes -> Fragments (B,H,W)."""
        if self.config.backend == "pytorch3d":
            from hands.render.pytorch3d_backend import rasterize_pytorch3d

            return rasterize_pytorch3d(meshes, camera, self.image_size, self.config.cull_backfaces)
        screen = camera.project(meshes.vertices)
        return rasterize(screen, meshes.faces, self.image_size, perspective=camera.perspective, near=self.config.near,
                         cull_backfaces=self.config.cull_backfaces)

    def render(self, meshes: Meshes, camera: Camera, outputs: Iterable[str] = ("mask", "depth")) -> RenderOutput:
        """Render the outputs named in `outputs` (any of `OUTPUTS`) for B scenes."""
        outputs = tuple(outputs)
        unknown = [name for name in outputs if name not in OUTPUTS]
        if unknown:
            raise ValueError(f"render: unknown output(s) {unknown}; choose from {OUTPUTS}")
        fragments = self.rasterize(meshes, camera)
        result = RenderOutput(fragments)
        mask = fragments.mask
        for name in ("mask", "depth", "face_ids", "barycentrics"):
            if name in outputs:
                setattr(result, name, getattr(fragments, name))
        if {"normals", "mesh_image"} & set(outputs):
            vertices_cam = camera_frame_vertices(camera, meshes.vertices)
        if "normals" in outputs:
            pixels = fragments.visible()
            result.normals = pixels.to_image(pixel_normals(pixels, vertices_cam, meshes.faces, self.config.smooth_normals))
        if "mesh_image" in outputs:
            result.mesh_image = mesh_image(fragments, vertices_cam, meshes.faces, camera.perspective, self.config.mesh_image)
        if "part_labels" in outputs:
            if meshes.face_labels is None:
                raise ValueError("render: part_labels needs Meshes.face_labels (see hands.render.meshes.hand_meshes)")
            result.part_labels = torch.where(mask, meshes.face_labels[fragments.face_ids.clamp_min(0)], 0)
        if "color" in outputs:
            result.color = self._color(meshes, fragments)
        if "silhouette" in outputs:
            result.silhouette = soft_silhouette(camera.project(meshes.vertices), meshes.faces, self.image_size,
                                                sigma=self.config.silhouette_sigma, near=self.config.near,
                                                perspective=camera.perspective)
        return result

    def _color(self, meshes: Meshes, fragments: Fragments) -> Tensor:
        if meshes.texture is not None:
            return sample_texture(fragments, meshes.face_uvs, meshes.texture)
        if meshes.vertex_colors is None:
            raise ValueError("render: color needs Meshes.vertex_colors or Meshes.texture with face_uvs")
        colors = meshes.vertex_colors.to(meshes.vertices).expand_as(meshes.vertices)
        pixels = fragments.visible()
        return pixels.to_image(interpolate_vertex_attributes(pixels, meshes.faces, colors)).permute(0, 3, 1, 2)
