"""Levenberg-Marquardt on the fitting objective of `hands.fit.mano_fit`, for single frames in real time.

The objective's terms (keypoints, metric landmarks, pose prior, joint limits, shape prior) are written as one
residual vector per hand whose sum of squares equals `fitting_loss` (exactly while every keypoint residual is
inside the Huber threshold; beyond it, iteratively reweighted: the Huber loss's weight delta/|x| is held fixed
for the step). The Jacobian comes from forward differences, every parameter of every hand in one batched call of
the MANO layer (fingertips only): an iteration costs two layer calls and a (61, 61) solve per hand, where Adam
needs about a hundred autograd steps. Hands are independent (no shared shape, no temporal term): sequences and
silhouettes stay with Adam (`fit_mano`).

Parameters per hand: global orientation (3, axis-angle), articulation as the prior's 45 PCA coefficients, betas
(10), translation (3, meters).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hands.fit.mano_fit import FitConfig, PosePrior, project
from hands.mano.layer import ManoLayer
from hands.mano.limits import limit_excess

STEP = 1e-6  # forward-difference step of every parameter (radians, PCA units, betas, meters), float64


@dataclass
class HandParameters:
    """MANO parameters of B hands (flat-hand convention, camera frame, meters): global_orient (B,3), hand_pose
    (B,45), betas (B,10), transl (B,3)."""

    global_orient: Tensor
    hand_pose: Tensor
    betas: Tensor
    transl: Tensor


class Residuals:
    """The residual vector (B, R) of the fitting objective at packed parameters (B, 61)."""

    def __init__(self, layer: ManoLayer, keypoints: Tensor, K: Tensor, landmarks: Tensor | None, config: FitConfig,
                 prior: PosePrior | None = None) -> None:
        self.layer, self.config, self.prior = layer, config, prior or PosePrior(layer, config)
        self.keypoints, self.K, self.landmarks = keypoints, K, landmarks
        self.size = (keypoints.max(1).values - keypoints.min(1).values).max(-1).values.clamp_min(1.0)
        self.num_betas = layer.num_betas
        self.width = 3 + 45 + layer.num_betas + 3

    def pack(self, hands: HandParameters) -> Tensor:
        coefficients = (hands.hand_pose - self.prior.mean) @ self.prior.directions.T  # orthonormal rows
        return torch.cat([hands.global_orient, coefficients, hands.betas, hands.transl], 1)

    def unpack(self, packed: Tensor) -> HandParameters:
        orient, coefficients, betas, transl = packed.split([3, 45, self.num_betas, 3], 1)
        return HandParameters(orient, self.prior.pose(coefficients), betas, transl)

    def __call__(self, packed: Tensor, repeat: int = 1) -> tuple[Tensor, Tensor]:
        """Residuals (B*repeat, R) at parameters (B*repeat, 61) whose rows are `repeat` consecutive copies per
        hand (the Huber loss's reweighting not applied: `reweight` does), and the keypoint residuals
        (B*repeat, 21, 2) in units of the hand's size."""
        c = self.config
        hands = self.unpack(packed)
        joints = self.layer(global_orient=hands.global_orient, hand_pose=hands.hand_pose, betas=hands.betas,
                            transl=hands.transl, joints_only=True).joints
        rows = lambda x: x.repeat_interleave(repeat, 0) if repeat > 1 else x  # noqa: E731
        keypoint = (project(joints, rows(self.K)) - rows(self.keypoints)) / rows(self.size)[:, None, None]
        parts = [(keypoint * (c.keypoint_weight * 0.5 / (21 * c.huber)) ** 0.5).flatten(1)]
        if self.landmarks is not None and c.landmark_weight > 0:
            centred = lambda x: x - x.mean(1, keepdim=True)  # noqa: E731
            parts.append(((centred(joints) - centred(rows(self.landmarks))) * 10 * (c.landmark_weight / 21) ** 0.5).flatten(1))
        coefficients = packed[:, 3:48]
        parts.append(coefficients / self.prior.sigma * c.pose_prior_weight ** 0.5)
        parts.append(limit_excess(hands.hand_pose, self.layer.side).flatten(1) * c.limit_weight ** 0.5)
        parts.append(hands.betas * c.shape_weight ** 0.5)
        return torch.cat(parts, 1), keypoint

    def reweight(self, keypoint: Tensor, width: int) -> Tensor:
        """(B, width) factors of the residual vector: the square roots of the Huber loss's IRLS weights on the 42
        keypoint entries (1 inside the threshold, delta/|x| beyond), 1 elsewhere."""
        weights = (self.config.huber / keypoint.abs().clamp_min(1e-12)).clamp(max=1.0).sqrt().flatten(1)
        return torch.cat([weights, weights.new_ones(weights.shape[0], width - weights.shape[1])], 1)


def solve(layer: ManoLayer, keypoints: Tensor, K: Tensor, start: HandParameters, landmarks: Tensor | None = None,
          config: FitConfig | None = None, iterations: int = 12, damping: float = 1e-3,
          tolerance: float = 1e-3, prior: PosePrior | None = None) -> HandParameters:
    """Refine B hands from `start` towards the fitting objective's minimum: keypoints (B,21,2) pixels (canonical
    order), cameras K (B,3,3), MediaPipe's metric landmarks (B,21,3) or None. At most `iterations`
    Levenberg-Marquardt steps (Marquardt's diagonal scaling, damping adapted per hand: a step that does not lower
    the cost is undone); stops once every hand's cost falls by less than `tolerance` (relative) in a step.
    `prior`: the layer's `PosePrior` for `config`, when the caller keeps one."""
    config = config or FitConfig()
    dtype, device = layer.v_template.dtype, layer.v_template.device
    if dtype != torch.float64:
        raise ValueError(f"solve needs a float64 MANO layer (forward differences), got {dtype}")
    keypoints, K = keypoints.to(device, dtype), K.to(device, dtype)
    landmarks = landmarks.to(device, dtype) if landmarks is not None else None
    with torch.no_grad():
        residuals = Residuals(layer, keypoints, K, landmarks, config, prior)
        B, P = keypoints.shape[0], residuals.width
        packed = residuals.pack(HandParameters(*(t.to(device, dtype) for t in (
            start.global_orient, start.hand_pose, start.betas, start.transl))))
        lam = torch.full((B,), damping, dtype=dtype, device=device)
        converged = torch.zeros(B, dtype=torch.bool, device=device)
        eye = torch.eye(P, dtype=dtype, device=device)
        offsets = eye * STEP  # (P, P): one forward-difference probe per parameter
        values, keypoint = residuals(packed)
        for _ in range(iterations):
            factors = residuals.reweight(keypoint, values.shape[1])  # held fixed for this step
            r0 = values * factors
            probes = (packed[:, None] + offsets).reshape(B * P, P)
            perturbed = residuals(probes, P)[0].view(B, P, -1) * factors[:, None]
            J = ((perturbed - r0[:, None]) / STEP).transpose(1, 2)  # (B, R, P)
            JtJ, Jtr = J.transpose(1, 2) @ J, (J.transpose(1, 2) @ r0[..., None])[..., 0]
            cost = r0.pow(2).sum(1)
            scale = torch.diagonal(JtJ, dim1=1, dim2=2).clamp_min(1e-9)
            step = torch.linalg.solve(JtJ + (lam[:, None] * scale)[..., None] * eye, -Jtr)
            trial = packed + step
            trial_values, trial_keypoint = residuals(trial)
            new_cost = (trial_values * factors).pow(2).sum(1)
            better = new_cost < cost
            packed = torch.where(better[:, None], trial, packed)
            values = torch.where(better[:, None], trial_values, values)
            keypoint = torch.where(better[:, None, None], trial_keypoint, keypoint)
            lam = torch.where(better, lam / 3, lam * 4).clamp(1e-7, 1e7)
            converged = converged | (better & (cost - new_cost < tolerance * cost))  # a rejected step is no sign
            if bool(converged.all()):
                break
    return residuals.unpack(packed)
