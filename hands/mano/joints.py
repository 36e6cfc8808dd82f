"""Hand joint orders and conversions between them.

Three 21-joint orders are used across the project (see shared/DESIGN.md):

- ``"canonical"`` (OpenPose / MediaPipe): wrist, thumb CMC, MCP, IP, tip, index MCP, PIP, DIP, tip, middle, ring, pinky.
- ``"interhand"`` (InterHand2.6M, per hand): thumb tip, IP, MCP, CMC, index tip..MCP, middle, ring, pinky, wrist last.
  Two-hand arrays have 42 joints: right 0-20, left 21-41.
- ``"mano"`` (MANO's 16 kinematic joints + 5 tips, as OHTA/HandAvatar store them): wrist, index1-3, middle1-3,
  pinky1-3, ring1-3, thumb1-3, then tips of thumb, index, middle, ring, pinky.
"""

from __future__ import annotations

from typing import Literal, Sequence, TypeVar

import numpy as np
import torch

JointOrder = Literal["canonical", "interhand", "mano"]
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

NUM_MANO_JOINTS = 16
NUM_HAND_JOINTS = 21

#: Index of the middle-finger MCP in each joint order (ACR and OHTA centre their hands on it).
MIDDLE_MCP: dict[str, int] = {"canonical": 9, "interhand": 11, "mano": 4}
#: Per-joint axis-angle sign pattern that mirrors a rotation between the right and the left hand (a reflection
#: of x: x kept, y and z negated); multiply (..., 3) rotations by it.
POSE_MIRROR = np.array([1.0, -1.0, -1.0])

#: Parent of each of MANO's 16 kinematic joints (-1 for the wrist).
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
MANO_JOINT_NAMES: tuple[str, ...] = (
    "wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3", "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3",
)

#: Fingertip vertex ids (thumb, index, middle, ring, pinky) used for the 5 tip joints, per side.
TIP_VERTEX_IDS: dict[str, tuple[int, ...]] = {
    "right": (745, 317, 444, 556, 673),
    "left": (745, 317, 445, 556, 673),
}

CANONICAL_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
#: Parent of each canonical joint (-1 for the wrist); used for skeleton drawing and bone lengths.
CANONICAL_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)

# Index arrays: order_X = order_Y[..., FROM_Y, :].
_CANONICAL_FROM = {
    "canonical": tuple(range(21)),
    "mano": (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20),
    "interhand": (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16),
}


def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def joint_permutation(src: JointOrder, dst: JointOrder) -> tuple[int, ...]:
    """Indices `idx` such that `joints_dst = joints_src[..., idx, :]` for 21-joint arrays."""
    for name in (src, dst):
        if name not in _CANONICAL_FROM:
            raise ValueError(f"unknown joint order {name!r}; expected one of {sorted(_CANONICAL_FROM)}")
    # canonical = src[CF_src] and canonical = dst[CF_dst], so dst = canonical[inverse(CF_dst)] = src[CF_src[inverse(CF_dst)]]
    canonical_from_src = _CANONICAL_FROM[src]
    return tuple(canonical_from_src[c] for c in _inverse(_CANONICAL_FROM[dst]))


def convert_joints(joints: ArrayT, src: JointOrder, dst: JointOrder) -> ArrayT:
    """Reorder joints `(..., 21, D)` (or two hands `(..., 42, D)`, right first) from order `src` to `dst`."""
    n = joints.shape[-2]
    if n not in (21, 42):
        raise ValueError(f"convert_joints: expected 21 or 42 joints on axis -2, got shape {tuple(joints.shape)}")
    idx = list(joint_permutation(src, dst))
    if n == 42:
        idx = idx + [i + 21 for i in idx]
    if isinstance(joints, torch.Tensor):
        return joints[..., torch.as_tensor(idx, device=joints.device), :]
    return joints[..., idx, :]
