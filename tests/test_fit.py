"""hands.fit: the HandLandmarker bundle, MANO fitting to keypoints (against known hands), and real photos."""

import json
import zipfile

import cv2
import numpy as np
import pytest
import torch

from hands.eval.alignment import procrustes_align
from hands.eval.metrics import pck_2d
from hands.fit.landmarker import BUNDLE_MEMBERS, HandDetector, LandmarkerUnavailableError, build_task_bundle, default_task_path
from hands.fit.mano_fit import FitConfig, fit_mano, project
from hands.geometry.pnp import solve_translation
from hands.io.atomic import OutputExistsError
from hands.mano import build_mano
from hands.mano.limits import clamp_to_limits, limit_excess, sample_hand_poses
from hands.ohta.oneshot import read_oneshot_annotation
from tests.conftest import fixture_path


def landmarker_path():
    path = default_task_path()
    if not path.is_file():
        pytest.skip(f"HandLandmarker bundle {path} missing: run `python scripts/setup_landmarker.py` (make setup does)")
    return path


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def pck(points: np.ndarray, labels: np.ndarray, fraction: float) -> float:
    """Share of keypoints (21, 2) within `fraction` of the labels' box size."""
    return float(pck_2d(torch.as_tensor(points)[None], torch.as_tensor(labels, dtype=torch.float64)[None], fraction)[0])


# --- the model bundle ----------------------------------------------------------------------------------------------

def test_task_bundle_packs_the_wheels_two_models(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.21-cp311-none-any.whl"
    payloads = {source: f"model {i}".encode() * 100 for i, source in enumerate(BUNDLE_MEMBERS.values())}
    with zipfile.ZipFile(wheel, "w") as archive:
        for source, data in payloads.items():
            archive.writestr(source, data)
        archive.writestr("mediapipe/other.py", b"x")
    bundle = build_task_bundle(wheel, tmp_path / "hand_landmarker.task")
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == sorted(BUNDLE_MEMBERS)
        for name, source in BUNDLE_MEMBERS.items():
            assert archive.read(name) == payloads[source]
    with pytest.raises(OutputExistsError):
        build_task_bundle(wheel, bundle)
    broken = tmp_path / "broken.whl"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr(list(BUNDLE_MEMBERS.values())[0], b"x")
    with pytest.raises(LandmarkerUnavailableError, match="hand_landmark_full.tflite"):
        build_task_bundle(broken, tmp_path / "b.task")
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(LandmarkerUnavailableError, match="junk.whl"):
        build_task_bundle(tmp_path / "junk.whl", tmp_path / "c.task")


def test_missing_bundle_says_how_to_make_it(tmp_path):
    with pytest.raises(LandmarkerUnavailableError, match="hands prepare landmarker"):
        HandDetector(tmp_path / "hand_landmarker.task")


# --- fitting against known hands -----------------------------------------------------------------------------------

def known_hands(layer, count: int, seed: int = 0):
    """Random plausible hands 0.4-0.6 m in front of a 640x480 camera: parameters, joints, keypoints, K."""
    rng = np.random.default_rng(seed)
    pose = sample_hand_poses(rng, count, layer.hand_components.numpy(), layer.hands_mean.numpy(), layer.side)
    orient = rng.normal(size=(count, 3)) * 0.6 + np.array([np.pi, 0, 0])
    betas = rng.normal(size=(count, 10)) * 0.8
    transl = np.stack([rng.uniform(-0.05, 0.05, count), rng.uniform(-0.05, 0.05, count), rng.uniform(0.4, 0.6, count)], 1)
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        out = layer(as_t(orient), as_t(pose), as_t(betas), as_t(transl))
    K = torch.tensor([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]]).expand(count, 3, 3)
    return out, project(out.joints, K), K


def test_translation_solve_recovers_a_known_shift():
    joints = torch.randn(3, 21, 3, dtype=torch.float64) * 0.05
    shift = torch.tensor([[0.02, -0.03, 0.5], [0.0, 0.1, 0.8], [-0.1, 0.0, 0.3]], dtype=torch.float64)
    K = torch.tensor([[500.0, 0, 320], [0, 520.0, 240], [0, 0, 1]], dtype=torch.float64).expand(3, 3, 3)
    solved = solve_translation(joints, project(joints + shift[:, None], K), K)
    assert torch.allclose(solved, shift, atol=1e-9)


def test_soft_joint_limits_are_zero_inside_and_grow_outside():
    rng = np.random.default_rng(1)
    wild = rng.normal(size=(4, 45))
    for side in ("right", "left"):
        assert limit_excess(torch.tensor(clamp_to_limits(wild, side)), side).abs().max() < 1e-9
        assert (limit_excess(torch.tensor(wild), side).sum((-1, -2)) > 0.1).all()


@pytest.mark.parametrize("side", ["right", "left"])
def test_fit_recovers_known_hands_from_keypoints_and_landmarks(side):
    layer = build_mano(side, pose_convention="flat")
    truth, keypoints, K = known_hands(layer, 4, seed=2)
    landmarks = truth.joints - truth.joints.mean(1, keepdim=True) + 0.3  # metric, about an arbitrary centre
    fits = fit_mano(layer, keypoints, K, landmarks)
    for i, fit in enumerate(fits):
        assert (fit["projected"] - keypoints[i]).norm(dim=-1).mean() < 1.5  # pixels
        aligned = procrustes_align(fit["joints"][None].float(), truth.joints[i][None])[0]
        assert (aligned - truth.joints[i]).norm(dim=-1).mean() < 0.004  # meters: the articulation and shape
        relative = lambda x: x - x[:1]  # noqa: E731
        assert (relative(fit["vertices"]) - relative(truth.vertices[i])).norm(dim=-1).mean() < 0.012
        # Depth: scale and distance trade off through the shape prior; within 5 % of the distance.
        assert abs(float(fit["joints"][:, 2].mean() - truth.joints[i][:, 2].mean())) < 0.05 * float(truth.joints[i][:, 2].mean())


def test_fit_from_keypoints_alone_reprojects_them():
    layer = build_mano("right", pose_convention="flat")
    truth, keypoints, K = known_hands(layer, 3, seed=3)
    fits = fit_mano(layer, keypoints, K, None, FitConfig(steps=200))
    errors = [float((f["projected"] - keypoints[i]).norm(dim=-1).mean()) for i, f in enumerate(fits)]
    assert max(errors) < 3.0, errors


def test_sequence_fit_is_smoother_than_frame_by_frame():
    layer = build_mano("right", pose_convention="flat")
    T = 8
    truth, keypoints, K = known_hands(layer, 1, seed=4)
    drift = torch.linspace(0, 30, T)[:, None, None] * torch.tensor([1.0, 0.5])  # the hand moves right and down
    clean = keypoints.expand(T, 21, 2) + drift
    noisy = clean + torch.randn(T, 21, 2, generator=torch.Generator().manual_seed(0)) * 4.0
    config = FitConfig(steps=150, landmark_weight=0.0, temporal_weight=5.0)
    alone = fit_mano(layer, noisy, K.expand(T, 3, 3), None, config)
    together = fit_mano(layer, noisy, K.expand(T, 3, 3), None, config, sequence=True)
    jitter = lambda fits: float(torch.stack([f["hand_pose"] for f in fits]).diff(dim=0).norm(dim=-1).mean())  # noqa: E731
    assert jitter(together) < 0.5 * jitter(alone)
    assert all(torch.equal(f["betas"], together[0]["betas"]) for f in together)
    error = lambda fits: float(torch.stack([f["projected"] for f in fits]).sub(clean).norm(dim=-1).mean())  # noqa: E731
    assert error(together) < error(alone) + 0.5  # smoothing does not trade away accuracy against the clean track


# --- real photos ---------------------------------------------------------------------------------------------------

def test_detector_and_fit_on_the_labelled_in_the_wild_photo():
    landmarker = landmarker_path()
    root = fixture_path("ohta", "in_the_wild")
    labels = read_oneshot_annotation(root / "anno" / "02023.pkl").joint_img[:, :2]  # canonical order, 256² pixels
    image = read_rgb(root / "img" / "02023.jpg")
    from hands.fit.pipeline import HandFitter

    fitter = HandFitter(HandDetector(landmarker))
    try:
        hands = fitter.detector.detect(image)
        assert len(hands) == 1 and hands[0].side == "right"  # a right palm facing the camera
        assert pck(hands[0].keypoints, labels, 0.1) >= 0.95
        fits = fitter.fit_image(image)
        assert len(fits) == 1 and fits[0].side == "right"
        assert pck(fits[0].keypoints_2d, labels, 0.1) >= 0.95
        assert fits[0].reprojection_error < 5.0
        assert fits[0].transl[2] > 0.1 and np.isfinite(fits[0].vertices).all()
    finally:
        fitter.close()
    with HandDetector(landmarker, mirrored=True) as mirrored:  # a selfie preview of the same hand: still the right
        flipped = mirrored.detect(np.ascontiguousarray(image[:, ::-1]))
    assert [h.side for h in flipped] == ["right"]


def test_detector_finds_the_left_hand_in_magic_and_none_in_a_blank_image():
    with HandDetector(landmarker_path()) as detector:
        hands = detector.detect(read_rgb(fixture_path("acr", "magic.jpg")))
        assert [h.side for h in hands] == ["left"]  # the person's left arm reaches across the frame
        assert detector.detect(np.full((240, 320, 3), 127, np.uint8)) == []
        with pytest.raises(ValueError, match="uint8"):
            detector.detect(np.zeros((10, 10), np.float32))


# --- demo.py --demo_mode fit -----------------------------------------------------------------------------------------

def test_fit_demo_on_a_photo_and_a_folder_of_frames(tmp_path):
    landmarker = landmarker_path()
    photo = fixture_path("ohta", "in_the_wild", "img", "02023.jpg")
    from demo import main as demo

    out = demo(["--demo_mode", "fit", "--inputs", str(photo), "--out", str(tmp_path / "one"), "--landmarker", str(landmarker),
                "--save_mesh", "--device", "cpu"])
    arrays = np.load(out / "02023.npz")
    assert list(arrays["sides"]) == ["right"]
    assert arrays["right_vertices"].shape == (778, 3) and arrays["right_hand_pose"].shape == (45,)
    assert arrays["right_K"].shape == (3, 3) and (out / "02023_right.obj").is_file() and (out / "config.yaml").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"][0]["hands"][0]["reprojection_px"] < 5.0

    frames = tmp_path / "frames"
    frames.mkdir()
    image = cv2.imread(str(photo))
    for i in range(3):  # the hand drifting right, then an empty frame
        cv2.imwrite(str(frames / f"{i}.jpg"), np.roll(image, 4 * i, axis=1))
    cv2.imwrite(str(frames / "3.jpg"), np.full_like(image, 127))
    out = demo(["--mode", "fit", "--inputs", str(frames), "--out", str(tmp_path / "seq"), "-t", "--landmarker", str(landmarker)])
    summary = json.loads((out / "summary.json").read_text())
    assert [len(f["hands"]) for f in summary["frames"]] == [1, 1, 1, 0]
    betas = [np.load(out / f"{i}.npz")["right_betas"] for i in range(3)]
    assert all(np.array_equal(b, betas[0]) for b in betas)  # one hand over the sequence: one shape
    x = [np.load(out / f"{i}.npz")["right_transl"][0] for i in range(3)]
    assert x[0] < x[1] < x[2]
    assert (out / "frames_fit.mp4").stat().st_size > 0
    with pytest.raises(SystemExit):  # refuses to replace the previous run
        demo(["--mode", "fit", "--inputs", str(frames), "--out", str(tmp_path / "seq"), "--landmarker", str(landmarker)])
    with pytest.raises(SystemExit):
        demo(["--mode", "fit", "--inputs", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "x"),
              "--landmarker", str(landmarker)])


def test_a_silhouette_improves_the_fit_of_noisy_keypoints():
    from hands.render import Meshes, PerspectiveCamera, Renderer

    layer = build_mano("right", pose_convention="flat")
    truth, keypoints, K = known_hands(layer, 3, seed=5)
    renderer = Renderer((480, 640))
    draw = lambda vertices, k: renderer.render(Meshes(vertices.float()[None], layer.faces), PerspectiveCamera(K[k]), ["mask"]).mask[0]  # noqa: E731
    masks = torch.stack([draw(truth.vertices[k], k) for k in range(3)])
    noisy = keypoints + torch.randn(keypoints.shape, generator=torch.Generator().manual_seed(1)) * 8.0
    config = FitConfig(landmark_weight=0.0)
    plain, guided = fit_mano(layer, noisy, K, None, config), fit_mano(layer, noisy, K, None, config, masks=masks)
    hard_iou = lambda fit, k: float((draw(fit["vertices"], k) & masks[k]).sum() / (draw(fit["vertices"], k) | masks[k]).sum())  # noqa: E731
    plain_iou, guided_iou = [hard_iou(plain[k], k) for k in range(3)], [hard_iou(guided[k], k) for k in range(3)]
    assert min(guided_iou) > 0.85 and np.mean(guided_iou) > np.mean(plain_iou) + 0.05, (plain_iou, guided_iou)
    with pytest.raises(ValueError, match="masks"):
        fit_mano(layer, noisy, K, None, config, masks=masks[:1])


def test_fit_demo_on_a_video(tmp_path):
    from demo import main as demo
    from hands.io.video import VideoFileWriter

    landmarker = landmarker_path()
    image = read_rgb(fixture_path("ohta", "in_the_wild", "img", "02023.jpg"))
    with VideoFileWriter(tmp_path / "clip.mp4", fps=10) as writer:
        for t in range(4):
            writer.write(np.roll(image, 3 * t, axis=1))
    out = demo(["--demo_mode", "fit", "--inputs", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"), "-t",
                "--chunk", "3", "--landmarker", str(landmarker)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "video" and [len(f["hands"]) for f in summary["frames"]] == [1, 1, 1, 1]
    assert all(f["hands"][0]["side"] == "right" for f in summary["frames"])
    assert (out / "clip_fit.mp4").stat().st_size > 0
    live = demo(["--demo_mode", "fit", "--inputs", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "live"), "-t",
                 "--chunk", "1", "--landmarker", str(landmarker)])  # frame by frame, One-Euro smoothed (as a webcam)
    betas = [np.load(live / f"{t:06d}.npz")["right_betas"] for t in range(4)]
    assert not np.array_equal(betas[0], betas[1]) and np.abs(betas[1] - betas[0]).max() < 1.0
    with pytest.raises(SystemExit, match="camera 7"):  # no --inputs: the webcam, which this machine lacks
        demo(["--demo_mode", "fit", "--cam_id", "7", "--out", str(tmp_path / "cam"), "--landmarker", str(landmarker)])
