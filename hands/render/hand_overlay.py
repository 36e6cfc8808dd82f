"""Hands drawn over a photo: shaded meshes in per-side colours (ACR's), blended with alpha."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from hands.geometry.cameras import PerspectiveCamera
from hands.render.draw import overlay
from hands.render.meshes import Meshes, join_meshes
from hands.render.renderer import Renderer

HAND_COLOURS = {"right": (0.94, 0.71, 0.53), "left": (0.46, 0.59, 0.64)}  # ACR's mesh colours


def render_hands_over(image: np.ndarray, hands: Sequence[tuple[torch.Tensor, torch.Tensor, str]], K: torch.Tensor,
                      alpha: float = 0.9) -> np.ndarray:
    """The photo (H, W, 3) uint8 with each hand (vertices (V,3) meters in the camera frame, faces (F,3), side)
    rendered through intrinsics K (3,3) and blended in."""
    if not hands:
        return image.copy()
    parts = []
    for vertices, faces, side in hands:
        vertices = torch.as_tensor(vertices).float().cpu()[None]
        colours = torch.tensor(HAND_COLOURS[side]).expand(vertices.shape[1], 3)[None]
        parts.append(Meshes(vertices, torch.as_tensor(faces).cpu(), vertex_colors=colours))
    out = Renderer(image.shape[:2]).render(join_meshes(parts), PerspectiveCamera(torch.as_tensor(K).float()),
                                           ["mesh_image", "color", "mask"])
    shaded = out.color[0] * out.mesh_image[0].mean(dim=0, keepdim=True)
    return overlay(image, shaded, out.mask[0], alpha=alpha)
