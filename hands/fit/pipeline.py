"""Photo or video -> hands with MANO parameters: MediaPipe keypoints, then MANO fitting (`hands.fit.mano_fit`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from hands.fit.cascade import CascadeDetector, DetectionConfig, box_iou, keypoint_box
from hands.fit.landmarker import DetectedHand, HandDetector
from hands.fit.mano_fit import FitConfig, PosePrior, default_intrinsics, fit_mano, posed_hands
from hands.fit.solver import HandParameters, Residuals, solve
from hands.geometry.pnp import solve_translation
from hands.mano import build_mano
from hands.mano.layer import ManoLayer
from hands.prediction.smoothing import PredictionSmoother
from hands.prediction.types import SIDES, HandPrediction, PredictorConfig
from hands.utils.device import resolve_device


class NoHandError(ValueError):
    """No hand was found in an image that needs one."""


class HandFitter:
    """Detect hands and fit MANO to them, per image or over a sequence of frames."""

    def __init__(self, detector: HandDetector | CascadeDetector | None = None, config: FitConfig | None = None,
                 mano_dir: str | Path | None = None, landmarker: str | Path | None = None) -> None:
        self.config = config or FitConfig()
        self.detector = detector or CascadeDetector(landmarker)
        device = resolve_device(self.config.device)
        # float64: the fast solver's forward differences need it (and it costs Adam ~6 % at batch 1)
        self.layers: dict[str, ManoLayer] = {side: build_mano(side, mano_dir, pose_convention="flat", device=device,
                                                              dtype=torch.float64) for side in SIDES}
        self.faces = {side: layer.faces.cpu().numpy() for side, layer in self.layers.items()}
        self._lifter = None
        self.priors: dict[str, PosePrior] = {}  # the fast solver's, made on first use

    @property
    def lifter(self):
        """The keypoint lifter for these hand models (loaded, or trained once, on first use)."""
        if self._lifter is None:
            from hands.fit.lifting import load_lifter

            self._lifter = load_lifter(self.layers)
        return self._lifter

    def close(self) -> None:
        self.detector.close()

    def intrinsics(self, image_size: tuple[int, int], K: np.ndarray | None) -> np.ndarray:
        return np.asarray(K, dtype=np.float64) if K is not None else default_intrinsics(image_size, self.config.focal_ratio)

    def fit_detections(self, detections: list[DetectedHand], K: np.ndarray, sequence: bool = False,
                       masks: list[np.ndarray] | None = None,
                       previous: list[HandPrediction | None] | None = None) -> list[HandPrediction]:
        """MANO fits of detected hands seen by camera K (3,3), batched per side; `sequence`: the detections of each
        side are consecutive frames of one hand (shared shape, temporal smoothness); `masks`: one (H, W) bool mask
        of each hand (adds the silhouette term); `previous`: per detection, the same hand in the previous frame
        (a start for the fast solver, see `fast_fit`). Same order as `detections`."""
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
            if self.config.solver == "fast" and not sequence and side_masks is None:
                tracked = [previous[i] if previous is not None else None for i in indices]
                results = self.fast_fit(side, keypoints, landmarks, cameras, tracked)
            else:
                results = fit_mano(layer, keypoints, cameras, landmarks, self.config, sequence=sequence, masks=side_masks)
            for i, result in zip(indices, results):
                fits[i] = prediction_from_fit(side, result, K, detections[i].score, detections[i].keypoints)
        return fits  # type: ignore[return-value]

    def fast_fit(self, side: str, keypoints: torch.Tensor, landmarks: torch.Tensor, K: torch.Tensor,
                 tracked: list[HandPrediction | None]) -> list[dict[str, torch.Tensor]]:
        """One side's hands: keypoints (B,21,2) px, landmarks (B,21,3) m, K (B,3,3); each starts from its
        `tracked` previous-frame hand when that still reprojects within `track_tolerance`, else from the lifted
        hand (or the tracked one if it fits the keypoints better), and is refined by Levenberg-Marquardt.
        Returns what `fit_mano` returns."""
        layer, config = self.layers[side], replace(self.config, shape_weight=self.config.refine_shape_weight)
        device, dtype = layer.v_template.device, layer.v_template.dtype
        keypoints, landmarks, K = (t.to(device, dtype) for t in (keypoints, landmarks, K))
        B = keypoints.shape[0]
        prior = self.priors.setdefault(side, PosePrior(layer, config))
        residuals = Residuals(layer, keypoints, K, landmarks, config, prior)
        start = torch.zeros(B, residuals.width, dtype=dtype, device=device)
        rows = [i for i, hand in enumerate(tracked) if hand is not None]
        kept = torch.zeros(B, dtype=torch.bool, device=device)
        with torch.no_grad():
            if rows:
                as_t = lambda name: torch.tensor(np.stack([getattr(tracked[i], name) for i in rows]), dtype=dtype, device=device)  # noqa: E731
                orient, pose, betas = as_t("global_orient"), as_t("hand_pose"), as_t("betas")
                joints = layer(global_orient=orient, hand_pose=pose, betas=betas, joints_only=True).joints
                start[rows] = residuals.pack(HandParameters(orient, pose, betas, solve_translation(joints, keypoints[rows], K[rows])))
                _, keypoint = residuals(start)
                kept[rows] = keypoint[rows].norm(dim=-1).mean(-1) < config.track_tolerance
            lift = (~kept).nonzero()[:, 0]
            if len(lift):
                lifted = residuals.pack(self.lifter.lift(keypoints[lift], landmarks[lift], K[lift], side))
                candidate = start.clone()
                candidate[lift] = lifted
                cost = lambda packed: residuals(packed)[0].pow(2).sum(1)  # noqa: E731
                untracked = torch.ones(B, dtype=torch.bool, device=device)
                untracked[rows] = False
                better = untracked | (cost(candidate) < cost(start))
                start = torch.where(better[:, None], candidate, start)
        hands = solve(layer, keypoints, K, residuals.unpack(start), landmarks, config, config.refine_iterations,
                      tolerance=config.refine_tolerance, prior=prior)
        with torch.no_grad():
            return posed_hands(layer, hands.global_orient, hands.hand_pose, hands.betas, hands.transl, K)

    def fit_image(self, image: np.ndarray, K: np.ndarray | None = None,
                  previous: dict[str, HandPrediction] | None = None) -> list[HandPrediction]:
        """Every hand in an RGB uint8 image (H, W, 3); K (3,3) defaults to `default_intrinsics`. `previous`: the
        hands of the previous frame by side (tracking: a start for the fast solver where the boxes overlap)."""
        return self.fit_found(self.detector.detect(image), image.shape[:2], K, previous)

    def fit_found(self, detections: list[DetectedHand], image_size: tuple[int, int], K: np.ndarray | None = None,
                  previous: dict[str, HandPrediction] | None = None) -> list[HandPrediction]:
        """`fit_image` on the hands already detected in an image of (H, W) pixels."""
        starts = [same_hand(hand, previous) for hand in detections] if previous else None
        return self.fit_detections(detections, self.intrinsics(image_size, K), previous=starts)

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


def prediction_from_fit(side: str, result: dict[str, torch.Tensor], K: np.ndarray, score: float = 1.0,
                        detected_keypoints: np.ndarray | None = None) -> HandPrediction:
    """The `HandPrediction` of one hand as `fit_mano` / `HandFitter.fast_fit` return it, seen by K (3,3);
    `detected_keypoints` (21,2) the detector's, kept in `extras`."""
    values = {k: v.detach().cpu().double().numpy() for k, v in result.items()}
    extras = {} if detected_keypoints is None else {"detected_keypoints_2d": detected_keypoints}
    return HandPrediction(side, values["global_orient"], values["hand_pose"], values["betas"], values["transl"],
                          np.asarray(K, dtype=np.float64), values["vertices"], values["joints"], values["projected"],
                          score, extras)


def same_hand(hand: DetectedHand, previous: dict[str, HandPrediction], iou: float = 0.3) -> HandPrediction | None:
    """The previous frame's hand of the same side whose detected keypoints' box overlaps this one's, or None."""
    before = previous.get(hand.side)
    if before is None:
        return None
    seen = before.extras.get("detected_keypoints_2d", before.keypoints_2d)
    return before if box_iou(keypoint_box(hand.keypoints), keypoint_box(np.asarray(seen))) > iou else None


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
    """Track hands across frames, for videos and webcams: MediaPipe's VIDEO mode, each hand's fit starting from
    the previous frame's, and the detection cascade only when no hand is found."""
    focal_ratio: float = 2.0
    """Without intrinsics, focal length = focal_ratio * max(H, W) pixels."""
    solver: Literal["auto", "fast", "full"] = "auto"
    """"fast": learned lifting (or the tracked hand) + a few Levenberg-Marquardt steps (~20x faster); "full": the
    mean pose + 115 Adam steps; "auto": fast for videos and the webcam, full for photos and folders (on the
    labelled photos full reaches PCK@0.05 0.71 to fast's 0.67). Chunked videos (`temporal`, `chunk` > 1) use Adam."""
    stream_threads: int = 1
    """Torch threads while videos and the webcam are streamed (MediaPipe detects the next frame meanwhile): the
    batch-1 fit gains nothing from more, and they would contend with the detector (one hand: 26 -> 39 fps with 1
    thread instead of 2 on two cores, bench/realtime.py)."""
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    """MediaPipe's thresholds and the retry cascade (`hands.fit.cascade`)."""


class FitPredictor:
    """The fit front end as a `HandPredictor`: `predict` fits one frame (smoothed with `temporal`),
    `predict_sequence` fits `sequence_length` consecutive frames together."""

    def __init__(self, config: FitPredictorConfig) -> None:
        if config.chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {config.chunk}")
        self.config = config
        detection = config.detection
        if config.tracking and detection.retry == "fewer":
            detection = replace(detection, retry="none")  # a live frame cannot wait for the cascade on every frame
        detector = CascadeDetector(config.landmarker, detection, mirrored=config.mirrored,
                                   video=config.tracking or config.temporal)
        try:
            solver = config.solver if config.solver != "auto" else ("fast" if config.tracking else "full")
            fit = FitConfig(device=str(resolve_device(config.device)), focal_ratio=config.focal_ratio, solver=solver)
            self.fitter = HandFitter(detector, fit, config.mano_dir)
        except BaseException:
            detector.close()  # a second MediaPipe traceback otherwise, when the detector is collected
            raise
        self.faces = self.fitter.faces
        self.sequence_length = config.chunk if config.temporal else 1
        self.smoother = PredictionSmoother(self.fitter.layers, config.smooth_coeff) if config.temporal else None
        self.previous: dict[str, HandPrediction] = {}

    def predict(self, image: np.ndarray, K: np.ndarray | None = None) -> list[HandPrediction]:
        return self._finish(self.fitter.fit_image(image, K, self._tracked()))

    def _finish(self, hands: list[HandPrediction]) -> list[HandPrediction]:
        self.previous = {hand.side: hand for hand in hands}
        return self.smoother(hands) if self.smoother is not None else hands

    def predict_stream(self, frames: Iterable[np.ndarray], K: np.ndarray | None = None) -> Iterator[list[HandPrediction]]:
        """`predict` over consecutive frames, detecting frame t + 1 (MediaPipe, which releases the GIL) while frame
        t is fitted; the same hands as frame-by-frame `predict`, yielded in order."""
        frames = iter(frames)
        current = next(frames, None)
        if current is None:
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(threads, self.config.stream_threads)))
        try:
            yield from self._stream(frames, current, K)
        finally:
            torch.set_num_threads(threads)

    def _stream(self, frames: Iterator[np.ndarray], current: np.ndarray, K: np.ndarray | None) -> Iterator[list[HandPrediction]]:
        with ThreadPoolExecutor(1, thread_name_prefix="hand-detection") as pool:
            pending = pool.submit(self.fitter.detector.detect, current)
            for upcoming in frames:
                detections = pending.result()
                pending = pool.submit(self.fitter.detector.detect, upcoming)
                yield self._finish(self.fitter.fit_found(detections, current.shape[:2], K, self._tracked()))
                current = upcoming
            yield self._finish(self.fitter.fit_found(pending.result(), current.shape[:2], K, self._tracked()))

    def _tracked(self) -> dict[str, HandPrediction] | None:
        return self.previous if self.config.tracking else None

    def predict_sequence(self, frames: list[np.ndarray], K: np.ndarray | None = None) -> list[list[HandPrediction]]:
        return self.fitter.fit_frames(frames, K, smooth=len(frames) > 1)

    def reset(self) -> None:
        self.previous = {}
        if self.smoother is not None:
            self.smoother.reset()

    def close(self) -> None:
        self.fitter.close()
