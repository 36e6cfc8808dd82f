"""Where a synthetic dataset's pictures come from, and how they are checked.

`SyntheticWriter` samples the scenes and cameras and knows every label. By default it renders each view itself
(shaded hands over a procedural background). Given an `ImageSource`, it hands the source one `ViewCondition` per
view instead: the hands in that camera, their mesh image and mask (AttentionHand's condition) and the labels, and
writes whatever picture the source returns. A `QualityCheck` scores each picture against its labels and may drop
it from the annotations. Both live outside `hands.data` (a generator and a detector are methods); this module
holds only the types they meet through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class ViewHand:
    """One hand of a view, in that camera's frame."""

    side: str
    hand_pose: np.ndarray
    """(45,) flat-hand axis-angle finger pose."""
    vertices: np.ndarray
    """(778, 3) meters, camera frame."""
    joints: np.ndarray
    """(21, 3) meters, camera frame, canonical order."""
    keypoints_2d: np.ndarray
    """(21, 2) pixels, canonical order."""
    visible: np.ndarray
    """(21,) bool: in front of the camera and inside the image."""


@dataclass
class ViewCondition:
    """What a source gets for one view: ids, camera, hands and the rendered condition."""

    image_id: int
    file_name: str
    K: np.ndarray
    """(3, 3) intrinsics, pixels."""
    hand_type: str
    """'right', 'left' or 'interacting'."""
    contact: bool
    hands: list[ViewHand]
    mesh_image: np.ndarray
    """(H, W, 3) uint8: the hands rendered as AttentionHand's condition (grey shading on black)."""
    mask: np.ndarray
    """(H, W) bool: the hands' silhouette."""
    hand_box: list[float]
    """[x, y, w, h] pixels of the mask (all hands)."""
    skin_tone: np.ndarray
    """(3,) RGB in [0, 1] the capture's subject was given (the render source's skin)."""
    seed: int
    """This view's own seed (the dataset seed and the image id): a source draws its randomness from it."""
    extras: dict = field(default_factory=dict)


class ImageSource(Protocol):
    """Makes the pictures of views: one (image (H, W, 3) uint8 RGB, record) per condition, in order. The record
    (prompt, seed, settings) is kept with the sample in `generation.jsonl`."""

    name: str

    def images(self, views: list[ViewCondition]) -> list[tuple[np.ndarray, dict]]: ...


class QualityCheck(Protocol):
    """Scores a picture against its view's labels; the result's "keep" (bool) decides whether the sample enters
    the annotations, and the other entries (numbers) are kept in `generation.jsonl`."""

    def __call__(self, image: np.ndarray, view: ViewCondition) -> dict: ...
