"""Batches of meshes to render: vertices, shared faces and optional per-face labels, colours and textures."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torch import Tensor

from hands.mano.parts import NUM_PARTS, face_part_labels

# Part-label image classes as ACR and render_mano_ih use them: 0 background, right part k -> 1 + k, left -> 17 + k.
NUM_PART_CLASSES = 1 + 2 * NUM_PARTS
PART_LABEL_OFFSET = {"right": 1, "left": 1 + NUM_PARTS}


@dataclass
class Meshes:
    """B scenes with the same topology.

    vertices (B,V,3) meters (world frame of the camera used); faces (F,3) int64 counter-clockwise seen from
    outside; face_labels (F,) int64 class per face (e.g. 33-class hand parts); vertex_colors (B,V,3) or (V,3) in
    [0,1]; face_uvs (F,3,2) texture coordinates in [0,1] (origin top-left) with texture (B,3,Ht,Wt) in [0,1].
    """

    vertices: Tensor
    faces: Tensor
    face_labels: Tensor | None = None
    vertex_colors: Tensor | None = None
    face_uvs: Tensor | None = None
    texture: Tensor | None = None

    def __post_init__(self) -> None:
        if self.vertices.dim() == 2:
            self.vertices = self.vertices[None]
        if self.vertices.dim() != 3 or self.vertices.shape[-1] != 3:
            raise ValueError(f"Meshes: vertices should have shape (B, V, 3), got {tuple(self.vertices.shape)}")
        F = len(self.faces)
        if self.face_labels is not None and self.face_labels.shape != (F,):
            raise ValueError(f"Meshes: face_labels should have shape ({F},), got {tuple(self.face_labels.shape)}")
        if self.vertex_colors is not None and self.vertex_colors.shape[-2:] != self.vertices.shape[-2:]:
            raise ValueError(f"Meshes: vertex_colors should have shape (B, {self.vertices.shape[1]}, 3), "
                             f"got {tuple(self.vertex_colors.shape)}")
        if (self.face_uvs is None) != (self.texture is None):
            raise ValueError("Meshes: face_uvs and texture go together; give both or neither")
        if self.face_uvs is not None and self.face_uvs.shape != (F, 3, 2):
            raise ValueError(f"Meshes: face_uvs should have shape ({F}, 3, 2), got {tuple(self.face_uvs.shape)}")

    @property
    def batch_size(self) -> int:
        return self.vertices.shape[0]

    def with_vertices(self, vertices: Tensor) -> "Meshes":
        """The same meshes with new vertex positions (B,V,3), e.g. after a camera transform."""
        return replace(self, vertices=vertices)


def join_meshes(parts: Sequence[Meshes]) -> Meshes:
    """Concatenate meshes drawn into the same images (e.g. a right and a left hand) -> one Meshes.

    Every part needs the same batch size; an optional field must be set on all parts or none (textures can't be
    joined: render textured meshes separately).
    """
    if not parts:
        raise ValueError("join_meshes: no meshes given")
    if len({m.batch_size for m in parts}) != 1:
        raise ValueError(f"join_meshes: batch sizes differ: {[m.batch_size for m in parts]}")
    if any(m.texture is not None for m in parts):
        raise ValueError("join_meshes: textured meshes can't be joined; render them separately")
    offsets = torch.cumsum(torch.tensor([0] + [m.vertices.shape[1] for m in parts[:-1]]), 0)
    faces = torch.cat([m.faces + int(o) for m, o in zip(parts, offsets)])

    def joined(field: str, dim: int) -> Tensor | None:
        values = [getattr(m, field) for m in parts]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise ValueError(f"join_meshes: {field} is set on some meshes but not on others")
        if field == "vertex_colors":
            values = [v.expand_as(m.vertices) for v, m in zip(values, parts)]
        return torch.cat(values, dim=dim)

    return Meshes(torch.cat([m.vertices for m in parts], dim=1), faces, joined("face_labels", 0), joined("vertex_colors", 1))


def hand_face_labels(weights: Tensor, faces: Tensor, side: str) -> Tensor:
    """33-class part label per face (F,): 1 + MANO joint k for a right hand, 17 + k for a left hand."""
    if side not in PART_LABEL_OFFSET:
        raise ValueError(f"hand_face_labels: side should be 'right' or 'left', got {side!r}")
    labels = face_part_labels(weights.detach().cpu().numpy(), faces.cpu().numpy())
    return torch.as_tensor(labels, device=faces.device) + PART_LABEL_OFFSET[side]


def hand_meshes(vertices: Tensor, layer, vertex_colors: Tensor | None = None) -> Meshes:
    """Meshes for a MANO layer's output vertices (B,778,3), labelled with the layer's side's 33-class parts."""
    return Meshes(vertices, layer.faces, hand_face_labels(layer.weights, layer.faces, layer.side), vertex_colors)
