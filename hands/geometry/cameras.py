"""Cameras: OpenCV perspective (K, R, t) and ACR's weak perspective, both projecting to pixels plus depth.

Pixel convention everywhere: pixel (u, v) is centred on integer coordinates, as OpenCV's `u = fx X / Z + cx`
assumes. `project` returns `(B, N, 3)` = (u, v, z) where z is the camera-frame depth used by the z-buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _batched(points: Tensor, name: str) -> Tensor:
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"{name}: points should have shape (B, N, 3), got {tuple(points.shape)}")
    return points


@dataclass
class PerspectiveCamera:
    """Pinhole camera in the OpenCV convention (x right, y down, z forward; meters).

    K (B,3,3) intrinsics in pixels; R (B,3,3) and t (B,3) map world points to the camera frame: X_c = R X_w + t.
    R and t default to the identity (points already in the camera frame).
    """

    K: Tensor
    R: Tensor | None = None
    t: Tensor | None = None
    perspective = True

    def __post_init__(self) -> None:
        if self.K.dim() == 2:
            self.K = self.K[None]
        if self.K.shape[-2:] != (3, 3):
            raise ValueError(f"PerspectiveCamera: K should have shape (B, 3, 3), got {tuple(self.K.shape)}")
        if self.R is not None and self.R.dim() == 2:
            self.R = self.R[None]
        if self.t is not None and self.t.dim() == 1:
            self.t = self.t[None]

    @classmethod
    def from_focal(cls, focal: float | tuple[float, float], principal_point: tuple[float, float], batch_size: int = 1,
                   dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> "PerspectiveCamera":
        """A camera with intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] repeated for a batch, identity pose."""
        fx, fy = (focal, focal) if isinstance(focal, (int, float)) else focal
        K = torch.tensor([[fx, 0.0, principal_point[0]], [0.0, fy, principal_point[1]], [0.0, 0.0, 1.0]], dtype=dtype, device=device)
        return cls(K.expand(batch_size, 3, 3).clone())

    def to_camera_frame(self, points: Tensor) -> Tensor:
        """World points (B,N,3) -> camera-frame points (B,N,3)."""
        _batched(points, "PerspectiveCamera.to_camera_frame")
        if self.R is not None:
            points = points @ self.R.to(points).transpose(-1, -2)
        if self.t is not None:
            points = points + self.t.to(points)[:, None, :]
        return points

    def project(self, points: Tensor) -> Tensor:
        """World points (B,N,3) -> (B,N,3) of (u, v) pixels and camera depth z in meters."""
        cam = self.to_camera_frame(points)
        K = self.K.to(cam)
        z = cam[..., 2:3]
        uv = cam[..., :2] / z * torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None] + K[:, :2, 2][:, None]
        return torch.cat([uv, z], dim=-1)


@dataclass
class WeakPerspectiveCamera:
    """ACR/ROMP weak perspective: normalised image coordinates `x_n = s X + tx`, `y_n = s Y + ty` in [-1, 1].

    scale (B,) and translation (B,2) are unitless; image_size (H, W). Normalised -1 and +1 are the outer edges of
    the image, so pixel u = (x_n + 1) W / 2 - 0.5. Depth is the point's own z (orthographic z-buffer).
    """

    scale: Tensor
    translation: Tensor
    image_size: tuple[int, int]
    perspective = False

    def __post_init__(self) -> None:
        self.scale = self.scale.reshape(-1)
        self.translation = self.translation.reshape(-1, 2)

    @classmethod
    def from_params(cls, params: Tensor, image_size: tuple[int, int]) -> "WeakPerspectiveCamera":
        """From ACR's camera vector (B,3) = (s, tx, ty)."""
        return cls(params[..., 0], params[..., 1:3], image_size)

    def project(self, points: Tensor) -> Tensor:
        """Camera-aligned points (B,N,3) in meters -> (B,N,3) of (u, v) pixels and z."""
        _batched(points, "WeakPerspectiveCamera.project")
        H, W = self.image_size
        normalised = self.scale.to(points)[:, None, None] * points[..., :2] + self.translation.to(points)[:, None, :]
        half = torch.tensor([W / 2.0, H / 2.0], dtype=points.dtype, device=points.device)
        return torch.cat([(normalised + 1) * half - 0.5, points[..., 2:3]], dim=-1)

    def to_perspective_translation(self, focal: float) -> Tensor:
        """Translation (B,3) that makes `matching_perspective_camera(focal)` reproduce this projection exactly for
        points at z = 0 (and approximately near it): tz = 2 f / (s W), (tx, ty) = translation / s."""
        H, W = self.image_size
        tz = 2.0 * focal / (self.scale * W)
        return torch.cat([self.translation / self.scale[:, None], tz[:, None]], dim=-1)

    def matching_perspective_camera(self, focal: float) -> PerspectiveCamera:
        """Pinhole camera (fx = focal, fy = focal H / W, principal point at the image centre, t from
        `to_perspective_translation`) that views the points like this weak-perspective camera."""
        H, W = self.image_size
        cam = PerspectiveCamera.from_focal((focal, focal * H / W), ((W - 1) / 2.0, (H - 1) / 2.0), len(self.scale),
                                           self.scale.dtype, self.scale.device)
        cam.t = self.to_perspective_translation(focal)
        return cam


def scale_intrinsics(K: Tensor, scale: float) -> Tensor:
    """Intrinsics (..., 3, 3) for the image resized by `scale`, keeping pixel centres at integer coordinates."""
    K = K.clone()
    K[..., :2, :] *= scale
    K[..., :2, 2] += 0.5 * scale - 0.5
    return K
