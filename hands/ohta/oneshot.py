"""OHTA's one-shot input format: `<root>/{img,mask,anno}/<name>.{jpg,png,pkl}` (reference/ohta.md section 4).

The annotation pickle is a list `[cameras, mesh_infos, bbox2d, img_type]`. Units are decimetres; `poses` (48)
is in the flat-hand convention with the global orientation in the camera frame; `joints` and `tpose_joints`
(MANO 16 + 5 tips) are centred on the middle MCP (MANO joint 4); `Th` places that origin in the camera, defined
as ground-truth wrist minus MANO wrist; `joint_cam` / `joint_img` hold the ground-truth joints in MANO's
kinematic order with the tips in finger order index, middle, pinky, ring, thumb, as OHTA's InterHand2.6M
preprocessing writes them.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hands.io.atomic import atomic_write_bytes
from hands.io.safe_pickle import load_pickle
from hands.mano.joints import MIDDLE_MCP, convert_joints

DECIMETERS = 10.0
"""OHTA works in decimetres (the release's annotations and frame): decimetres per meter."""
# MANO-order joints (16 + tips thumb, index, middle, ring, pinky) -> OHTA's ground-truth order (tips index,
# middle, pinky, ring, thumb).
GT_ORDER_FROM_MANO = tuple(range(16)) + (17, 18, 20, 19, 16)


class OneShotFormatError(ValueError):
    """An OHTA annotation pickle does not have the expected structure; the message names the file and field."""


@dataclass
class OneShotAnnotation:
    """Contents of one OHTA annotation pickle (see the module docstring for units and frames)."""

    intrinsics: np.ndarray
    poses: np.ndarray
    shape: np.ndarray
    Th: np.ndarray
    joints: np.ndarray
    tpose_joints: np.ndarray
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    joint_img: np.ndarray
    joint_cam: np.ndarray
    joint_valid: np.ndarray
    bbox2d: np.ndarray
    Rh: np.ndarray = field(default_factory=lambda: np.zeros(3))
    extrinsics: np.ndarray = field(default_factory=lambda: np.eye(4))
    distortions: np.ndarray = field(default_factory=lambda: np.zeros(5))
    img_type: str = "rgb"

    def to_pickle_list(self) -> list:
        """The on-disk list structure (InterHand-style keys: `extrinsics`)."""
        cameras = {"intrinsics": np.asarray(self.intrinsics, np.float64), "extrinsics": np.asarray(self.extrinsics, np.float64),
                   "distortions": np.asarray(self.distortions, np.float64)}
        mesh_infos = {
            "Rh": np.asarray(self.Rh, np.float64), "Th": np.asarray(self.Th, np.float32),
            "poses": np.asarray(self.poses, np.float64), "shape": np.asarray(self.shape, np.float64),
            "joints": np.asarray(self.joints, np.float32), "tpose_joints": np.asarray(self.tpose_joints, np.float32),
            "bbox": {"min_xyz": np.asarray(self.bbox_min, np.float32), "max_xyz": np.asarray(self.bbox_max, np.float32)},
            "joint_img": np.asarray(self.joint_img, np.float32), "joint_cam": np.asarray(self.joint_cam, np.float32),
            "joint_valid": np.asarray(self.joint_valid, np.float64).reshape(21, 1),
        }
        return [cameras, mesh_infos, np.asarray(self.bbox2d, np.float64), self.img_type]


def _field(container: dict, key: str, shape: tuple, where: str) -> np.ndarray:
    if key not in container:
        raise OneShotFormatError(f"{where}: missing field '{key}'")
    value = np.asarray(container[key], dtype=np.float64)
    if value.shape != shape and value.size != int(np.prod(shape)):
        raise OneShotFormatError(f"{where}: field '{key}' should have shape {shape}, got {value.shape}")
    if not np.isfinite(value).all():
        raise OneShotFormatError(f"{where}: field '{key}' holds NaN or infinite values")
    return value.reshape(shape)


def _intrinsics(K: np.ndarray, path: Path) -> np.ndarray:
    if not (K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1):
        raise OneShotFormatError(f"{path} cameras: field 'intrinsics' needs positive focal lengths and K[2, 2] = 1, "
                                 f"got {K.tolist()}")
    return K


def read_oneshot_annotation(path: str | Path) -> OneShotAnnotation:
    """Read an OHTA annotation pickle (restricted unpickler); both `extrinsic` and `extrinsics` keys are accepted."""
    path = Path(path)
    data = load_pickle(path)
    if not isinstance(data, (list, tuple)) or len(data) != 4 or not isinstance(data[0], dict) or not isinstance(data[1], dict):
        raise OneShotFormatError(f"{path}: expected a list [cameras, mesh_infos, bbox2d, img_type]")
    cameras, infos, bbox2d, img_type = data
    extrinsics = cameras.get("extrinsics", cameras.get("extrinsic", np.eye(4)))
    bbox = infos.get("bbox")
    if not isinstance(bbox, dict):
        raise OneShotFormatError(f"{path}: mesh_infos field 'bbox' should be a dict with min_xyz and max_xyz")
    where = f"{path} mesh_infos"
    info = {key: _field(infos, key, shape, where) for key, shape in (
        ("poses", (48,)), ("shape", (10,)), ("Th", (3,)), ("joints", (21, 3)), ("tpose_joints", (21, 3)),
        ("joint_img", (21, 2)), ("joint_cam", (21, 3)), ("joint_valid", (21, 1)))}
    return OneShotAnnotation(
        intrinsics=_intrinsics(_field(cameras, "intrinsics", (3, 3), f"{path} cameras"), path), **info,
        bbox_min=_field(bbox, "min_xyz", (3,), f"{where}.bbox"), bbox_max=_field(bbox, "max_xyz", (3,), f"{where}.bbox"),
        bbox2d=np.asarray(bbox2d, dtype=np.float64).reshape(4),
        Rh=_field(infos, "Rh", (3,), where) if "Rh" in infos else np.zeros(3),
        extrinsics=np.asarray(extrinsics, dtype=np.float64).reshape(4, 4),
        distortions=np.asarray(cameras.get("distortions", np.zeros(5)), dtype=np.float64).reshape(-1),
        img_type=str(img_type))


def write_oneshot_annotation(annotation: OneShotAnnotation, path: str | Path, overwrite: bool = False) -> Path:
    """Write the pickle (atomically; refuses to replace an existing file unless `overwrite`)."""
    return atomic_write_bytes(path, pickle.dumps(annotation.to_pickle_list(), protocol=4), overwrite)


def oneshot_annotation(pose: np.ndarray, betas: np.ndarray, posed_joints: np.ndarray, rest_joints: np.ndarray,
                       vertices: np.ndarray, gt_joints_cam: np.ndarray, joint_valid: np.ndarray, K: np.ndarray,
                       bbox2d: np.ndarray) -> OneShotAnnotation:
    """Build an annotation from a right hand in a crop camera (all in meters, canonical joint order):
    pose (48,) flat with camera-frame global orient, betas (10,), the MANO output's posed joints (21,3), its
    rest-pose joints (21,3) and vertices (778,3) in the camera, ground-truth camera joints (21,3) and their
    validity (21,), crop intrinsics K (3,3) and the crop box [x, y, w, h] in the original image."""
    posed = convert_joints(posed_joints, "canonical", "mano") * DECIMETERS
    rest = convert_joints(rest_joints, "canonical", "mano") * DECIMETERS
    origin = posed[MIDDLE_MCP['mano']]
    gt = (convert_joints(gt_joints_cam, "canonical", "mano") * DECIMETERS)[list(GT_ORDER_FROM_MANO)]
    valid = convert_joints(np.asarray(joint_valid, dtype=np.float64)[:, None], "canonical", "mano")[list(GT_ORDER_FROM_MANO)]
    local_vertices = vertices * DECIMETERS - origin
    projected = gt[:, :2] / gt[:, 2:] * np.diag(K)[:2] + K[:2, 2]
    return OneShotAnnotation(
        intrinsics=K, poses=pose, shape=betas, Th=gt[0] - (posed[0] - origin), joints=posed - origin,
        tpose_joints=rest - rest[MIDDLE_MCP['mano']], bbox_min=local_vertices.min(0) - 0.01, bbox_max=local_vertices.max(0) + 0.01,
        joint_img=projected, joint_cam=gt, joint_valid=valid, bbox2d=bbox2d)
