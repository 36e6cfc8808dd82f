"""hands.prediction: the one prediction type (round trips, refusals), ACR's predictions in the image's camera,
and the smoother of predictions arriving frame by frame."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hands.acr.model import ACRNet, ACRNetConfig
from hands.acr.postprocess import CENTRE, HandDetection, PostprocessConfig, decode_hand, input_pixels, place_hand
from hands.acr.predictor import ACRPredictor, letterbox
from hands.mano import build_mano
from hands.mano.limits import sample_hand_poses
from hands.prediction import HandPrediction, load_predictions, save_predictions
from hands.prediction.smoothing import PredictionSmoother, project_points


def random_prediction(side="right", seed=0) -> HandPrediction:
    rng = np.random.default_rng(seed)
    K = np.array([[500.0, 0, 200], [0, 500, 150], [0, 0, 1]])
    joints = rng.normal(0, 0.03, (21, 3)) + [0, 0, 0.5]
    return HandPrediction(side, rng.normal(size=3), rng.normal(size=45), rng.normal(size=10), rng.normal(size=3), K,
                          rng.normal(size=(778, 3)), joints, project_points(joints, K), 0.7,
                          {"detected_keypoints_2d": project_points(joints, K) + 2.0})


def test_predictions_round_trip_through_dict_and_npz(tmp_path):
    hands = [random_prediction("right", 0), random_prediction("left", 1)]
    again = HandPrediction.from_dict(hands[0].to_dict())
    path = save_predictions(tmp_path / "frame.npz", hands)
    loaded = load_predictions(path)
    for original, copy in [(hands[0], again), *zip(hands, loaded)]:
        assert copy.side == original.side and copy.score == pytest.approx(original.score)
        for name in ("global_orient", "hand_pose", "betas", "transl", "K", "vertices", "joints", "keypoints_2d"):
            np.testing.assert_array_equal(getattr(copy, name), getattr(original, name))
        np.testing.assert_array_equal(copy.extras["detected_keypoints_2d"], original.extras["detected_keypoints_2d"])
    assert loaded[0].reprojection_error == pytest.approx(2.0 * np.sqrt(2))
    with pytest.raises(FileExistsError):
        save_predictions(path, hands)
    assert load_predictions(save_predictions(tmp_path / "none.npz", [])) == []


def test_bad_predictions_are_refused_naming_the_field(tmp_path):
    good = random_prediction().to_dict()
    with pytest.raises(ValueError, match="hand_pose: expected shape"):
        HandPrediction.from_dict({**good, "hand_pose": np.zeros(48)})
    with pytest.raises(ValueError, match="transl: holds NaN"):
        HandPrediction.from_dict({**good, "transl": np.array([0.0, np.nan, 0.5])})
    with pytest.raises(ValueError, match="side must be"):
        HandPrediction.from_dict({**good, "side": "both"})
    with pytest.raises(ValueError, match="unknown HandPrediction fields"):
        HandPrediction.from_dict({**good, "camera": np.zeros(3)})
    with pytest.raises(ValueError, match="one hand per side"):
        save_predictions(tmp_path / "x.npz", [random_prediction("right"), random_prediction("right", 2)])
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="broken.npz"):
        load_predictions(tmp_path / "broken.npz")


@pytest.fixture(scope="module")
def acr_predictor():
    torch.manual_seed(0)
    model = ACRNet(ACRNetConfig(backbone_width=8, head_width=16, pose_width=32, shape_width=16))
    return ACRPredictor(model, 128, PostprocessConfig(threshold=-1e9, placement="closed_form"))


def acr_hand(predictor, side, camera=(0.6, 0.2, -0.3), seed=0) -> HandDetection:
    """A decoded hand of a chosen weak-perspective camera (s, tx, ty), as `decode` makes them."""
    vector = torch.cat([torch.tensor(camera), torch.randn(106, generator=torch.Generator().manual_seed(seed)) * 0.3])
    hand = {k: v[0] for k, v in decode_hand(vector[None], predictor.layers[side]).items()}
    joints_2d = input_pixels(hand["joints_2d"], predictor.input_size)
    translation = place_hand(hand["camera"], hand["joints"], joints_2d, predictor.input_size, predictor.config)
    return HandDetection(0, side, 0.9, (3, 4), hand["camera"], hand["global_orient"], hand["hand_pose"], hand["betas"],
                         hand["vertices"], hand["joints"], joints_2d, translation, hand["root"])


def test_acr_predictions_live_in_the_images_camera(acr_predictor):
    image = np.random.default_rng(0).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    _, box = letterbox(image, acr_predictor.input_size)
    assert sorted(h.side for h in acr_predictor.predict(image)) == ["left", "right"]
    for side in ("right", "left"):
        hand = acr_predictor.to_prediction(acr_hand(acr_predictor, side), box)
        layer = acr_predictor.layers[hand.side]
        with torch.no_grad():
            out = layer(*(torch.tensor(v, dtype=torch.float32)[None] for v in
                          (hand.global_orient, hand.hand_pose, hand.betas, hand.transl)))
        np.testing.assert_allclose(out.vertices[0].numpy(), hand.vertices, atol=1e-5)
        # The weak-perspective camera and its pinhole match agree exactly at the alignment joint, in image pixels
        # with pixel centres at integers (a 0.5 px slip in either conversion fails this).
        np.testing.assert_allclose(project_points(hand.joints[CENTRE:CENTRE + 1], hand.K)[0], hand.keypoints_2d[CENTRE],
                                   atol=1e-3)
        assert (hand.keypoints_2d > 0).all() and (hand.keypoints_2d < 160).all()


def test_acr_with_a_given_camera_places_hands_for_it(acr_predictor):
    image = np.random.default_rng(1).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    _, box = letterbox(image, acr_predictor.input_size)
    K = np.array([[300.0, 0, 59.5], [0, 300, 59.5], [0, 0, 1]])
    for seed in range(3):
        detection = acr_hand(acr_predictor, "right", seed=seed)
        a, b = acr_predictor.to_prediction(detection, box), acr_predictor.to_prediction(detection, box, K)
        np.testing.assert_array_equal(b.K, K)
        np.testing.assert_allclose(b.keypoints_2d, a.keypoints_2d)  # the 2D estimate does not depend on the camera
        np.testing.assert_allclose(b.vertices - b.joints[CENTRE], a.vertices - a.joints[CENTRE], atol=1e-9)
        assert np.linalg.norm(project_points(b.joints, K) - b.keypoints_2d, axis=1).mean() < \
            np.linalg.norm(project_points(a.joints, K) - b.keypoints_2d, axis=1).mean()


def test_prediction_smoother_calms_jittered_live_hands():
    layers = {side: build_mano(side, pose_convention="flat") for side in ("right", "left")}
    rng = np.random.default_rng(0)
    pose = sample_hand_poses(rng, 1, layers["right"].hand_components.numpy(), layers["right"].hands_mean.numpy())[0]
    K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    smoother, raw, calm = PredictionSmoother(layers), [], []
    for _ in range(30):
        noisy = HandPrediction("right", np.array([np.pi, 0, 0]) + rng.normal(0, 0.03, 3), pose + rng.normal(0, 0.05, 45),
                               rng.normal(0, 0.1, 10), np.array([0, 0, 0.5]) + rng.normal(0, 0.004, 3), K,
                               np.zeros((778, 3)), np.zeros((21, 3)), np.zeros((21, 2)))
        raw.append(noisy)
        calm.append(smoother([noisy])[0])
    jitter = lambda fits, key: np.mean([np.linalg.norm(getattr(b, key) - getattr(a, key)) for a, b in zip(fits, fits[1:])])  # noqa: E731
    for key in ("hand_pose", "transl"):
        assert jitter(calm, key) < 0.5 * jitter(raw, key), key
    turn = lambda fits: np.mean([(Rotation.from_rotvec(b.global_orient) * Rotation.from_rotvec(a.global_orient).inv()).magnitude()  # noqa: E731
                                 for a, b in zip(fits, fits[1:])])  # axis-angle near pi flips sign: compare rotations
    assert turn(calm) < 0.5 * turn(raw)
    last = calm[-1]
    with torch.no_grad():
        again = layers["right"](*(torch.tensor(v, dtype=torch.float32)[None] for v in
                                  (last.global_orient, last.hand_pose, last.betas, last.transl)))
    np.testing.assert_allclose(last.vertices, again.vertices[0].numpy(), atol=1e-5)  # the hand is posed again
    np.testing.assert_allclose(last.keypoints_2d, project_points(last.joints, K), atol=1e-9)  # and projected
    assert np.abs(np.mean([f.hand_pose for f in calm[10:]], 0) - pose).mean() < 0.03
