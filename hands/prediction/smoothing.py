"""Temporal smoothing of predictions arriving frame by frame (a webcam, a video read live).

Orientation, articulation and shape go through `hands.geometry.smoothing.HandSmoother` (ACR's One-Euro settings,
the one smoother of MANO parameters in the project); the translation through a One-Euro filter with the pose's
settings. The hand is then posed again with the side's MANO layer and re-projected with its camera.
"""

from __future__ import annotations

import numpy as np
import torch

from hands.geometry.smoothing import HandSmoother, OneEuroFilter
from hands.mano.layer import ManoLayer
from hands.prediction.types import HandPrediction


def project_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points (N, 3) meters -> pixels (N, 2) through intrinsics K (3, 3)."""
    uv = points[:, :2] / np.maximum(points[:, 2:], 1e-4)
    return uv * np.diag(K)[:2] + K[:2, 2]


class PredictionSmoother:
    """Smooths each side's hand over consecutive frames; `reset()` starts a new sequence."""

    def __init__(self, layers: dict[str, ManoLayer], smooth_coeff: float = 4.0) -> None:
        self.layers = layers
        self.smooth_coeff = smooth_coeff
        self.reset()

    def reset(self) -> None:
        self.hands = {side: HandSmoother(self.smooth_coeff) for side in self.layers}
        self.transl = {side: OneEuroFilter(self.smooth_coeff, 0.7) for side in self.layers}

    def __call__(self, hands: list[HandPrediction]) -> list[HandPrediction]:
        """The frame's hands with smoothed parameters, posed and projected again."""
        smoothed = []
        for hand in hands:
            layer = self.layers[hand.side]
            as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=layer.v_template.dtype, device=layer.v_template.device)  # noqa: E731
            orient, pose, betas = self.hands[hand.side](as_t(hand.global_orient), as_t(hand.hand_pose), as_t(hand.betas))
            transl = np.asarray(self.transl[hand.side](hand.transl))
            with torch.no_grad():
                out = layer(orient[None], pose[None], betas[None], as_t(transl)[None])
            numpy = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
            joints = numpy(out.joints[0])
            smoothed.append(HandPrediction(hand.side, numpy(orient), numpy(pose), numpy(betas), transl, hand.K,
                                           numpy(out.vertices[0]), joints, project_points(joints, hand.K), hand.score,
                                           dict(hand.extras)))
        return smoothed
