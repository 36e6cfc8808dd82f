"""Rest skeleton of the built-in open hand (right hand, meters, MANO's 16 joints + 5 tips).

The layout is MANO's: palm in the x-z plane, fingers toward -x, thumb toward +z, palm facing -y, origin at the
middle-finger MCP. The numbers are the rest joints of one real MANO fit (the `tpose_joints` of OHTA's MIT-licensed
InterHand2.6M sample `rainbow.pkl`), converted from decimeters and rounded to 0.01 mm.
"""

from __future__ import annotations

import numpy as np

REST_JOINTS = np.array(
    [
        [0.10328, 0.00119, 0.00354],  # 0 wrist
        [0.00664, -0.00402, 0.02665],  # 1 index1 (MCP)
        [-0.02894, -0.00003, 0.02932],  # 2 index2 (PIP)
        [-0.05313, -0.00169, 0.02898],  # 3 index3 (DIP)
        [0.00000, 0.00000, 0.00000],  # 4 middle1
        [-0.03378, 0.00136, -0.00606],  # 5 middle2
        [-0.05866, -0.00003, -0.01042],  # 6 middle3
        [0.02891, -0.00977, -0.04381],  # 7 pinky1
        [0.01008, -0.01008, -0.05730],  # 8 pinky2
        [-0.00767, -0.01104, -0.06843],  # 9 pinky3
        [0.01469, -0.00279, -0.02576],  # 10 ring1
        [-0.01643, -0.00061, -0.03177],  # 11 ring2
        [-0.04236, -0.00283, -0.04011],  # 12 ring3
        [0.07681, -0.01649, 0.03193],  # 13 thumb1 (CMC)
        [0.05567, -0.01476, 0.05856],  # 14 thumb2 (MCP)
        [0.03157, -0.02111, 0.07430],  # 15 thumb3 (IP)
    ]
)

#: Fingertip surface points: thumb, index, middle, ring, pinky.
TIP_POSITIONS = np.array(
    [
        [0.00130, -0.02755, 0.09657],
        [-0.08066, -0.00361, 0.02733],
        [-0.08687, 0.00062, -0.01610],
        [-0.06942, -0.00342, -0.04834],
        [-0.02762, -0.01281, -0.07883],
    ]
)

FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
#: MANO joint ids of each finger, proximal to distal (same order as TIP_POSITIONS).
FINGER_CHAINS: dict[str, tuple[int, int, int]] = {
    "thumb": (13, 14, 15),
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "ring": (10, 11, 12),
    "pinky": (7, 8, 9),
}
#: Direction the palm faces (the side fingers curl toward) in the rest pose.
PALM_NORMAL = np.array([0.0, -1.0, 0.0])


def bone_segments() -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """For each MANO joint, the rest-pose segments of the body part it moves (joint 0: palm and wrist)."""
    segments: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {0: []}
    wrist = REST_JOINTS[0]
    for finger_id, name in enumerate(FINGER_NAMES):
        chain = FINGER_CHAINS[name]
        segments[0].append((wrist, REST_JOINTS[chain[0]]))
        points = [REST_JOINTS[j] for j in chain] + [TIP_POSITIONS[finger_id]]
        for k, joint in enumerate(chain):
            segments[joint] = [(points[k], points[k + 1])]
    segments[0].append((wrist, wrist + np.array([0.03, 0.0, 0.0])))
    return segments
