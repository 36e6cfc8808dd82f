"""Anatomical joint limits for MANO hand poses, and a pose sampler that respects them.

Each finger joint gets a frame from MANO's rest layout: flexion (curling toward the palm), spread (sideways, in
the palm plane) and twist (about the bone). A joint's axis-angle vector is limited component-wise in that frame.
Frames are those of the right hand; left-hand poses are mirrored, (x, y, z) -> (x, -y, -z) per joint, limited,
and mirrored back. Poses are (..., 45) axis-angle in the flat-hand convention.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from hands.mano.builtin.rig import finger_bone, flexion_axis
from hands.mano.builtin.skeleton import FINGER_CHAINS
from hands.mano.joints import POSE_MIRROR

# (flexion, spread, twist) limits in radians, (low, high) each, by position along the finger.
FINGER_LIMITS = (
    ((-0.30, 1.60), (-0.35, 0.35), (-0.15, 0.15)),  # MCP
    ((-0.05, 1.90), (-0.05, 0.05), (-0.10, 0.10)),  # PIP
    ((-0.10, 1.40), (-0.05, 0.05), (-0.10, 0.10)),  # DIP
)
THUMB_LIMITS = (
    ((-0.50, 0.90), (-0.60, 0.60), (-0.60, 0.60)),  # CMC
    ((-0.30, 1.00), (-0.20, 0.20), (-0.20, 0.20)),  # MCP
    ((-0.30, 1.30), (-0.10, 0.10), (-0.10, 0.10)),  # IP
)


def joint_frames() -> np.ndarray:
    """(15,3,3) per finger joint (MANO joints 1..15) the rows flexion, spread and twist axes (right hand)."""
    frames = np.zeros((15, 3, 3))
    for joint in range(1, 16):
        flex = flexion_axis(joint)
        _, bone = finger_bone(joint)
        spread = np.cross(bone, flex)
        frames[joint - 1] = np.stack([flex, spread / np.linalg.norm(spread), bone])
    return frames


def joint_limits() -> np.ndarray:
    """(15,3,2) low/high limits (radians) of the flexion, spread and twist components of joints 1..15."""
    limits = np.zeros((15, 3, 2))
    for name, chain in FINGER_CHAINS.items():
        table = THUMB_LIMITS if name == "thumb" else FINGER_LIMITS
        for level, joint in enumerate(chain):
            limits[joint - 1] = np.asarray(table[level])
    return limits


def clamp_to_limits(pose: np.ndarray, side: str = "right") -> np.ndarray:
    """Clamp hand poses (..., 45) component-wise to `joint_limits` in each joint's anatomical frame."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] != 45:
        raise ValueError(f"clamp_to_limits: poses should have 45 values (15 joints x 3), got shape {pose.shape}")
    per_joint = pose.reshape(*pose.shape[:-1], 15, 3)
    if side == "left":
        per_joint = per_joint * POSE_MIRROR
    frames, limits = joint_frames(), joint_limits()
    local = np.einsum("jab,...jb->...ja", frames, per_joint)
    local = np.clip(local, limits[..., 0], limits[..., 1])
    clamped = np.einsum("jab,...ja->...jb", frames, local)
    if side == "left":
        clamped = clamped * POSE_MIRROR
    return clamped.reshape(pose.shape)


def within_limits(pose: np.ndarray, side: str = "right", tolerance: float = 1e-9) -> np.ndarray:
    """(...,) bool: every joint of the pose (..., 45) is within `joint_limits`."""
    return np.abs(clamp_to_limits(pose, side) - np.asarray(pose)).reshape(*np.shape(pose)[:-1], -1).max(-1) <= tolerance


def sample_hand_poses(rng: np.random.Generator, count: int, components: np.ndarray, mean: np.ndarray,
                      side: str = "right", num_components: int = 12, scale: float = 0.9, decay: float = 0.8) -> np.ndarray:
    """Random plausible hand poses (count, 45), flat-hand convention.

    Coefficients on the first `num_components` PCA directions (rows of `components`, normalised) are drawn from
    N(0, (scale * decay**i)^2) radians, added to the model's `mean` pose and clamped to the joint limits.
    `components`/`mean` are the model's `hands_components` and `hands_mean` for `side`.
    """
    components = np.asarray(components, dtype=np.float64)[:num_components]
    directions = components / np.linalg.norm(components, axis=1, keepdims=True).clip(1e-12)
    sigma = scale * decay ** np.arange(len(directions))
    coefficients = rng.normal(size=(count, len(directions))) * sigma
    return clamp_to_limits(np.asarray(mean, dtype=np.float64) + coefficients @ directions, side)


@functools.lru_cache(maxsize=1)
def _limit_tables() -> tuple[np.ndarray, np.ndarray]:
    return joint_frames(), joint_limits()


@functools.lru_cache(maxsize=8)
def _torch_limit_tables(dtype, device) -> tuple:
    import torch

    return tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in _limit_tables())


def limit_excess(pose: torch.Tensor, side: str = "right") -> torch.Tensor:
    """Differentiable distance (radians, >= 0) by which hand poses (..., 45) leave `joint_limits`, per joint and
    component (..., 15, 3); zero inside the limits. The soft counterpart of `clamp_to_limits` for fitting."""
    import torch

    per_joint = pose.reshape(*pose.shape[:-1], 15, 3)
    if side == "left":
        per_joint = per_joint * per_joint.new_tensor(POSE_MIRROR)
    frames, limits = _torch_limit_tables(per_joint.dtype, per_joint.device)
    local = torch.einsum("jab,...jb->...ja", frames, per_joint)
    return torch.relu(local - limits[..., 1]) + torch.relu(limits[..., 0] - local)
