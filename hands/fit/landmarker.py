"""2D hand detection and 21 keypoints with handedness: MediaPipe's HandLandmarker, offline.

mediapipe 1.2.2 ships the HandLandmarker runtime but no model. The palm detector and the landmark network ship as
tflite files inside the mediapipe 0.10.21 wheel (Apache-2.0); `build_task_bundle` packs them into the `.task`
zip that HandLandmarker reads (`hand_detector.tflite` + `hand_landmarks_detector.tflite`). `make setup` runs
`hands prepare landmarker` once (a 36 MB download from PyPI); everything after is offline.

Handedness: the Tasks HandLandmarker (unlike the legacy `solutions.hands`, whose docs say it assumes a mirrored
selfie image) labels the person's hand correctly in an ordinary, unmirrored photo: on the fixtures, the right palm
of `ohta/in_the_wild/02023.jpg` comes out "Right" and the left hand of `acr/magic.jpg` "Left" (the mediapipe
maintainers say the same: google-ai-edge/mediapipe-samples#450). A mirrored frame (a selfie preview flipped
left-right) shows each hand as its mirror image, so `HandDetector(mirrored=True)` swaps the labels.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hands.io.atomic import atomic_path
from hands.io.home import home_file

log = logging.getLogger(__name__)

#: Where `make setup` puts the bundle: $HANDS_HOME/mediapipe/ (override with $HANDS_LANDMARKER).
DEFAULT_TASK_PATH = home_file("mediapipe", "hand_landmarker.task")


def default_task_path() -> Path:
    return Path(os.environ.get("HANDS_LANDMARKER", DEFAULT_TASK_PATH))
MODEL_WHEEL = "mediapipe==0.10.21"
#: Members of the .task bundle and where each lives inside the 0.10.21 wheel.
BUNDLE_MEMBERS = {
    "hand_detector.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmarks_detector.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}


class LandmarkerUnavailableError(FileNotFoundError):
    """The HandLandmarker bundle is missing or unreadable (says how to make it)."""


def build_task_bundle(wheel: str | Path, output: str | Path = DEFAULT_TASK_PATH, overwrite: bool = False) -> Path:
    """Pack the palm detector and landmark network of a mediapipe 0.10.21 wheel into a HandLandmarker `.task`."""
    wheel, output = Path(wheel), Path(output)
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = {name: archive.read(source) for name, source in BUNDLE_MEMBERS.items()}
    except KeyError as error:
        raise LandmarkerUnavailableError(f"{wheel} has no {error.args[0]}: use the {MODEL_WHEEL} wheel") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise LandmarkerUnavailableError(f"cannot read the wheel {wheel}: {error}") from None
    with atomic_path(output, overwrite) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return output


def download_model_wheel(folder: str | Path) -> Path:
    """`pip download` the mediapipe 0.10.21 wheel (no dependencies) into `folder`; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", MODEL_WHEEL,
               "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("mediapipe-0.10.21-*.whl"))
    if result.returncode != 0 or not wheels:
        raise LandmarkerUnavailableError(f"`{' '.join(command[2:])}` failed: {result.stderr.strip()[-400:]}")
    return wheels[0]


@dataclass
class DetectedHand:
    """One hand found in an image: `keypoints` (21, 2) pixels in the canonical (OpenPose/MediaPipe) order,
    `depth` (21,) MediaPipe's relative depth (image-width units, wrist 0), `world` (21, 3) metric landmarks in
    meters about the hand's centre (camera axes), `side` "right"/"left" (the person's hand), `score` the
    handedness confidence."""

    keypoints: np.ndarray
    depth: np.ndarray
    world: np.ndarray
    side: str
    score: float

    def mirrored(self, width: int) -> "DetectedHand":
        """The same detection in the image flipped left-right (width pixels): the other hand, x -> W - 1 - x."""
        keypoints = self.keypoints.copy()
        keypoints[:, 0] = width - 1 - keypoints[:, 0]
        world = self.world * np.array([-1.0, 1.0, 1.0])
        return DetectedHand(keypoints, self.depth.copy(), world, swap_side(self.side), self.score)


def swap_side(side: str) -> str:
    return {"right": "left", "left": "right"}[side]


def ignore_stray_profiling_timer() -> None:
    """libmediapipe bundles tcmalloc, whose sampling profiler can arm ITIMER_PROF; with no handler installed the
    SIGPROF it raises kills the process (seen once a detector ran from a worker thread after many others in one
    pytest process). Nothing here profiles with SIGPROF, so its default action is turned off (main thread only,
    where Python allows it, and only when no one has installed a handler)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGPROF) == signal.SIG_DFL:
        signal.signal(signal.SIGPROF, signal.SIG_IGN)


class HandDetector:
    """MediaPipe HandLandmarker on RGB uint8 images; `video=True` tracks across frames (timestamps in ms)."""

    def __init__(self, task_path: str | Path | None = None, max_hands: int = 2, min_detection: float = 0.5,
                 mirrored: bool = False, video: bool = False, min_presence: float | None = None) -> None:
        """`min_detection`: the palm detector's score threshold; `min_presence`: the landmark network's
        hand-presence threshold (default: `min_detection`)."""
        path = Path(task_path or default_task_path())
        if not path.is_file():
            raise LandmarkerUnavailableError(
                f"HandLandmarker model not found at {path}: run `hands prepare landmarker` (packs the "
                f"models of the {MODEL_WHEEL} wheel from PyPI; `make setup` does it), or pass --landmarker PATH")
        from mediapipe.tasks.python import BaseOptions, vision

        ignore_stray_profiling_timer()

        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.HandLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(path)), running_mode=mode,
                                               num_hands=max_hands, min_hand_detection_confidence=min_detection,
                                               min_hand_presence_confidence=min_detection if min_presence is None else min_presence)
        try:
            self._landmarker = vision.HandLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as error:
            raise LandmarkerUnavailableError(f"{path} is not a HandLandmarker bundle: {error}") from None
        self.mirrored, self.video = mirrored, video
        self._timestamp = -1

    def detect(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[DetectedHand]:
        """Hands in an RGB uint8 image (H, W, 3), most confident first."""
        import mediapipe as mp

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detect wants an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self.video:
            # VIDEO mode needs strictly increasing timestamps.
            self._timestamp = max(self._timestamp + 1, timestamp_ms if timestamp_ms is not None else 0)
            result = self._landmarker.detect_for_video(frame, self._timestamp)
        else:
            result = self._landmarker.detect(frame)
        H, W = image.shape[:2]
        hands = []
        for landmarks, world, handedness in zip(result.hand_landmarks, result.hand_world_landmarks, result.handedness):
            points = np.array([[p.x * W, p.y * H, p.z * W] for p in landmarks], dtype=np.float64)
            label = handedness[0].category_name.lower()
            side = swap_side(label) if self.mirrored else label
            hands.append(DetectedHand(points[:, :2], points[:, 2], np.array([[p.x, p.y, p.z] for p in world]),
                                      side, float(handedness[0].score)))
        return sorted(hands, key=lambda h: -h.score)

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "HandDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: mediapipe may already be gone
            pass
