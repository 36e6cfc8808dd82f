"""Drawing on photos: rendered meshes blended with alpha, and 2D hand skeletons (uint8 RGB images, H x W x 3)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from hands.mano.joints import CANONICAL_PARENTS

# One colour per finger (thumb, index, middle, ring, pinky), RGB; joints of the palm root are white.
FINGER_COLORS = ((230, 60, 60), (240, 200, 40), (60, 200, 80), (40, 140, 240), (180, 80, 220))
SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates: positions are multiplied by 2**bits


def to_uint8_image(image) -> np.ndarray:
    """A float tensor (3,H,W) / (H,W,3) in [0,1] or a uint8 array (H,W,3) -> contiguous uint8 (H,W,3)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.permute(1, 2, 0)
        image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def overlay(photo: np.ndarray, rendering, mask, alpha: float = 0.8) -> np.ndarray:
    """Blend a rendering over a photo where `mask` (H,W) is set: alpha * rendering + (1 - alpha) * photo -> uint8."""
    photo, rendering = to_uint8_image(photo), to_uint8_image(rendering)
    mask = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if photo.shape != rendering.shape or mask.shape != photo.shape[:2]:
        raise ValueError(f"overlay: photo {photo.shape}, rendering {rendering.shape} and mask {mask.shape} must match")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: alpha should be in [0, 1], got {alpha}")
    weight = alpha * mask.astype(np.float32)[..., None]
    return (weight * rendering + (1 - weight) * photo).round().astype(np.uint8)


def draw_skeleton(image: np.ndarray, keypoints, visible=None, parents: Sequence[int] = CANONICAL_PARENTS,
                  thickness: int = 2, radius: int = 3) -> np.ndarray:
    """Draw a 21-joint hand (canonical order, pixel coordinates (21,2)) on a copy of `image`; bones between
    joints both `visible` (21,) bool, one colour per finger."""
    canvas = to_uint8_image(image).copy()
    points = np.asarray(keypoints.detach().cpu() if isinstance(keypoints, torch.Tensor) else keypoints, dtype=np.float64)
    if points.shape != (len(parents), 2):
        raise ValueError(f"draw_skeleton: keypoints should have shape ({len(parents)}, 2), got {points.shape}")
    shown = np.isfinite(points).all(axis=1) if visible is None else np.asarray(visible, dtype=bool) & np.isfinite(points).all(axis=1)
    fixed = np.round(np.nan_to_num(points) * (1 << SUBPIXEL_BITS)).astype(np.int64)
    for joint, parent in enumerate(parents):
        if parent < 0 or not (shown[joint] and shown[parent]):
            continue
        color = FINGER_COLORS[(joint - 1) // 4]
        cv2.line(canvas, tuple(int(c) for c in fixed[parent]), tuple(int(c) for c in fixed[joint]), color, thickness,
                 cv2.LINE_AA, SUBPIXEL_BITS)
    for joint in np.flatnonzero(shown):
        color = (255, 255, 255) if joint == 0 else FINGER_COLORS[(joint - 1) // 4]
        cv2.circle(canvas, tuple(int(c) for c in fixed[joint]), radius << SUBPIXEL_BITS, color, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    return canvas
