"""Using an avatar: renders in new poses and views, pose sequences, identity interpolation and sampling, and a
mesh with baked vertex colours.

Every render goes through the same baked-view renderer as creation (`CachedView`: thin band around the posed mesh,
per-ray samples carrying all but `weight_tolerance` of the weight).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hands.mano.poses import named_hand_pose
from hands.ohta.avatar import HandAvatar
from hands.ohta.creation import CachedView, CreationConfig, ViewGeometry
from hands.ohta.oneshot import DECIMETERS
from hands.render.draw import to_uint8_image

DEFAULT_SEQUENCE = ("rest", "relaxed", "fist", "point", "spread", "rest")
PALM_TO_CAMERA = (math.pi, 0.0, 0.0)
"""Global orientation (camera axes) showing a flat right hand's palm with the fingers up."""


def framing_view(avatar: HandAvatar, pose: torch.Tensor, betas: torch.Tensor, size: int, distance: float = 4.5,
                 fill: float = 0.8) -> ViewGeometry:
    """A camera that centres the posed hand (pose (48,), global orient in camera axes) in a size² image, the
    hand's larger extent covering `fill` of it, at `distance` decimetres."""
    with torch.no_grad():
        vertices = avatar.mano(pose[None, :3], pose[None, 3:], betas[None]).vertices[0]
    low, high = vertices.amin(0), vertices.amax(0)
    centre = (low + high) / 2
    extent = float((high - low)[:2].max())
    focal = fill * size * (distance - float(high[2] - centre[2])) / max(extent, 1e-6)
    K = torch.tensor([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1]])
    Th = torch.tensor([-float(centre[0]), -float(centre[1]), distance - float(centre[2])])
    return ViewGeometry(K, Th / DECIMETERS, pose.float(), betas.float(), (size, size))


def turned(view: ViewGeometry, angle: float, axis: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> ViewGeometry:
    """The same hand turned by `angle` radians about a camera axis through its origin (the middle MCP)."""
    turn = axis_angle_to_matrix(torch.tensor(axis, dtype=torch.float32)[None] * angle)[0]
    orient = matrix_to_axis_angle((turn @ axis_angle_to_matrix(view.pose[None, :3].float())[0])[None])[0]
    return ViewGeometry(view.K, view.transl, torch.cat([orient, view.pose[3:].float()]), view.betas, view.size)


def with_fingers(view: ViewGeometry, hand_pose: torch.Tensor) -> ViewGeometry:
    """The view with another finger pose (45,)."""
    return ViewGeometry(view.K, view.transl, torch.cat([view.pose[:3].float(), hand_pose.float()]), view.betas, view.size)


def read_pose_sequence(path: str | Path) -> torch.Tensor:
    """Finger poses (N, 45) from .npy/.npz ((N, 45) or (N, 48): the global orient is dropped) or JSON (a list of
    45- or 48-value lists). Flat-hand convention."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pose sequence not found: {path}")
    try:
        if path.suffix == ".json":
            poses = np.asarray(json.loads(path.read_text()), dtype=np.float64)
        else:
            loaded = np.load(path, allow_pickle=False)
            poses = loaded[loaded.files[0]] if hasattr(loaded, "files") else loaded
    except (ValueError, OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a pose array ({error})") from None
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] not in (45, 48):
        raise ValueError(f"{path}: expected poses of shape (N, 45) or (N, 48), got {poses.shape}")
    return torch.as_tensor(poses[:, -45:], dtype=torch.float32)


def default_sequence(frames_between: int = 12) -> torch.Tensor:
    """Finger poses (N, 45) moving through rest, relaxed, fist, point, spread and back (linear in axis-angle)."""
    keys = [torch.as_tensor(named_hand_pose(name), dtype=torch.float32) for name in DEFAULT_SEQUENCE]
    steps = torch.linspace(0, 1, frames_between + 1)[:-1, None]
    frames = [a + (b - a) * steps for a, b in zip(keys[:-1], keys[1:])]
    return torch.cat(frames + [keys[-1][None]])


def render_view(avatar: HandAvatar, view: ViewGeometry, identity: torch.Tensor | None = None,
                background: tuple[float, float, float] = (0.0, 0.0, 0.0), config: CreationConfig | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of the avatar (its own identity unless one (33,) is given) over a background colour."""
    config = config or CreationConfig()
    identity = avatar.appearance.id_feature if identity is None else identity
    with torch.no_grad():
        cached = CachedView(avatar, view, config)
        image = cached.render(avatar, identity.to(cached.device))
        image = image + (1 - cached.opacity[..., None]) * torch.tensor(background, device=image.device)
    return to_uint8_image(image)


def interpolate_identities(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, D) codes from start to end (D,), both included, linearly."""
    weights = torch.linspace(0, 1, steps, dtype=start.dtype, device=start.device)[:, None]
    return start[None] * (1 - weights) + end[None] * weights


def sample_identities(codes: torch.Tensor, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(count, D) codes drawn from a Gaussian fitted to the prior's identity rows (N, D) (mean, covariance with a
    small ridge)."""
    codes = codes.detach().double()
    mean = codes.mean(dim=0)
    covariance = torch.cov(codes.T) + 1e-6 * torch.eye(codes.shape[1], dtype=codes.dtype)
    factor = torch.linalg.cholesky(covariance)
    noise = torch.randn(count, codes.shape[1], generator=generator, dtype=codes.dtype)
    return (mean + noise @ factor.T).float()


def vertex_colours(avatar: HandAvatar, identity: torch.Tensor | None = None, hand_pose: torch.Tensor | None = None,
                   betas: torch.Tensor | None = None, albedo_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sealed mesh in a pose (default: flat hand) with colours baked at its vertices: vertices (V, 3) in meters
    (OHTA's frame scaled to meters: origin at the middle MCP, camera axes), faces (F, 3), colours (V, 3) in [0, 1]
    (albedo × the pose's shadow, or the albedo alone)."""
    identity = avatar.appearance.id_feature if identity is None else identity
    device = identity.device
    hand_pose = torch.zeros(45, device=device) if hand_pose is None else hand_pose.to(device)
    betas = torch.zeros(10, device=device) if betas is None else betas.to(device)
    with torch.no_grad():
        posed = avatar.pose(torch.zeros(1, 3, device=device), hand_pose[None].float(), betas[None].float())
        shaded = avatar.shade(posed.vertices, posed, identity[None], calibrate=True)
    colours = shaded["albedo" if albedo_only else "colour"][0]
    return (posed.vertices[0].cpu().numpy() / DECIMETERS, posed.faces.cpu().numpy(), colours.cpu().numpy())
