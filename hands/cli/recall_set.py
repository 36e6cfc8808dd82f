"""The labelled detection set of `hands eval detection`, made from what the project has: the fixtures' photos cropped, rescaled, padded and
mirrored, synthetic renders with known keypoints, and hand-free images (procedural backgrounds and hand-free
regions of the fixtures' photos).

Kinds:
    close-up    a labelled hand filling a 96-256 px square crop (as OHTA's 256² inputs)
    small       the photo shrunk so the hand spans 64-128 px, pasted into a 1280x720 hand-free frame
    padded      the photo in the middle of a wide uniform border
    mirrored    a close-up flipped left-right (the other hand)
    synthetic   the built-in hand rendered over a procedural background, from random cameras
    hand-free   no hand: procedural backgrounds, and windows of the fixtures with no hand pixel (by their masks)

Labels: the in-the-wild photo's `joint_img` (canonical order) and the editing photo's (InterHand order).
`acr/magic.jpg` has no keypoint label; its hand box (`MAGIC_HAND_BOX`, read off the full 1920x1080 frame) makes
its crops count for recall only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hands.cli.eval_fit import labels_of
from hands.data.synthetic.appearance import procedural_background
from hands.data.synthetic.generator import SyntheticConfig, SyntheticWriter
from hands.io.images import read_image
from hands.ohta.oneshot import read_oneshot_annotation

KINDS = ("close-up", "small", "padded", "mirrored", "synthetic", "hand-free")
#: The hand of acr/magic.jpg (x0, y0, x1, y1 pixels of the 1920x1080 frame), around its 21 keypoints.
MAGIC_HAND_BOX = np.array([1039.0, 336.0, 1443.0, 646.0])


@dataclass
class LabelledImage:
    """One image of the set: `keypoints` (21, 2) labelled pixels (canonical order) or None, `box` (4,) the hand's
    box x0, y0, x1, y1 or None when there is no hand."""

    kind: str
    name: str
    image: np.ndarray
    keypoints: np.ndarray | None = None
    box: np.ndarray | None = None


def _warp(image: np.ndarray, scale: float, offset: np.ndarray, size: tuple[int, int], background=None):
    """image resampled by x' = scale * x + offset into a (W, H) `size` canvas (pixel centres at integers)."""
    M = np.array([[scale, 0.0, offset[0] + 0.5 * scale - 0.5], [0.0, scale, offset[1] + 0.5 * scale - 0.5]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if background is None:
        return cv2.warpAffine(image, M, size, flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, M, size, dst=background.copy(), flags=interpolation, borderMode=cv2.BORDER_TRANSPARENT)


def _moved(points: np.ndarray | None, scale: float, offset: np.ndarray) -> np.ndarray | None:
    return None if points is None else points * scale + offset


def _box_points(box: np.ndarray) -> np.ndarray:
    return np.array([[box[0], box[1]], [box[2], box[3]]])


def photo_variants(name: str, image: np.ndarray, keypoints: np.ndarray | None, box: np.ndarray,
                   background: np.ndarray) -> list[LabelledImage]:
    """Close-ups, small, padded and mirrored versions of one labelled photo (`box` its hand)."""
    items = []
    centre, extent = (box[:2] + box[2:]) / 2, float((box[2:] - box[:2]).max())
    for margin in (1.0, 1.2, 1.5):
        for out in (96, 128, 192, 256):
            scale = out / (margin * extent)
            offset = out / 2 - scale * centre
            crop = _warp(image, scale, offset, (out, out))
            item = LabelledImage("close-up", f"{name}_closeup_m{margin}_{out}", crop,
                                 _moved(keypoints, scale, offset), _moved(_box_points(box), scale, offset).ravel())
            items.append(item)
            if out in (128, 256):
                flipped = np.ascontiguousarray(crop[:, ::-1])
                flip = lambda p: None if p is None else np.stack([out - 1 - p[:, 0], p[:, 1]], 1)  # noqa: E731
                corners = flip(_box_points(item.box))
                items.append(LabelledImage("mirrored", f"{name}_mirrored_m{margin}_{out}", flipped, flip(item.keypoints),
                                           np.concatenate([corners.min(0), corners.max(0)])))
    H, W = background.shape[:2]
    for span, corner in ((64, (80, 90)), (96, (900, 400)), (128, (500, 120))):
        scale = span / extent
        offset = np.asarray(corner, dtype=np.float64) - scale * box[:2]
        pasted = _warp(image, scale, offset, (W, H), background)
        items.append(LabelledImage("small", f"{name}_small_{span}", pasted, _moved(keypoints, scale, offset),
                                   _moved(_box_points(box), scale, offset).ravel()))
    for factor in (1.0, 2.0):
        h, w = image.shape[:2]
        border = int(factor * max(h, w))
        padded = np.full((h + 2 * border, w + 2 * border, 3), 128, np.uint8)
        padded[border:border + h, border:border + w] = image
        shift = np.array([border, border], dtype=np.float64)
        items.append(LabelledImage("padded", f"{name}_padded_{factor:g}", padded, _moved(keypoints, 1.0, shift),
                                   _moved(_box_points(box), 1.0, shift).ravel()))
    return items


def hand_free_windows(name: str, image: np.ndarray, mask: np.ndarray | None, size: int, count: int,
                      rng: np.random.Generator, exclude: np.ndarray | None = None) -> list[LabelledImage]:
    """Up to `count` square windows of `size` px (resized to 256) with no hand pixel (mask) and off `exclude`."""
    H, W = image.shape[:2]
    items = []
    for _ in range(200):
        if len(items) == count or size > min(H, W):
            break
        x, y = int(rng.integers(0, W - size + 1)), int(rng.integers(0, H - size + 1))
        if mask is not None and mask[y:y + size, x:x + size].any():
            continue
        if exclude is not None and x < exclude[2] + 40 and exclude[0] - 40 < x + size and y < exclude[3] + 40 \
                and exclude[1] - 40 < y + size:
            continue
        window = cv2.resize(image[y:y + size, x:x + size], (256, 256), interpolation=cv2.INTER_AREA)
        items.append(LabelledImage("hand-free", f"{name}_free_{x}_{y}_{size}", window))
    return items


def synthetic_views(count: int, seed: int = 0) -> list[LabelledImage]:
    """One-hand renders of the built-in (or $HANDS_MANO_DIR) hand with their projected keypoints; views whose
    keypoints leave the image are dropped."""
    config = SyntheticConfig(num_images=count, seed=seed, hand_type_weights=[0.5, 0.5, 0.0], cameras_per_capture=4,
                             image_width=320, image_height=320)
    writer = SyntheticWriter(config, "unused")
    items = []
    frame = 0
    while len(items) < count and frame < 4 * count:
        capture_id, sequence, hand_type, contact = writer.frame_layout(frame)
        capture = writer.capture(capture_id)
        rng = np.random.default_rng([seed, 7, frame])
        scene = writer.sampler.sample(rng, hand_type, capture["betas"], contact)
        for k, camera in enumerate(capture["cameras"]):
            with torch.no_grad():
                image, _ = writer.render_view(scene, camera, rng, capture["skin"])
            hand = scene.hands[hand_type]
            camera_joints = hand.joints @ camera.R.T + camera.t_meters
            uv = camera_joints @ np.asarray(camera.K).T
            keypoints = uv[:, :2] / uv[:, 2:]
            if (keypoints < 0).any() or (keypoints[:, 0] > image.shape[1] - 1).any() or (keypoints[:, 1] > image.shape[0] - 1).any():
                continue
            items.append(LabelledImage("synthetic", f"synthetic_{frame}_{k}_{hand_type}", image, keypoints,
                                       np.concatenate([keypoints.min(0), keypoints.max(0)])))
        frame += 1
    return items[:count]


def build_recall_set(fixtures: str | Path, synthetic: int = 32, hand_free: int = 24, seed: int = 0) -> list[LabelledImage]:
    """The whole set from the fixtures folder (`../shared/fixtures`): photo variants, `synthetic` renders and
    `hand_free` images without hands."""
    fixtures = Path(fixtures)
    rng = np.random.default_rng(seed)
    magic = read_image(fixtures / "acr" / "magic.jpg")
    background = cv2.resize(magic[:, :480], (1280, 720), interpolation=cv2.INTER_LINEAR)  # shirt and arm, no hand
    items: list[LabelledImage] = []
    for folder, stem, order in (("in_the_wild", "02023", "canonical"), ("editing", "rainbow", "interhand")):
        root = fixtures / "ohta" / folder
        image = read_image(root / "img" / f"{stem}.jpg")
        labels = labels_of(read_oneshot_annotation(root / "anno" / f"{stem}.pkl"), order).astype(np.float64)
        box = np.concatenate([labels.min(0), labels.max(0)])
        items += photo_variants(stem, image, labels, box, background)
        mask = read_image(root / "mask" / f"{stem}.png").max(-1) > 0
        items += hand_free_windows(stem, image, mask, 96, 2, rng)
    items += photo_variants("magic", magic, None, MAGIC_HAND_BOX, background)
    items += hand_free_windows("magic", magic, None, 400, 6, rng, exclude=MAGIC_HAND_BOX)
    free_rng = np.random.default_rng([seed, 1])
    count = max(0, hand_free - sum(item.kind == "hand-free" for item in items))
    for index in range(count):
        size = ((256, 256), (480, 640), (720, 1280))[index % 3]
        items.append(LabelledImage("hand-free", f"background_{index}", procedural_background(free_rng, *size)))
    if synthetic:
        items += synthetic_views(synthetic, seed)
    return items

