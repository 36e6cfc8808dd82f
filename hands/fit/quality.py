"""Does a generated picture show its labelled hands? Re-detection and fitting scored against the labels.

Used as the quality check of `hands synth` (a `hands.data.synthetic.sources.QualityCheck`) and by `hands eval
generation`: MediaPipe (with the detection cascade) finds the hands again, each labelled hand is paired with the
detection whose keypoints agree with it best, and the fit front end fits MANO to that detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hands.config import check_fields
from hands.data.synthetic.sources import ViewCondition, ViewHand
from hands.eval.metrics import pa_mpjpe, pck_2d
from hands.fit.cascade import CascadeDetector, DetectionConfig
from hands.fit.landmarker import DetectedHand
from hands.fit.mano_fit import FitConfig
from hands.fit.pipeline import HandFitter


@dataclass
class QualityConfig:
    """How `hands synth` checks each generated picture."""

    min_consistency: float = 0.0
    """Drop a sample whose pose consistency (mean PCK over its labelled hands; 0 for a hand not found) is below
    this (0 keeps every sample, scores still recorded)."""
    pck_fraction: float = 0.1
    """A re-detected keypoint is correct within this fraction of the larger side of its labelled hand's box."""
    fit: bool = True
    """Also fit MANO to each paired detection and record its joint error after Procrustes alignment (mm)."""

    def __post_init__(self) -> None:
        check_fields(self, at_least={"min_consistency": 0.0, "pck_fraction": 1e-3}, at_most={"min_consistency": 1.0})


def keypoint_pck(detected: np.ndarray, labelled: np.ndarray, visible: np.ndarray, fraction: float) -> float:
    """PCK of detected keypoints (21, 2) against labelled ones (21, 2) over the visible (21,) labels, pixels."""
    if not visible.any():
        return float("nan")
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))[None]  # noqa: E731
    return float(pck_2d(as_t(detected), as_t(labelled), fraction, torch.as_tensor(visible)[None])[0])


class FitQuality:
    """Scores pictures against their views' labels: hands found, hand confidence (the detector's handedness
    score), PCK of the re-detected keypoints, PA-MPJPE of the fitted joints (mm) and the consistency that
    decides `keep`."""

    def __init__(self, config: QualityConfig | None = None, device: str = "cpu", landmarker: str | None = None,
                 detection: DetectionConfig | None = None) -> None:
        self.config = config or QualityConfig()
        self.fitter = HandFitter(CascadeDetector(landmarker, detection or DetectionConfig()),
                                 FitConfig(device=device, solver="fast"))

    def close(self) -> None:
        self.fitter.close()

    def pair(self, detections: list[DetectedHand], hands: list[ViewHand]) -> list[tuple[int, float]]:
        """For each labelled hand: (index of the detection that agrees with it best or -1, its PCK); each
        detection serves one hand, the same side preferred on ties."""
        pairs, used = [], set()
        for hand in hands:
            scored = [(keypoint_pck(d.keypoints, hand.keypoints_2d, hand.visible, self.config.pck_fraction),
                       d.side == hand.side, i) for i, d in enumerate(detections) if i not in used]
            scored = [s for s in scored if not np.isnan(s[0])]
            if not scored:
                pairs.append((-1, 0.0))
                continue
            pck, _, index = max(scored)
            used.add(index)
            pairs.append((index, pck))
        return pairs

    def __call__(self, image: np.ndarray, view: ViewCondition) -> dict:
        return self.score(image, view.hands, view.K)

    def score(self, image: np.ndarray, hands: list[ViewHand], K: np.ndarray) -> dict:
        """The scores of an image (H, W, 3) uint8 against labelled hands seen through intrinsics K (3, 3):
        hands found, hand confidence, PCK, mean keypoint error (px), PA-MPJPE (mm), consistency and keep."""
        detections = self.fitter.detector.detect(image)
        pairs = self.pair(detections, hands)
        found = [(hand, detections[i], pck) for hand, (i, pck) in zip(hands, pairs) if i >= 0]
        consistency = float(np.mean([pck for _, pck in pairs])) if pairs else 0.0
        errors_2d = [float(np.linalg.norm(d.keypoints - hand.keypoints_2d, axis=-1)[hand.visible].mean()) for hand, d, _ in found]
        result = {"hands_found": len(found), "hands_labelled": len(hands),
                  "hand_confidence": round(float(np.mean([d.score for _, d, _ in found])), 4) if found else 0.0,
                  "pck": round(consistency, 4), "keypoint_error_px": round(float(np.mean(errors_2d)), 2) if found else None,
                  "pa_mpjpe_mm": None}
        if self.config.fit and found:
            fits = self.fitter.fit_detections([d for _, d, _ in found], np.asarray(K, dtype=np.float64))
            errors = [float(pa_mpjpe(torch.as_tensor(fit.joints)[None], torch.as_tensor(hand.joints)[None])[0]) * 1000.0
                      for (hand, _, _), fit in zip(found, fits)]
            result["pa_mpjpe_mm"] = round(float(np.mean(errors)), 2)
        result["consistency"] = round(consistency, 4)
        result["keep"] = bool(consistency >= self.config.min_consistency)
        return result
