"""Crops with consistent cameras, and augmentation (scale, rotation, translation, flip, colour).

A crop maps original pixels p to crop pixels p' = s Rot(theta) (p - c) + o (box centre c to the crop centre o,
pixel centres at integer coordinates). The same crop seen as a camera: the camera frame is rotated about its
optical axis by R_z(theta), and the intrinsics become K' = [[s f, 0, cx'], [0, s f, cy'], [0, 0, 1]]; that is
exact for square pixels (fx == fy), which InterHand2.6M's cameras have to within 1 %. A horizontal flip
mirrors the camera frame (x -> -x), which turns a right hand into a left hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIRROR_X = np.diag([-1.0, 1.0, 1.0])


def expand_bbox(bbox: np.ndarray, aspect: float = 1.0, scale: float = 1.25) -> np.ndarray:
    """[x, y, w, h] -> a box with the same centre, grown to `aspect` (w / h) and then by `scale`."""
    x, y, w, h = np.asarray(bbox, dtype=np.float64)
    cx, cy = x + w / 2, y + h / 2
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * scale, h * scale
    return np.array([cx - w / 2, cy - h / 2, w, h])


@dataclass
class CropParams:
    """Box centre (2,) and width in original pixels, in-plane rotation (radians, counter-clockwise on screen),
    output size (W, H), and whether the crop is mirrored horizontally."""

    centre: np.ndarray
    width: float
    rotation: float
    out_size: tuple[int, int]
    flip: bool = False

    @property
    def scale(self) -> float:
        return self.out_size[0] / self.width

    def rotation_2d(self) -> np.ndarray:
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return np.array([[c, -s], [s, c]])

    def affine(self) -> np.ndarray:
        """(2,3) map from original pixels to crop pixels (apply the flip after the rotation)."""
        W, H = self.out_size
        A = self.scale * self.rotation_2d()
        out_centre = np.array([(W - 1) / 2, (H - 1) / 2])
        M = np.concatenate([A, (out_centre - A @ self.centre)[:, None]], axis=1)
        if self.flip:
            M = np.array([[-1.0, 0.0, W - 1], [0.0, 1.0, 0.0]]) @ np.vstack([M, [0.0, 0.0, 1.0]])
        return M

    def camera_rotation(self) -> np.ndarray:
        """(3,3) rotation (and mirror, when flipped) of the camera frame that the crop amounts to."""
        R = np.eye(3)
        R[:2, :2] = self.rotation_2d()
        return MIRROR_X @ R if self.flip else R

    def intrinsics(self, K: np.ndarray) -> np.ndarray:
        """Crop intrinsics (3,3) for original intrinsics K (square pixels assumed: the mean focal is used)."""
        W, _ = self.out_size
        f = (K[0, 0] + K[1, 1]) / 2
        principal = self.affine() @ np.array([K[0, 2], K[1, 2], 1.0])
        return np.array([[self.scale * f, 0.0, principal[0]], [0.0, self.scale * f, principal[1]], [0.0, 0.0, 1.0]])


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Pixels (...,2) through a (2,3) affine map."""
    return np.asarray(points) @ affine[:, :2].T + affine[:, 2]


def warp_image(image: np.ndarray, crop: CropParams) -> np.ndarray:
    """The crop (H,W,C) of an image; outside the image is black."""
    return cv2.warpAffine(image, crop.affine(), crop.out_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


@dataclass
class AugmentConfig:
    """Training augmentation, InterNet's settings by default."""

    scale: float = 0.25
    """Box size is multiplied by a factor in [1 - scale, 1 + scale]."""
    rotation_deg: float = 45.0
    """In-plane rotation in [-rotation_deg, rotation_deg] degrees..."""
    rotation_prob: float = 0.6
    """...applied with this probability."""
    translation: float = 0.15
    """Box centre shifted by up to this fraction of its size."""
    flip_prob: float = 0.5
    """Horizontal flip (swaps left and right hands)."""
    color: float = 0.2
    """Each colour channel multiplied by a factor in [1 - color, 1 + color]."""


def sample_crop(rng: np.random.Generator | None, box: np.ndarray, out_size: tuple[int, int],
                augment: AugmentConfig | None) -> tuple[CropParams, np.ndarray]:
    """Crop parameters for an expanded box [x, y, w, h] and per-channel colour factors (3,); no randomness when
    `augment` is None."""
    centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
    width, rotation, flip, colour = float(box[2]), 0.0, False, np.ones(3)
    if augment is not None:
        width *= rng.uniform(1 - augment.scale, 1 + augment.scale)
        centre = centre + rng.uniform(-augment.translation, augment.translation, 2) * box[2:4]
        if rng.uniform() < augment.rotation_prob:
            rotation = np.deg2rad(rng.uniform(-augment.rotation_deg, augment.rotation_deg))
        flip = bool(rng.uniform() < augment.flip_prob)
        colour = rng.uniform(1 - augment.color, 1 + augment.color, 3)
    return CropParams(centre, width, rotation, out_size, flip), colour
