"""pyrender (OpenGL, headless via EGL or OSMesa) rendering of the same scene, for reference checks and benchmarks.

It renders what `Renderer` renders from camera-frame vertices and OpenCV intrinsics, handling the conventions
that differ: OpenGL's camera looks down -z with +y up (the mesh is turned 180 degrees about x, as
AttentionHand's renderer did), pyrender samples pixel (i, j) at (i + 0.5, j + 0.5), and its depth buffer is
resolved from sample 0 of a 4x multisampled buffer, which lies at (-1/8, +3/8) pixel from the centre (measured:
that offset makes our depth agree to 1e-7 m). Colours are the average of the 4 samples.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

# Where pyrender's depth for pixel (u, v) is taken, relative to our pixel centre (u, v), in pixels.
DEPTH_SAMPLE_OFFSET = (-0.125, 0.375)


def _load_triton_first() -> None:
    """Mesa's software GL and triton (which torch imports on first use of torch.optim or torch.compile) each
    bring their own LLVM; importing triton after a GL context exists crashes the process. Import it before."""
    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def pyrender_error() -> str | None:
    """None when pyrender can render off screen here, else the reason it cannot."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    _load_triton_first()
    try:
        import pyrender

        pyrender.OffscreenRenderer(8, 8).delete()
    except Exception as error:  # missing package, no EGL/OSMesa library, no GL context: all mean "can't compare"
        return f"pyrender off-screen rendering unavailable ({type(error).__name__}: {error})"
    return None


class PyrenderScene:
    """An off-screen pyrender renderer of one image size; `render` draws camera-frame meshes with K (3,3)."""

    def __init__(self, image_size: tuple[int, int]) -> None:
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        _load_triton_first()
        import pyrender

        self._pyrender = pyrender
        self.height, self.width = image_size
        self.renderer = pyrender.OffscreenRenderer(self.width, self.height)

    def render(self, meshes: list[tuple[np.ndarray, np.ndarray]], K: np.ndarray, cull_backfaces: bool = True,
               base_color=(0.9, 1.0, 1.0), ambient: float = 0.3, headlight: float = 2.4) -> tuple[np.ndarray, np.ndarray]:
        """meshes: [(vertices (V,3) camera frame in meters, faces (F,3))] -> (rgb uint8 (H,W,3), depth (H,W) m).

        The material and lights are AttentionHand's (metallic 0, flat shading, one headlight), see
        `hands.render.shading`."""
        self.set_scene(meshes, K, cull_backfaces, base_color, ambient, headlight)
        return self.draw()

    def set_scene(self, meshes: list[tuple[np.ndarray, np.ndarray]], K: np.ndarray, cull_backfaces: bool = True,
                  base_color=(0.9, 1.0, 1.0), ambient: float = 0.3, headlight: float = 2.4) -> None:
        """Build the scene that `draw` renders (arguments as in `render`)."""
        import trimesh

        pyrender = self._pyrender
        scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[ambient] * 3)
        material = pyrender.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=1.0, alphaMode="OPAQUE",
                                                      baseColorFactor=(*base_color, 1.0), doubleSided=not cull_backfaces)
        flip = np.array([1.0, -1.0, -1.0])
        for vertices, faces in meshes:
            mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64) * flip, np.asarray(faces), process=False)
            scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=False))
        K = np.asarray(K, dtype=np.float64)
        scene.add(pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, znear=0.01, zfar=100.0))
        scene.add(pyrender.DirectionalLight(color=[1.0, 1.0, 1.0], intensity=headlight))  # identity pose: along -z
        self.scene = scene

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """Render the current scene -> (rgb uint8 (H,W,3), depth (H,W) meters, 0 where empty)."""
        return self.renderer.render(self.scene)

    def close(self) -> None:
        self.renderer.delete()


def depth_sampling_intrinsics(K: np.ndarray) -> np.ndarray:
    """Intrinsics that make our rasterizer sample where pyrender's depth buffer does (see DEPTH_SAMPLE_OFFSET)."""
    shifted = np.array(K, dtype=np.float64, copy=True)
    shifted[0, 2] -= DEPTH_SAMPLE_OFFSET[0]
    shifted[1, 2] -= DEPTH_SAMPLE_OFFSET[1]
    return shifted
