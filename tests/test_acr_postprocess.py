"""ACR post-processing on hand-made maps: peaks, the phantom-hand guards, the cross-hand prior and decoding."""

import torch

from hands.acr.model import ACRMaps
from hands.acr.postprocess import PostprocessConfig, decode, detect
from hands.geometry.rotations import axis_angle_to_rotation_6d
from hands.mano import build_mano

F64 = torch.float64
MAP, SEG, IMAGE = 32, 128, 256


def blank_maps(batch=1) -> ACRMaps:
    part_logits = torch.zeros(batch, 33, SEG, SEG, dtype=F64)
    part_logits[:, 0] = 1.0  # background everywhere
    return ACRMaps(part_logits, {s: torch.zeros(batch, 109, MAP, MAP, dtype=F64) for s in ("right", "left")},
                   {s: torch.zeros(batch, 1, MAP, MAP, dtype=F64) for s in ("right", "left")},
                   {s: torch.zeros(batch, 106, MAP, MAP, dtype=F64) for s in ("right", "left")})


def paint_hand(maps, side, y, x, score, part=3):
    maps.centre[side][0, 0, y, x] = score
    label = part + (1 if side == "right" else 17)
    maps.part_logits[0, label, 4 * y - 6:4 * y + 6, 4 * x - 6:4 * x + 6] = 5.0


def test_detections_and_phantom_guards():
    maps = blank_maps()
    paint_hand(maps, "right", 8, 8, 0.9)
    paint_hand(maps, "left", 20, 22, 0.8)
    maps.centre["left"][0, 0, 21, 22] = 0.5  # a weaker neighbour is suppressed by NMS
    found = detect(maps, PostprocessConfig())[0]
    assert found == {"right": (0.9, (8, 8)), "left": (0.8, (20, 22))}

    maps = blank_maps()
    paint_hand(maps, "right", 8, 8, 0.9)
    maps.centre["left"][0, 0, 8, 9] = 0.7  # the left channel fires on the right hand: no left parts there
    assert set(detect(maps, PostprocessConfig())[0]) == {"right"}
    maps.part_logits[0, 20, 26:32, 26:38] = 6.0  # left parts on half the hand: the conflict rule keeps the stronger
    assert set(detect(maps, PostprocessConfig())[0]) == {"right"}
    maps.centre["right"][0, 0, 8, 8] = 0.2  # below the threshold
    assert set(detect(maps, PostprocessConfig())[0]) == {"left"}


def test_decoding_recovers_parameters_and_applies_the_prior():
    torch.manual_seed(0)
    layers = {s: build_mano(s, pose_convention="flat", dtype=F64) for s in ("right", "left")}
    maps = blank_maps()
    paint_hand(maps, "right", 8, 8, 0.9)
    paint_hand(maps, "left", 12, 14, 0.8)
    truth = {}
    for side, (y, x) in (("right", (8, 8)), ("left", (12, 14))):
        pose = torch.randn(16, 3, dtype=F64) * 0.3
        betas = torch.randn(10, dtype=F64)
        camera = torch.tensor([3.0, 0.1, -0.2], dtype=F64)
        maps.params[side][0, :, y, x] = torch.cat([camera, axis_angle_to_rotation_6d(pose).reshape(96), betas])
        truth[side] = (pose, betas, camera)
    prior_shift = torch.zeros(106, dtype=F64)
    prior_shift[-10:] = 0.5  # the left prior, read at the right hand's centre, adds 0.5 to the left betas
    maps.prior["left"][0, :, 8, 8] = prior_shift
    hands = {h.side: h for h in decode(maps, detect(maps, PostprocessConfig()), layers, IMAGE, PostprocessConfig())}
    for side, (pose, betas, camera) in truth.items():
        hand = hands[side]
        torch.testing.assert_close(hand.global_orient, pose[0])
        torch.testing.assert_close(hand.hand_pose, pose[1:].reshape(45) + layers[side].hands_mean)
        expected_betas = betas + (0.5 if side == "left" else 0.0)
        torch.testing.assert_close(hand.betas, expected_betas)
        out = layers[side](pose[None, 0], hand.hand_pose[None], expected_betas[None])
        torch.testing.assert_close(hand.joints, out.joints[0] - out.joints[0, 9])
        assert hand.joints[9].abs().max() < 1e-12
        s, tx, ty = camera
        expected_2d = (s * hand.joints[:, :2] + torch.stack([tx, ty]) + 1) * IMAGE / 2 - 0.5
        torch.testing.assert_close(hand.joints_2d, expected_2d)
        # the pinhole placement puts the root where the weak-perspective camera does
        f = PostprocessConfig().focal * IMAGE / 512
        root = hand.translation
        torch.testing.assert_close(root[:2] / root[2] * f + (IMAGE - 1) / 2, expected_2d[9])


def test_letterbox_maps_pixels_back_to_the_original():
    import numpy as np

    from hands.acr.predictor import letterbox

    image = np.zeros((120, 200, 3), np.uint8)
    image[30:34, 150:154] = 255  # a bright square centred at (151.5, 31.5)
    square, box = letterbox(image, 64)
    assert square.shape == (64, 64, 3)
    ys, xs = np.nonzero(square[..., 0] > 60)
    centre = box.to_original(np.array([xs.mean(), ys.mean()]))
    np.testing.assert_allclose(centre, [151.5, 31.5], atol=0.6)
