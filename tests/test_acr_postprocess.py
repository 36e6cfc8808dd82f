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
    guarded = PostprocessConfig(phantom_guard=True)
    for config in (PostprocessConfig(), guarded):
        maps = blank_maps()
        paint_hand(maps, "right", 8, 8, 0.9)
        paint_hand(maps, "left", 20, 22, 0.8)
        maps.centre["left"][0, 0, 21, 22] = 0.5  # a weaker neighbour is suppressed by NMS
        found = detect(maps, config)[0]
        assert found == {"right": (0.9, (8, 8)), "left": (0.8, (20, 22))}

    maps = blank_maps()
    paint_hand(maps, "right", 8, 8, 0.9)
    maps.centre["left"][0, 0, 8, 9] = 0.7  # the left channel fires on the right hand: no left parts there
    assert set(detect(maps, PostprocessConfig())[0]) == {"right", "left"}  # the release keeps both
    assert set(detect(maps, guarded)[0]) == {"right"}
    maps.part_logits[0, 20, 26:32, 26:38] = 6.0  # left parts on half the hand: the conflict rule keeps the stronger
    assert set(detect(maps, guarded)[0]) == {"right"}
    assert set(detect(maps, PostprocessConfig())[0]) == {"right", "left"}
    maps.centre["right"][0, 0, 8, 8] = 0.2  # below the threshold
    assert set(detect(maps, guarded)[0]) == {"left"}
    assert set(detect(maps, PostprocessConfig(threshold=0.75))[0]) == set()
    assert PostprocessConfig().phantom_guard is False and PostprocessConfig().placement == "pnp"


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
    config = PostprocessConfig(placement="closed_form")
    hands = {h.side: h for h in decode(maps, detect(maps, config), layers, IMAGE, config)}
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
        expected_2d = (s * hand.joints[:, :2] + torch.stack([tx, ty]) + 1) * IMAGE / 2  # the release's pixels
        torch.testing.assert_close(hand.joints_2d, expected_2d)
        # the closed-form placement puts the root where the weak-perspective camera does
        f = PostprocessConfig().focal * IMAGE / 512
        root = hand.translation
        torch.testing.assert_close(root[:2] / root[2] * f + IMAGE / 2, expected_2d[9])


def test_letterbox_maps_pixels_back_to_the_original():
    import numpy as np

    from hands.acr.predictor import letterbox

    image = np.zeros((120, 200, 3), np.uint8)
    image[30:34, 150:154, 0] = 255  # a red square centred at pixel (151.5, 31.5), i.e. (152, 32) from the corner
    square, box = letterbox(image, 64)
    assert square.shape == (64, 64, 3)
    ys, xs = np.nonzero((square[..., 0] > 60) & (square[..., 1] < 128))
    centre = box.to_original(np.array([xs.mean(), ys.mean()]) + 0.5)  # pixel centres -> ACR's corner origin
    np.testing.assert_allclose(centre, [152.0, 32.0], atol=0.6)
    # the release pads with white (acr/utils.py image_pad_white_bg, pad_cval=255): 40 rows above and below
    big, box = letterbox(image, 200)
    assert box.offset.tolist() == [0.0, 40.0] and box.scale == 1.0
    assert (big[:40] == 255).all() and (big[160:] == 255).all() and (big[40:160, :150] == 0).all()
    black, _ = letterbox(image, 200, pad_value=0)
    assert (black[:40] == 0).all()
    odd, box = letterbox(np.zeros((3, 8, 3), np.uint8), 8)  # 5 rows of padding: 2 on top, 3 below (imgaug's split)
    assert box.offset.tolist() == [0.0, 2.0] and (odd[:2] == 255).all() and (odd[5:] == 255).all()


def test_pnp_placement_matches_opencv_on_synthetic_hands():
    """RANSAC PnP on perspective projections of posed hands recovers their translation, like cv2.solvePnP."""
    import cv2
    import numpy as np

    from hands.acr.postprocess import input_intrinsics
    from hands.geometry.pnp import solve_translation_pnp

    torch.manual_seed(1)
    layer = build_mano("right", pose_convention="flat", dtype=F64)
    K = input_intrinsics(512, 1265.0)
    assert K[0, 2] == 256.0 and K[0, 0] == 1265.0
    for _ in range(5):
        out = layer(torch.randn(1, 3, dtype=F64) * 0.5, torch.randn(1, 45, dtype=F64) * 0.3, torch.randn(1, 10, dtype=F64))
        joints = (out.joints[0] - out.joints[0, 9]).numpy()
        t = np.array([np.random.uniform(-0.1, 0.1), np.random.uniform(-0.1, 0.1), np.random.uniform(0.4, 1.2)])
        camera = joints + t
        pixels = camera[:, :2] / camera[:, 2:] * K[0, 0] + K[:2, 2]
        ours = solve_translation_pnp(joints, pixels, K)
        _, _, reference = cv2.solvePnP(joints, pixels, K, None, flags=cv2.SOLVEPNP_ITERATIVE)
        np.testing.assert_allclose(ours, reference[:, 0], rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(ours, t, rtol=2e-3, atol=2e-4)
        # a gross outlier is left out by RANSAC
        bad = pixels.copy()
        bad[4] += 80.0
        np.testing.assert_allclose(solve_translation_pnp(joints, bad, K), t, rtol=5e-3, atol=5e-4)
    # keypoints more than 2 px above the image are not used; fewer than 4 left -> no answer (the release crashes)
    pixels[:, 1] = -3.0
    assert solve_translation_pnp(joints, pixels, K) is None


def test_pnp_is_the_default_placement():
    """decode places each hand with solve_translation_pnp on its own 2D joints unless closed_form is asked for."""
    import numpy as np

    from hands.acr.postprocess import input_intrinsics
    from hands.geometry.pnp import solve_translation_pnp

    layers = {s: build_mano(s, pose_convention="flat", dtype=F64) for s in ("right", "left")}
    maps = blank_maps()
    paint_hand(maps, "right", 8, 8, 0.9)
    maps.params["right"][0, :, 8, 8] = torch.cat([torch.tensor([2.5, 0.1, -0.2], dtype=F64),
                                                  axis_angle_to_rotation_6d(torch.full((16, 3), 0.2, dtype=F64)).reshape(96),
                                                  torch.zeros(10, dtype=F64)])
    (pnp,) = decode(maps, detect(maps, PostprocessConfig()), layers, IMAGE, PostprocessConfig())
    (closed,) = decode(maps, detect(maps, PostprocessConfig()), layers, IMAGE, PostprocessConfig(placement="closed_form"))
    expected = solve_translation_pnp(pnp.joints.numpy(), pnp.joints_2d.numpy(), input_intrinsics(IMAGE, 1265.0))
    np.testing.assert_allclose(pnp.translation.numpy(), expected, rtol=1e-6)
    assert not torch.allclose(pnp.translation, closed.translation, rtol=1e-4)  # weak perspective is not a pinhole
    assert abs(float(pnp.translation[2] / closed.translation[2]) - 1) < 0.1
