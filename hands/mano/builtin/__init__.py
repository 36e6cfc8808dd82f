"""The built-in open hand model: a deterministic, MANO-format hand that ships with the project.

`builtin_model(side)` loads the generated right hand from `hands/mano/assets/builtin_hand.npz` (regenerate it with
`python scripts/build_builtin_hand.py`) and mirrors it for the left hand the way the official files are mirrored,
including their shapedirs quirk, so the same left-hand fix applies to both.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from hands.mano.joints import MANO_PARENTS, POSE_MIRROR, TIP_VERTEX_IDS
from hands.mano.model_file import ManoModelData, Side, load_mano_file

ASSET_PATH = Path(__file__).resolve().parent.parent / "assets" / "builtin_hand.npz"
NUM_VERTICES = 778


def _place_tip_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber vertices so MANO's fingertip ids (745, 317, 444/445, 556, 673) are this mesh's fingertips."""
    from hands.mano.builtin.skeleton import TIP_POSITIONS

    targets: list[tuple[int, int]] = []  # (new id, old id)
    taken: set[int] = set()
    right, left = TIP_VERTEX_IDS["right"], TIP_VERTEX_IDS["left"]
    for finger, tip in enumerate(TIP_POSITIONS):
        order = [int(i) for i in np.argsort(np.linalg.norm(vertices - tip, axis=1)) if int(i) not in taken]
        ids = [right[finger]] if right[finger] == left[finger] else [right[finger], left[finger]]
        for new_id, old_id in zip(ids, order):
            targets.append((new_id, old_id))
            taken.add(old_id)
    new_of_old = np.arange(len(vertices))
    old_at_new = np.arange(len(vertices))
    for new_id, old_id in targets:
        current = new_of_old[old_id]  # where old_id sits now; swap it with whatever sits at new_id
        displaced = old_at_new[new_id]
        old_at_new[new_id], old_at_new[current] = old_id, displaced
        new_of_old[old_id], new_of_old[displaced] = new_id, current
    return vertices[old_at_new], new_of_old[faces]


def generate_right_hand() -> ManoModelData:
    """Generate the built-in right hand from scratch (about 15 s; deterministic)."""
    from hands.mano.builtin import rig
    from hands.mano.builtin.surface import build_surface

    surface = build_surface(NUM_VERTICES)
    vertices, faces = _place_tip_vertices(surface.vertices, surface.faces)
    weights = rig.skinning_weights(vertices, faces)
    return ManoModelData(
        v_template=vertices,
        faces=faces,
        shapedirs=rig.shape_directions(vertices, weights),
        posedirs=np.zeros((len(vertices), 3, 135)),
        J_regressor=rig.joint_regressor(vertices),
        weights=weights,
        parents=np.asarray(MANO_PARENTS, dtype=np.int64),
        hands_components=rig.pose_pca_basis(),
        hands_mean=rig.relaxed_mean_pose(),
        side="right",
        source="built-in open hand (generated)",
        is_builtin=True,
    )


def mirror_to_left(right: ManoModelData) -> ManoModelData:
    """The left hand as the mirror image (x -> -x) of `right`, stored like the official MANO_LEFT.pkl.

    Like the official file, the shapedirs are NOT mirrored (their x-component equals the right hand's); the layer's
    left-hand shapedirs fix (on by default) negates it. Poses mirror as (x, y, z) -> (x, -y, -z) per joint.
    """
    flip_pose = np.tile(POSE_MIRROR, 15)
    vertices = right.v_template * np.array([-1.0, 1.0, 1.0])
    return ManoModelData(
        v_template=vertices,
        faces=right.faces[:, ::-1].copy(),
        shapedirs=right.shapedirs.copy(),
        posedirs=np.zeros_like(right.posedirs),
        J_regressor=right.J_regressor.copy(),
        weights=right.weights.copy(),
        parents=right.parents.copy(),
        hands_components=right.hands_components * flip_pose,
        hands_mean=right.hands_mean * flip_pose,
        side="left",
        source=right.source.replace("right", "left"),
        is_builtin=True,
    )


@functools.lru_cache(maxsize=2)
def builtin_model(side: Side = "right") -> ManoModelData:
    """The built-in open hand model for `side` (right from the shipped asset, left as its mirror)."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if not ASSET_PATH.is_file():
        raise FileNotFoundError(
            f"built-in hand asset missing: {ASSET_PATH}; regenerate it with `python scripts/build_builtin_hand.py`"
        )
    right = load_mano_file(ASSET_PATH, side="right")
    from dataclasses import replace

    right = replace(right, source="built-in open hand (right)", is_builtin=True)
    return right if side == "right" else mirror_to_left(right)
