"""Rendering for every method: a pure-PyTorch rasterizer, shaders, a soft silhouette and drawing on photos.

    renderer = Renderer((256, 256))
    out = renderer.render(hand_meshes(output.vertices, layer), PerspectiveCamera(K), ("mask", "depth", "part_labels"))
"""

from hands.geometry.cameras import PerspectiveCamera, WeakPerspectiveCamera
from hands.render.draw import draw_skeleton, overlay
from hands.render.meshes import NUM_PART_CLASSES, Meshes, hand_meshes, join_meshes
from hands.render.rasterizer import Fragments, rasterize
from hands.render.renderer import OUTPUTS, RenderConfig, Renderer, RenderOutput
from hands.render.shading import MeshImageStyle
from hands.render.soft import soft_silhouette

__all__ = [
    "Fragments", "Meshes", "MeshImageStyle", "NUM_PART_CLASSES", "OUTPUTS", "PerspectiveCamera", "RenderConfig",
    "RenderOutput", "Renderer", "WeakPerspectiveCamera", "draw_skeleton", "hand_meshes", "join_meshes", "overlay",
    "rasterize", "soft_silhouette",
]
