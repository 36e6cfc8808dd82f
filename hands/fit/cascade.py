"""Hand detection that does not miss clear hands: MediaPipe retried over a bounded cascade of views of the image.

MediaPipe's palm detector sees the image letterboxed to 192 px. It misses palms that fill the frame (close-ups,
OHTA's 256² crops), hands that are small in a large frame, and some poses at the default threshold. When a
frame yields fewer hands than asked for, the cascade tries, in order and only while hands are still missing:

    padded      the image with a replicated border (a close-up becomes a hand with context around it)
    upscaled    small images (longest side under `upscale_below`) enlarged 2x
    tiles       large images (longest side at least `tile_above`) as four overlapping corner tiles
    low         the image and its padded version at `retry_detection`, a lower palm threshold; these hands must
                still pass the landmark network's presence score `min_presence`

Every step's hands are mapped back to the image's pixels and merged (a hand whose keypoint box overlaps one
already found by IoU > `merge_iou` is the same hand, and the one found first is kept). Each step costs one
MediaPipe call (~23 ms on this CPU, whatever the image size).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from hands.config import check_fields
from hands.fit.landmarker import DetectedHand, HandDetector, swap_side


@dataclass
class DetectionConfig:
    """MediaPipe thresholds and the retry cascade (`hands.fit.cascade`)."""

    max_hands: int = 2
    """Hands to look for in each image."""
    min_detection: float = 0.5
    """Palm detector score threshold of the first try (MediaPipe's default)."""
    min_presence: float = 0.5
    """Landmark network hand-presence threshold, for every step."""
    retry_detection: float = 0.25
    """Palm detector threshold of the cascade's last step."""
    retry: Literal["fewer", "none", "never"] = "fewer"
    """When to run the cascade: when fewer than `max_hands` hands were found, only when none was, or never."""
    pad_fraction: float = 0.25
    """Border added on each side by the padded step, as a fraction of the longest side."""
    upscale_below: int = 512
    """Images whose longest side is under this many pixels are also tried enlarged 2x."""
    tile_above: int = 640
    """Images whose longest side is at least this many pixels are also tried as four corner tiles."""
    merge_iou: float = 0.3
    """Hands whose keypoint boxes overlap by more than this IoU are one hand."""

    def __post_init__(self) -> None:
        unit = ("min_detection", "min_presence", "retry_detection", "merge_iou")
        check_fields(self, at_least={"max_hands": 1, "pad_fraction": 0, "upscale_below": 0, "tile_above": 0,
                                     **dict.fromkeys(unit, 0)}, at_most={"pad_fraction": 2, **dict.fromkeys(unit, 1)})


def keypoint_box(keypoints: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 pixels of keypoints (N, 2)."""
    return np.concatenate([keypoints.min(0), keypoints.max(0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def merge_hands(found: list[DetectedHand], new: list[DetectedHand], iou: float) -> list[DetectedHand]:
    """`found` plus the hands of `new` that are not already in it, most confident first. A hand found earlier is
    kept over a later step's duplicate (the plain image is the most faithful view); duplicates within `new` keep
    the higher handedness score."""
    boxes = lambda hands: [keypoint_box(h.keypoints) for h in hands]  # noqa: E731
    fresh: list[DetectedHand] = []
    for hand in sorted(new, key=lambda h: -h.score):
        box = keypoint_box(hand.keypoints)
        if all(box_iou(box, other) <= iou for other in boxes(found) + boxes(fresh)):
            fresh.append(hand)
    return sorted(found + fresh, key=lambda h: -h.score)


def distinct_sides(hands: list[DetectedHand]) -> list[DetectedHand]:
    """At most one hand per side, most confident first: when MediaPipe labels two hands the same side (it does on
    renders and crossed hands), the less confident one is taken as the other side; further hands are dropped."""
    kept: dict[str, DetectedHand] = {}
    for hand in sorted(hands, key=lambda h: -h.score):
        if hand.side not in kept:
            kept[hand.side] = hand
        elif swap_side(hand.side) not in kept:
            kept[swap_side(hand.side)] = replace(hand, side=swap_side(hand.side))
    return sorted(kept.values(), key=lambda h: -h.score)


def moved(hand: DetectedHand, scale: float, offset: np.ndarray) -> DetectedHand:
    """A hand found in a resized/cropped view mapped back: image pixel = view pixel / scale + offset (pixel
    centres at integers in both)."""
    keypoints = (hand.keypoints + 0.5) / scale - 0.5 + offset
    return replace(hand, keypoints=keypoints, depth=hand.depth / scale)


class CascadeDetector:
    """`HandDetector` with the retry cascade; `detect` returns at most `max_hands` hands, most confident first.
    `video=True` makes the first try MediaPipe's tracker (VIDEO mode); the cascade always runs in IMAGE mode."""

    def __init__(self, task_path: str | Path | None = None, config: DetectionConfig | None = None,
                 mirrored: bool = False, video: bool = False) -> None:
        self.config = config = config or DetectionConfig()
        self.mirrored = mirrored
        self._detectors: list[HandDetector] = []
        self.last_steps: list[str] = []
        self.first = self._open(task_path, config.min_detection, video)
        if config.retry == "never":
            self.still, self.low = None, None
            return
        self.still = self.first if not video else self._open(task_path, config.min_detection, False)
        self.low = self._open(task_path, config.retry_detection, False)

    def _open(self, task_path, min_detection: float, video: bool) -> HandDetector:
        try:
            detector = HandDetector(task_path, self.config.max_hands, min_detection, self.mirrored, video,
                                    self.config.min_presence)
        except BaseException:
            self.close()
            raise
        self._detectors.append(detector)
        return detector

    def views(self, image: np.ndarray) -> list[tuple[str, HandDetector, np.ndarray, float, np.ndarray]]:
        """The cascade's (step, detector, view, scale, offset) after the first try."""
        c, H, W = self.config, image.shape[0], image.shape[1]
        longest = max(H, W)
        pad = int(round(c.pad_fraction * longest))
        padded = np.ascontiguousarray(np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")) if pad else image
        at = np.array([-pad, -pad], dtype=np.float64)
        views = [("padded", self.still, padded, 1.0, at)] if pad else []
        if longest < c.upscale_below:
            views.append(("upscaled", self.still, cv2.resize(image, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC),
                          2.0, np.zeros(2)))
        if longest >= c.tile_above:
            th, tw = int(0.6 * H), int(0.6 * W)
            for y in (0, H - th):
                for x in (0, W - tw):
                    views.append(("tiles", self.still, np.ascontiguousarray(image[y:y + th, x:x + tw]), 1.0,
                                  np.array([x, y], dtype=np.float64)))
        views.append(("low", self.low, image, 1.0, np.zeros(2)))
        if pad:
            views.append(("low", self.low, padded, 1.0, at))
        return views

    def detect(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[DetectedHand]:
        """Hands in an RGB uint8 image (H, W, 3), most confident first, at most one per side (`distinct_sides`);
        `last_steps` names the steps that ran."""
        c = self.config
        hands = merge_hands([], self.first.detect(image, timestamp_ms), c.merge_iou)
        self.last_steps = ["image"]
        wanted = c.max_hands if c.retry == "fewer" else 1
        if c.retry == "never" or len(hands) >= wanted:
            return distinct_sides(hands)[:c.max_hands]
        for step, detector, view, scale, offset in self.views(image):
            self.last_steps.append(step)
            hands = merge_hands(hands, [moved(h, scale, offset) for h in detector.detect(view)], c.merge_iou)
            if len(hands) >= wanted:
                break
        return distinct_sides(hands)[:c.max_hands]

    def close(self) -> None:
        for detector in self._detectors:
            detector.close()

    def __enter__(self) -> "CascadeDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
