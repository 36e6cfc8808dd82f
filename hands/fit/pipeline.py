"""Photo or video -> hands with MANO parameters: MediaPipe keypoints, then MANO fitting (`hands.fit.mano_fit`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from hands.fit.landmarker import DetectedHand, HandDetector
from hands.fit.mano_fit import FitConfig, HandFit, default_intrinsics, fit_mano, project
from hands.geometry.smoothing import HandSmoother, OneEuroFilter
from hands.mano import build_mano
from hands.mano.layer import ManoLayer
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
                                             for side in ("right", "left")}

    def close(self) -> None:
        self.detector.close()

    def intrinsics(self, image_size: tuple[int, int], K: np.ndarray | None) -> np.ndarray:
        return np.asarray(K, dtype=np.float64) if K is not None else default_intrinsics(image_size, self.config.focal_ratio)

    def fit_detections(self, detections: list[DetectedHand], K: np.ndarray, sequence: bool = False,
                       masks: list[np.ndarray] | None = None) -> list[HandFit]:
        """MANO fits of detected hands seen by camera K (3,3), batched per side; `sequence`: the detections of each
        side are consecutive frames of one hand (shared shape, temporal smoothness); `masks`: one (H, W) bool mask
        of each hand (adds the silhouette term). Same order as `detections`."""
        by_side: dict[str, list[int]] = defaultdict(list)
        for index, hand in enumerate(detections):
            by_side[hand.side].append(index)
        fits: list[HandFit | None] = [None] * len(detections)
        for side, indices in by_side.items():
            layer = self.layers[side]
            keypoints = torch.tensor(np.stack([detections[i].keypoints for i in indices]))
            landmarks = torch.tensor(np.stack([detections[i].world for i in indices]))
            cameras = torch.tensor(K, dtype=torch.float64).expand(len(indices), 3, 3)
            side_masks = torch.tensor(np.stack([masks[i] for i in indices])) if masks is not None else None
            results = fit_mano(layer, keypoints, cameras, landmarks, self.config, sequence=sequence, masks=side_masks)
            for i, result in zip(indices, results):
                fits[i] = HandFit(side=side, K=np.asarray(K), keypoints=detections[i].keypoints,
                                  **{k: v.detach().cpu().double().numpy() for k, v in result.items()})
        return fits  # type: ignore[return-value]

    def fit_image(self, image: np.ndarray, K: np.ndarray | None = None) -> list[HandFit]:
        """Every hand in an RGB uint8 image (H, W, 3); K (3,3) defaults to `default_intrinsics`."""
        return self.fit_detections(self.detector.detect(image), self.intrinsics(image.shape[:2], K))

    def fit_frames(self, frames: list[np.ndarray], K: np.ndarray | None = None, smooth: bool = True) -> list[list[HandFit]]:
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
        result: list[list[HandFit]] = [[] for _ in frames]
        for (t, _), fit in zip(flat, fits):
            result[t].append(fit)
        return result


class FitSmoother:
    """One-Euro filtering of fits arriving frame by frame (a webcam), per side: ACR's settings for orientation,
    pose and shape (`hands.geometry.smoothing`), the pose's settings for the translation; the hands are posed again."""

    def __init__(self, layers: dict[str, ManoLayer], smooth_coeff: float = 4.0) -> None:
        self.layers = layers
        self.hands = {side: HandSmoother(smooth_coeff) for side in layers}
        self.transl = {side: OneEuroFilter(smooth_coeff, 0.7) for side in layers}

    def __call__(self, fits: list[HandFit]) -> list[HandFit]:
        smoothed = []
        for fit in fits:
            layer = self.layers[fit.side]
            as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=layer.v_template.dtype, device=layer.v_template.device)  # noqa: E731
            orient, pose, betas = self.hands[fit.side](as_t(fit.global_orient), as_t(fit.hand_pose), as_t(fit.betas))
            transl = self.transl[fit.side](fit.transl)
            with torch.no_grad():
                out = layer(orient[None], pose[None], betas[None], as_t(transl)[None])
                projected = project(out.joints, as_t(fit.K)[None])[0]
            numpy = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
            smoothed.append(HandFit(fit.side, numpy(orient), numpy(pose), numpy(betas), np.asarray(transl), fit.K,
                                    numpy(out.vertices[0]), numpy(out.joints[0]), fit.keypoints, numpy(projected)))
        return smoothed
