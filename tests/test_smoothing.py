"""The -t smoothing (ACR's settings): the One-Euro filter against the published algorithm, and the hand smoother's parts."""

import math

import numpy as np
import torch

from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hands.geometry.smoothing import HandSmoother, OneEuroFilter


def published_one_euro(xs, min_cutoff, beta, d_cutoff=1.0, rate=30.0):
    """Casiez, Roussel and Vogel (CHI 2012), Algorithm 1, written out for a scalar signal at a fixed rate."""
    def alpha(cutoff):
        return 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) * rate)

    out, x_hat, dx_hat, x_prev = [], None, 0.0, None
    for x in xs:
        if x_hat is None:
            x_hat = x
        else:
            dx = (x - x_prev) * rate  # the raw previous sample, not the filtered one
            dx_hat = alpha(d_cutoff) * dx + (1 - alpha(d_cutoff)) * dx_hat
            a = alpha(min_cutoff + beta * abs(dx_hat))
            x_hat = a * x + (1 - a) * x_hat
        x_prev = x
        out.append(x_hat)
    return np.array(out)


def test_one_euro_first_steps_by_hand():
    f = OneEuroFilter(4.0, 0.7)
    assert f(np.array(1.0)) == 1.0
    # step to 2: dx = 30, a_d = 1/(1 + 30/(2 pi)) = 0.173171, dx_hat = 5.19513, cutoff = 4 + 0.7 * 5.19513 = 7.63659,
    # a = 1/(1 + 30/(2 pi 7.63659)) = 0.615296, x_hat = 1.615296
    a_d = 1 / (1 + 30 / (2 * math.pi))
    cutoff = 4 + 0.7 * a_d * 30
    a = 1 / (1 + 30 / (2 * math.pi * cutoff))
    np.testing.assert_allclose(f(np.array(2.0)), 1 + a, rtol=1e-12)
    np.testing.assert_allclose(1 + a, 1.615296, atol=1e-6)
    # a third sample equal to the second: the speed uses 2 - 2 = 0 (raw), not 2 - 1.61525 (filtered)
    dx_hat = (1 - a_d) * a_d * 30
    a3 = 1 / (1 + 30 / (2 * math.pi * (4 + 0.7 * dx_hat)))
    np.testing.assert_allclose(f(np.array(2.0)), a3 * 2 + (1 - a3) * (1 + a), rtol=1e-12)


def test_one_euro_matches_the_published_algorithm_on_a_sequence():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    xs = np.sin(2 * math.pi * 0.5 * t) + 0.05 * rng.standard_normal(len(t)) + (t > 2) * 0.8  # a jump at 2 s
    for min_cutoff, beta in ((4.0, 0.7), (0.6, 0.7), (1.0, 0.0)):
        f = OneEuroFilter(min_cutoff, beta)
        ours = np.array([f(np.array(x)) for x in xs])
        np.testing.assert_allclose(ours, published_one_euro(xs, min_cutoff, beta), rtol=1e-12, atol=1e-12)
    # arrays are filtered element-wise
    f = OneEuroFilter(4.0, 0.7)
    both = np.stack([xs, -2 * xs], 1)
    ours = np.array([f(x) for x in both])
    np.testing.assert_allclose(ours[:, 1], published_one_euro(-2 * xs, 4.0, 0.7), rtol=1e-12, atol=1e-12)


def test_hand_smoother_filters_the_orientation_matrix_without_reprojection():
    """As the release: the global orientation's matrix is filtered element-wise and converted back as it is."""
    torch.manual_seed(0)
    orients = torch.randn(1, 3, dtype=torch.float64) * 0.8 + 0.2 * torch.randn(8, 3, dtype=torch.float64)
    poses = torch.randn(8, 45, dtype=torch.float64) * 0.3
    betas = torch.randn(8, 10, dtype=torch.float64)
    smoother = HandSmoother(4.0)
    matrix_filter, pose_filter, betas_filter = OneEuroFilter(4.0, 0.7), OneEuroFilter(4.0, 0.7), OneEuroFilter(0.6, 0.7)
    for k in range(8):
        orient, pose, shape = smoother(orients[k], poses[k], betas[k])
        matrix = matrix_filter(axis_angle_to_matrix(orients[k]).numpy())
        torch.testing.assert_close(orient, matrix_to_axis_angle(torch.from_numpy(matrix)))
        torch.testing.assert_close(pose, torch.from_numpy(pose_filter(poses[k].numpy())))
        torch.testing.assert_close(shape, torch.from_numpy(betas_filter(betas[k].numpy())))
        if k:
            assert abs(np.linalg.det(matrix) - 1) > 1e-9  # a blend of rotations is not a rotation: not projected
