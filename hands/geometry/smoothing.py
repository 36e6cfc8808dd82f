"""One-Euro filtering of hand parameters over video frames, with ACR's settings (from minimal-hand); the one
temporal smoother of MANO parameters, used by the ACR demo and the fit front end.

Per side: the hand pose (45 axis-angle values) with min_cutoff = smooth_coeff (4.0) and beta 0.7; the global
orientation as a rotation matrix with the same settings, converted back to axis-angle without projecting onto
the rotations first (as the release does); betas with min_cutoff 0.6 and beta 0.7. 30 Hz, derivative cutoff
1 Hz. The camera is not filtered.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle


class OneEuroFilter:
    """Casiez et al. 2012: an adaptive low-pass filter on arrays of any fixed shape. The speed is the difference
    of the raw input to the previous raw input (as in the published algorithm and the release); the first value
    passes unchanged and starts the speed at zero."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0, freq: float = 30.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff, self.freq = min_cutoff, beta, d_cutoff, freq
        self.previous_raw: np.ndarray | None = None
        self.previous: np.ndarray | None = None
        self.previous_derivative: np.ndarray | None = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.freq)

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.previous is None:
            self.previous_raw, self.previous, self.previous_derivative = value, value, np.zeros_like(value)
            return value
        a_d = self._alpha(self.d_cutoff)
        derivative = a_d * (value - self.previous_raw) * self.freq + (1 - a_d) * self.previous_derivative
        a = self._alpha(self.min_cutoff + self.beta * np.abs(derivative))
        smoothed = a * value + (1 - a) * self.previous
        self.previous_raw, self.previous, self.previous_derivative = value, smoothed, derivative
        return smoothed


class HandSmoother:
    """Filters (global_orient, hand_pose, betas) of one hand side across frames."""

    def __init__(self, smooth_coeff: float = 4.0) -> None:
        self.pose = OneEuroFilter(smooth_coeff, 0.7)
        self.orient = OneEuroFilter(smooth_coeff, 0.7)
        self.betas = OneEuroFilter(0.6, 0.7)

    def __call__(self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor):
        """Filtered copies of global_orient (3,), hand_pose (45,) axis-angle and betas (10,), same dtype/device."""
        matrix = self.orient(axis_angle_to_matrix(global_orient.detach().cpu().double()).numpy())
        as_tensor = lambda x: torch.as_tensor(x, dtype=hand_pose.dtype, device=hand_pose.device)  # noqa: E731
        orient = matrix_to_axis_angle(torch.from_numpy(matrix))
        return (as_tensor(orient), as_tensor(self.pose(hand_pose.detach().cpu().numpy())),
                as_tensor(self.betas(betas.detach().cpu().numpy())))
