"""InterHand2.6M v1.0 file format: paths, joint layout, cameras and the NeuralAnnot MANO parameters.

Facts (reference/acr.md part B): world units are millimetres; `camrot` R maps world to camera and `campos` is
the camera centre, so X_cam = R (X_world - campos). 42 joints per image: right 0-20, left 21-41, each hand in
InterHand order (tip to MCP per finger, wrist last). NeuralAnnot MANO parameters are per (capture, frame) in the
world frame: `pose` 48 axis-angle values whose 45 finger values are relative to MANO's `hands_mean`, `shape`
10 betas and `trans` in meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
HAND_TYPES = ("right", "left", "interacting")
NUM_JOINTS = 42
ROOT_INDEX = {"right": 20, "left": 41}
JOINT_SLICE = {"right": slice(0, 21), "left": slice(21, 42)}
ANNOTATION_KINDS = ("data", "camera", "joint_3d", "MANO_NeuralAnnot")


def annotation_path(root: str | Path, split: str, kind: str) -> Path:
    """`<root>/annotations/<split>/InterHand2.6M_<split>_<kind>.json` for kind in ANNOTATION_KINDS."""
    if split not in SPLITS:
        raise ValueError(f"InterHand2.6M split should be one of {SPLITS}, got {split!r}")
    if kind not in ANNOTATION_KINDS:
        raise ValueError(f"InterHand2.6M annotation kind should be one of {ANNOTATION_KINDS}, got {kind!r}")
    return Path(root) / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json"


def image_relpath(capture: int, seq_name: str, camera: str, frame_idx: int) -> str:
    """Image path relative to `images/<split>/`, as the data file's `file_name` stores it."""
    return f"Capture{capture}/{seq_name}/cam{camera}/image{frame_idx}.jpg"


@dataclass
class InterHandCamera:
    """One camera of a capture: R (3,3) world->camera, campos (3,) mm, focal (2,), princpt (2,) pixels."""

    R: np.ndarray
    campos: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray

    @property
    def K(self) -> np.ndarray:
        """(3,3) intrinsics."""
        return np.array([[self.focal[0], 0.0, self.princpt[0]], [0.0, self.focal[1], self.princpt[1]], [0.0, 0.0, 1.0]])

    @property
    def t_meters(self) -> np.ndarray:
        """(3,) translation of the world->camera transform in meters: X_cam = R X_world + t."""
        return -self.R @ self.campos / 1000.0

    def world_to_camera(self, points_mm: np.ndarray) -> np.ndarray:
        """World points (...,3) in mm -> camera-frame points (...,3) in mm."""
        return (np.asarray(points_mm) - self.campos) @ self.R.T

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (...,3) (any unit) -> pixels (...,2)."""
        points_cam = np.asarray(points_cam)
        return points_cam[..., :2] / points_cam[..., 2:3] * self.focal + self.princpt


def mano_params_to_camera(global_orient: np.ndarray, transl: np.ndarray, root_joint: np.ndarray,
                          R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move MANO's global rotation and translation from the world into a camera frame.

    global_orient (3,) axis-angle and transl (3,) meters in the world; root_joint (3,) the shaped rest-pose wrist
    (MANO rotates about it, not about the origin); R (3,3), t (3,) meters with X_cam = R X_world + t.
    Returns (global_orient_cam (3,), transl_cam (3,)) giving the same mesh in the camera frame.
    """
    from scipy.spatial.transform import Rotation

    rotation = Rotation.from_matrix(R @ Rotation.from_rotvec(global_orient).as_matrix())
    transl_cam = R @ (np.asarray(transl) + root_joint) + t - root_joint
    return rotation.as_rotvec(), transl_cam


def neuralannot_to_flat(pose: np.ndarray, hands_mean: np.ndarray) -> np.ndarray:
    """NeuralAnnot pose (48,) (fingers relative to hands_mean) -> flat-hand convention (48,)."""
    pose = np.array(pose, dtype=np.float64)
    pose[3:] += hands_mean
    return pose


def flat_to_neuralannot(pose: np.ndarray, hands_mean: np.ndarray) -> np.ndarray:
    """Flat-hand pose (48,) -> NeuralAnnot's mean-relative pose (48,)."""
    pose = np.array(pose, dtype=np.float64)
    pose[3:] -= hands_mean
    return pose
