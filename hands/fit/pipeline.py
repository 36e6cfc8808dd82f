"""Photo or video -> hands with MANO parameters: MediaPipe keypoints, then MANO fitting (`hands.fit.mano_fit`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hands.fit.landmarker import DetectedHand, HandDetector
from hands.fit.mano_fit import FitConfig, default_intrinsics, fit_mano
from hands.mano import build_mano
from hands.mano.layer import ManoLayer
from hands.prediction.smoothing import PredictionSmoother
from hands.prediction.types import SIDES, HandPrediction, PredictorConfig
from hands.utils.device import resolve_device


class NoHandError(ValueError):
    """No hand was found in an image that needs one."""


class HandFitter:
    """Detect hands and fit MANO to them, per image or over a sequence of frames."""

    def __init__(self, detector: HandDetector | None = None, config: FitConfig | None = None,
                 mano_dir: str | Path | None = None, landmarker: str | Path | None = None) -> None:
        self.config = config or FitConfig()
        self.detector = detector or HandDetector(landmarker)
        device = resolve_device(self.config.device)
        self.layers: dict[str, ManoLayer] = {side: build_mano(side, mano_dir, pose_convention="flat", device=device)
                                             for side in SIDES}
        self.faces = {side: layer.faces.cpu().numpy() for side, layer in self.layers.items()}

    def close(self) -> None:
        self.detector.close()

    def intrinsics(self, image_size: tuple[int, int], K: np.ndarray | None) -> np.ndarray:
        return np.asarray(K, dtype=np.float64) if K is not None else default_intrinsics(image_size, self.config.focal_ratio)

    def fit_detections(self, detections: list[DetectedHand], K: np.ndarray, sequence: bool = False,
                       masks: list[np.ndarray] | None = None) -> list[HandPrediction]:
        """MANO fits of detected hands seen by camera K (3,3), batched per side; `sequence`: the detections of each
        side are consecutive frames of one hand (shared shape, temporal smoothness); `masks`: one (H, W) bool mask
        of each hand (adds the silhouette term). Same order as `detections`."""
        by_side: dict[str, list[int]] = defaultdict(list)
        for index, hand in enumerate(detections):
            by_side[hand.side].append(index)
        fits: list[HandPrediction | None] = [None] * len(detections)
        for side, indices in by_side.items():
            layer = self.layers[side]
            keypoints = torch.tensor(np.stack([detections[i].keypoints for i in indices]))
            landmarks = torch.tensor(np.stack([detections[i].world for i in indices]))
            cameras = torch.tensor(K, dtype=torch.float64).expand(len(indices), 3, 3)
            side_masks = torch.tensor(np.stack([masks[i] for i in indices])) if masks is not None else None
            results = fit_mano(layer, keypoints, cameras, landmarks, self.config, sequence=sequence, masks=side_masks)
            for i, result in zip(indices, results):
                values = {k: v.detach().cpu().double().numpy() for k, v in result.items()}
                fits[i] = HandPrediction(side, values["global_orient"], values["hand_pose"], values["betas"],
                                         values["transl"], np.asarray(K), values["vertices"], values["joints"],
                                         values["projected"], detections[i].score,
                                         {"detected_keypoints_2d": detections[i].keypoints})
        return fits  # type: ignore[return-value]

    def fit_image(self, image: np.ndarray, K: np.ndarray | None = None) -> list[HandPrediction]:
        """Every hand in an RGB uint8 image (H, W, 3); K (3,3) defaults to `default_intrinsics`."""
        return self.fit_detections(self.detector.detect(image), self.intrinsics(image.shape[:2], K))

    def fit_frames(self, frames: list[np.ndarray], K: np.ndarray | None = None, smooth: bool = True) -> list[list[HandPrediction]]:
        """Hands of consecutive video frames; with `smooth`, each side is fitted as one hand over the frames (one
        shape, temporal term). At most one hand per side and frame is kept (the most confident)."""
        if not frames:
            return []
        K = self.intrinsics(frames[0].shape[:2], K)
        per_frame = []
        for frame in frames:
            kept: dict[str, DetectedHand] = {}
            for hand in self.detector.detect(frame):
                kept.setdefault(hand.side, hand)
            per_frame.append(list(kept.values()))
        if not smooth:
            return [self.fit_detections(hands, K) for hands in per_frame]
        flat = [(t, hand) for t, hands in enumerate(per_frame) for hand in hands]
        fits = self.fit_detections([hand for _, hand in flat], K, sequence=True)
        result: list[list[HandPrediction]] = [[] for _ in frames]
        for (t, _), fit in zip(flat, fits):
            result[t].append(fit)
        return result


@dataclass
class FitPredictorConfig(PredictorConfig):
    """MediaPipe keypoints + MANO fitting on any photo (no trained weights)."""

    landmarker: str | None = None
    """HandLandmarker .task bundle (default: checkpoints/mediapipe/hand_landmarker.task, made by `make setup`)."""
    mirrored: bool = False
    """The frames were flipped left-right (a selfie preview saved as shown): swap MediaPipe's handedness. A webcam
    read through OpenCV is not mirrored."""
    chunk: int = 16
    """With `temporal`, folders and videos fit this many consecutive frames together (one shape per hand, smooth
    motion); 1 (and the webcam) smooths frame by frame instead."""
    tracking: bool = False
    """Track hands across frames (MediaPipe's VIDEO mode), for videos and webcams."""
    focal_ratio: float = 2.0
    """Without intrinsics, focal length = focal_ratio * max(H, W) pixels."""


class FitPredictor:
    """The fit front end as a `HandPredictor`: `predict` fits one frame (smoothed with `temporal`),
    `predict_sequence` fits `sequence_length` consecutive frames together."""

    def __init__(self, config: FitPredictorConfig) -> None:
        if config.chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {config.chunk}")
        self.config = config
        detector = HandDetector(config.landmarker, mirrored=config.mirrored, video=config.tracking or config.temporal)
        try:
            fit = FitConfig(device=str(resolve_device(config.device)), focal_ratio=config.focal_ratio)
            self.fitter = HandFitter(detector, fit, config.mano_dir)
        except BaseException:
            detector.close()  # a second MediaPipe traceback otherwise, when the detector is collected
            raise
        self.faces = self.fitter.faces
        self.sequence_length = config.chunk if config.temporal else 1
        self.smoother = PredictionSmoother(self.fitter.layers, config.smooth_coeff) if config.temporal else None

    def predict(self, image: np.ndarray, K: np.ndarray | None = None) -> list[HandPrediction]:
        hands = self.fitter.fit_image(image, K)
        return self.smoother(hands) if self.smoother is not None else hands

    def predict_sequence(self, frames: list[np.ndarray], K: np.ndarray | None = None) -> list[list[HandPrediction]]:
        return self.fitter.fit_frames(frames, K, smooth=len(frames) > 1)

    def reset(self) -> None:
        if self.smoother is not None:
            self.smoother.reset()

    def close(self) -> None:
        self.fitter.close()
