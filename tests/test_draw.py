"""Overlays and skeleton drawing on photos."""

import numpy as np
import pytest
import torch

from hands.render.draw import FINGER_COLORS, draw_skeleton, overlay


def test_overlay_blends_only_under_the_mask():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    rendering = torch.rand(3, 20, 30, dtype=torch.float64)
    mask = torch.zeros(20, 30, dtype=torch.bool)
    mask[5:10, 4:20] = True
    out = overlay(photo, rendering, mask, alpha=0.25)
    render_u8 = (rendering.permute(1, 2, 0).numpy() * 255).round()
    expected = np.round(0.25 * render_u8 + 0.75 * photo)
    np.testing.assert_allclose(out[5:10, 4:20], expected[5:10, 4:20], atol=1)
    np.testing.assert_array_equal(out[~mask.numpy()], photo[~mask.numpy()])
    with pytest.raises(ValueError, match="must match"):
        overlay(photo, rendering, mask[:10])
    with pytest.raises(ValueError, match="alpha"):
        overlay(photo, rendering, mask, alpha=1.5)


def test_skeleton_draws_bones_in_finger_colours():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    keypoints = np.full((21, 2), np.nan)
    keypoints[0] = (50.0, 90.0)  # wrist
    for k, x in zip(range(5, 9), (40.0, 40.0, 40.0, 40.0)):  # index finger straight up
        keypoints[k] = (x, 70.0 - 12 * (k - 5))
    out = draw_skeleton(image, keypoints)
    index_colour = np.array(FINGER_COLORS[1])
    assert np.abs(out[58, 40].astype(int) - index_colour).max() <= 2  # middle of the bone between joints 5 and 6
    np.testing.assert_array_equal(out[90, 50], (255, 255, 255))  # the wrist
    assert out[10:30, 70:].max() == 0  # nothing drawn away from the hand
    assert image.max() == 0  # the input is left untouched
    hidden = draw_skeleton(image, keypoints, visible=np.arange(21) != 6)
    assert np.abs(hidden[58, 40].astype(int) - index_colour).max() > 50  # bones to a hidden joint are skipped
    with pytest.raises(ValueError, match="keypoints"):
        draw_skeleton(image, keypoints[:20])
