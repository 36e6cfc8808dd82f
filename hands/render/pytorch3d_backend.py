"""Optional pytorch3d rasterization behind `RenderConfig.backend = "pytorch3d"` (GPU users who have it).

pytorch3d has no wheel for Python 3.11 on PyPI, so this path is only exercised where it is installed; the
built-in rasterizer is the reference. Cameras are converted from OpenCV with pytorch3d's own
`cameras_from_opencv_projection`, which also handles the axis flip (pytorch3d: +x left, +y up).
"""

from __future__ import annotations

import importlib.util

import torch

from hands.geometry.cameras import PerspectiveCamera
from hands.render.meshes import Meshes
from hands.render.rasterizer import Fragments


def pytorch3d_available() -> bool:
    """True when pytorch3d can be imported."""
    return importlib.util.find_spec("pytorch3d") is not None


def require_pytorch3d() -> None:
    """Raise a clear error when the pytorch3d backend is selected but not installed."""
    if not pytorch3d_available():
        raise ImportError("render.backend=pytorch3d but pytorch3d is not installed (no PyPI wheel for this Python); "
                          "install it from source (github.com/facebookresearch/pytorch3d, INSTALL.md) or use backend=torch")


def rasterize_pytorch3d(meshes: Meshes, camera, image_size: tuple[int, int], cull_backfaces: bool = False) -> Fragments:
    """Rasterize with pytorch3d's MeshRasterizer -> the same Fragments (B,H,W) as `hands.render.rasterize`."""
    require_pytorch3d()
    from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
    from pytorch3d.structures import Meshes as P3DMeshes
    from pytorch3d.utils import cameras_from_opencv_projection

    if not isinstance(camera, PerspectiveCamera):
        raise ValueError("render.backend=pytorch3d supports perspective cameras only; use backend=torch for "
                         "weak-perspective rendering")
    B, H, W = meshes.batch_size, *image_size
    vertices = camera.to_camera_frame(meshes.vertices)
    eye = torch.eye(3, dtype=vertices.dtype, device=vertices.device).expand(B, 3, 3)
    cameras = cameras_from_opencv_projection(
        eye, torch.zeros(B, 3, dtype=vertices.dtype, device=vertices.device),
        camera.K.to(vertices).expand(B, 3, 3), torch.tensor([[H, W]], device=vertices.device).expand(B, 2))
    settings = RasterizationSettings(image_size=(H, W), blur_radius=0.0, faces_per_pixel=1,
                                     cull_backfaces=cull_backfaces, perspective_correct=True)
    p3d_meshes = P3DMeshes(verts=vertices, faces=meshes.faces[None].expand(B, -1, -1))
    fragments = MeshRasterizer(cameras=cameras, raster_settings=settings)(p3d_meshes)
    packed = fragments.pix_to_face[..., 0]
    offsets = torch.arange(B, device=packed.device)[:, None, None] * len(meshes.faces)
    face_ids = torch.where(packed >= 0, packed - offsets, -1)
    depth = torch.where(packed >= 0, fragments.zbuf[..., 0], 0)
    bary = fragments.bary_coords[..., 0, :] * (packed >= 0)[..., None]
    return Fragments(face_ids, depth, bary)
