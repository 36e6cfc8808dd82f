"""Named hand poses (flat-hand convention, right hand, (45,) axis-angle) for demos and tests.

Flexion axes come from MANO's rest layout, so the poses also read correctly on official MANO files; mirror them
for the left hand with (x, y, z) -> (x, -y, -z) per joint.
"""

from __future__ import annotations

import numpy as np

from hands.mano.builtin.rig import pose_from_joint_angles
from hands.mano.builtin.skeleton import FINGER_CHAINS

FOUR_FINGERS = ("index", "middle", "ring", "pinky")


def _curl(fingers, levels) -> dict[int, float]:
    return {j: a for name in fingers for j, a in zip(FINGER_CHAINS[name], levels)}


def named_hand_pose(name: str) -> np.ndarray:
    """'rest', 'fist', 'point', 'spread' or 'relaxed' as a (45,) flat-hand axis-angle pose."""
    if name == "rest":
        return np.zeros(45)
    if name == "fist":
        return pose_from_joint_angles({**_curl(FOUR_FINGERS, (1.5, 1.6, 1.2)), **_curl(("thumb",), (0.4, 0.6, 0.6))})
    if name == "point":
        return pose_from_joint_angles({**_curl(FOUR_FINGERS[1:], (1.5, 1.6, 1.2)), **_curl(("thumb",), (0.4, 0.6, 0.6)),
                                       **_curl(("index",), (0.05, 0.05, 0.0))})
    if name == "relaxed":
        return pose_from_joint_angles({**_curl(FOUR_FINGERS, (0.3, 0.5, 0.3)), **_curl(("thumb",), (0.1, 0.2, 0.2))})
    if name == "spread":
        pose = np.zeros((15, 3))
        for finger, angle in zip(FOUR_FINGERS + ("thumb",), (0.30, 0.05, -0.15, -0.35, 0.35)):
            pose[FINGER_CHAINS[finger][0] - 1, 1] = angle  # about the palm normal: spread in the palm plane
        return pose.reshape(45)
    raise ValueError(f"unknown pose {name!r}; expected rest, fist, point, spread or relaxed")
