"""InterHand2.6M as a torch Dataset: one sample per annotation, cropped around the hands, with consistent labels.

Every label is expressed in the crop's camera: 3D joints (meters, camera frame rotated/mirrored like the
crop), 2D joints in crop pixels, intrinsics, and MANO parameters (flat-hand convention) per side. A horizontal
flip turns the right hand into a left hand and vice versa: joints, validity, hand type and MANO fits swap sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from hands.data.crops import MIRROR_X, AugmentConfig, expand_bbox, sample_crop, transform_points, warp_image
from hands.data.interhand.format import HAND_TYPES, JOINT_SLICE, ROOT_INDEX, mano_params_to_camera, neuralannot_to_flat
from hands.data.interhand.index import InterHandIndex, InterHandRecord
from hands.io.images import read_image
from hands.mano import build_mano
from hands.mano.joints import POSE_MIRROR
from hands.mano.layer import ManoLayer
from hands.mano.model_file import SIDES


@dataclass
class InterHandDataConfig:
    """Which annotations are used and how they are cropped."""

    root: str = "data/InterHand2.6M"
    """Dataset folder holding images/ and annotations/."""
    split: str = "train"
    image_size: int = 256
    """Side of the square crop in pixels."""
    bbox_scale: float = 1.25
    """The annotation box is made square and grown by this factor."""
    hand_types: list[str] = field(default_factory=lambda: ["right", "left", "interacting"])
    """Hand types kept."""
    require_hand_type_valid: bool = True
    min_valid_joints: int = 1
    """Annotations with fewer valid joints are dropped."""
    require_mano: bool = False
    """Drop annotations without a MANO fit for every hand of their type."""
    augment: bool = False
    """Random scale, rotation, translation, flip and colour (see AugmentConfig)."""
    full_image: bool = False
    """Crop the whole image padded to a square (ACR's input) instead of the hands' box."""
    mirror_left: bool = False
    """Always mirror single left hands into right hands (for right-hand-only methods such as OHTA)."""
    cache_dir: str | None = None
    """Where the annotation index is kept (default: next to the annotations)."""
    path_contains: str | None = None
    """Keep only images whose file name (Capture/sequence/camera/image) contains this, e.g.
    Capture0/ROM03_RT_No_Occlusion (OHTA's evaluation sequence)."""
    every: int = 1
    """Keep every n-th of the selected annotations (OHTA evaluates every 200th frame)."""


class InterHandDataset(Dataset):
    """Crops of InterHand2.6M (or of a synthetic set in its format) with joints, cameras and MANO fits."""

    def __init__(self, config: InterHandDataConfig, augment: AugmentConfig | None = None,
                 mano_layers: dict[str, ManoLayer] | None = None, seed: int = 0) -> None:
        self.config = config
        self.index = InterHandIndex.open(config.root, config.split, config.cache_dir)
        self.augment = (augment or AugmentConfig()) if config.augment else None
        self.layers = mano_layers or {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in SIDES}
        self.seed = seed
        self.rows = self._select()

    def _select(self) -> np.ndarray:
        """Annotation rows passing the filters (vectorised over the memory-mapped index)."""
        a, c = self.index.annotations, self.config
        codes = [HAND_TYPES.index(t) for t in c.hand_types]
        keep = np.isin(np.asarray(a["hand_type"]), codes)
        if c.require_hand_type_valid:
            keep &= np.asarray(a["hand_type_valid"]) > 0
        keep &= np.asarray(a["joint_valid"]).sum(axis=1) >= c.min_valid_joints
        keep &= np.asarray(a["bbox"])[:, 2:].min(axis=1) > 1
        keep &= self.index.frame_row >= 0
        keep &= self.index.camera_row >= 0
        if c.require_mano:
            present = np.zeros((len(keep), 2), dtype=bool)
            has_fit = self.index.mano_row >= 0
            present[has_fit] = np.asarray(self.index.mano["present"])[self.index.mano_row[has_fit]] > 0
            types = np.asarray(a["hand_type"])
            keep &= np.where(types == 0, present[:, 0], np.where(types == 1, present[:, 1], present.all(axis=1)))
        rows = np.flatnonzero(keep)
        if c.path_contains:
            rows = np.asarray([r for r in rows if c.path_contains in self.index.file_name(int(self.index.image_row[r]))],
                              dtype=np.int64)
        return rows[::max(c.every, 1)]

    def __len__(self) -> int:
        return len(self.rows)

    def _mano_in_crop(self, record: InterHandRecord, side: str, R_total: np.ndarray, t_total: np.ndarray, flip: bool):
        """MANO fit of `side` moved into the crop camera -> (target side, orient, pose, betas, transl) or None."""
        fit = record.mano.get(side)
        if fit is None:
            return None
        pose, betas, trans = fit
        layer = self.layers[side]
        pose = neuralannot_to_flat(pose, layer.hands_mean.cpu().numpy())
        root = layer.rest_joints(torch.as_tensor(betas))[0, 0].cpu().numpy()
        if not flip:
            orient, transl = mano_params_to_camera(pose[:3], trans, root, R_total, t_total)
            return side, orient, pose[3:], betas, transl
        # Mirrored: the camera transform includes x -> -x; the hand becomes the other side's model.
        unmirrored = MIRROR_X @ R_total
        orient, transl = mano_params_to_camera(pose[:3], trans, root, unmirrored, MIRROR_X @ t_total)
        other = "left" if side == "right" else "right"
        other_root = self.layers[other].rest_joints(torch.as_tensor(betas))[0, 0].cpu().numpy()
        transl = MIRROR_X @ (transl + root) - other_root
        hand_pose = (pose[3:].reshape(15, 3) * POSE_MIRROR).reshape(45)
        return other, orient * POSE_MIRROR, hand_pose, betas, transl

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        record = self.index.record(int(self.rows[item]))
        image = read_image(record.image_path)
        rng = np.random.default_rng([self.seed, item, torch.initial_seed() % (1 << 31)]) if self.augment else None
        size = self.config.image_size
        if self.config.full_image:
            side = max(record.width, record.height)
            box = np.array([(record.width - 1) / 2 - side / 2, (record.height - 1) / 2 - side / 2, side, side], dtype=np.float64)
        else:
            box = expand_bbox(record.bbox, 1.0, self.config.bbox_scale)
        crop, colour = sample_crop(rng, box, (size, size), self.augment)
        if self.config.mirror_left and record.hand_type == "left":
            crop.flip = True
        crop_image = np.clip(warp_image(image, crop).astype(np.float32) * colour, 0, 255)

        R_crop = crop.camera_rotation()
        joints_cam = record.camera_joints() / 1000.0 @ R_crop.T
        joints_2d = transform_points(record.image_joints(), crop.affine())
        valid = record.joint_valid.copy()
        if record.hand_type == "interacting":
            hand_type = np.array([1.0, 1.0])
        else:
            hand_type = np.array([float(record.hand_type == "right"), float(record.hand_type == "left")])
        R_total, t_total = R_crop @ record.camera.R, R_crop @ record.camera.t_meters
        mano = {side: None for side in SIDES}
        for side in SIDES:
            moved = self._mano_in_crop(record, side, R_total, t_total, crop.flip)
            if moved is not None:
                mano[moved[0]] = moved[1:]
        if crop.flip:
            swap = np.r_[np.arange(21, 42), np.arange(0, 21)]
            joints_cam, joints_2d, valid, hand_type = joints_cam[swap], joints_2d[swap], valid[swap], hand_type[::-1].copy()
        for side in SIDES:  # a hand whose root is invalid is invalid as a whole (InterNet)
            if not valid[ROOT_INDEX[side]]:
                valid[JOINT_SLICE[side]] = False
        in_crop = (joints_2d >= 0).all(axis=1) & (joints_2d <= size - 1).all(axis=1) & valid

        sample = {
            "image": torch.from_numpy(crop_image / 255.0).permute(2, 0, 1).float(),
            "K": torch.from_numpy(crop.intrinsics(record.camera.K)).float(),
            "joints_cam": torch.from_numpy(joints_cam).float(),
            "joints_2d": torch.from_numpy(joints_2d).float(),
            "joint_valid": torch.from_numpy(valid),
            "joint_in_crop": torch.from_numpy(in_crop),
            "hand_type": torch.from_numpy(hand_type).float(),
            "flipped": torch.tensor(crop.flip),
            "crop_box": torch.tensor([*(crop.centre - crop.width / 2), crop.width, crop.width]).float(),
            "annotation_id": torch.tensor(record.annotation_id),
            "capture": torch.tensor(record.capture),
        }
        for side in SIDES:
            fit = mano[side]
            sample[f"mano_valid_{side}"] = torch.tensor(fit is not None)
            orient, pose, betas, transl = fit if fit is not None else (np.zeros(3), np.zeros(45), np.zeros(10), np.zeros(3))
            sample[f"mano_{side}"] = torch.from_numpy(np.concatenate([orient, pose, betas, transl])).float()  # 3+45+10+3
        return sample


def mano_vector_split(vector: torch.Tensor) -> dict[str, torch.Tensor]:
    """A sample's MANO vector (...,61) -> global_orient (3), hand_pose (45), betas (10), transl (3)."""
    return {"global_orient": vector[..., :3], "hand_pose": vector[..., 3:48], "betas": vector[..., 48:58],
            "transl": vector[..., 58:61]}
