"""Method-specific inputs: prompts, OHTA one-shot pickles (against the real fixtures) and AttentionHand modalities."""

import json
import pickle

import cv2
import numpy as np
import pytest
import torch

from hands.attentionhand.interhand_inputs import export_attentionhand
from hands.attentionhand.prompts import describe_pose, hand_prompt
from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset
from hands.io.safe_pickle import load_pickle
from hands.mano import build_mano
from hands.mano.joints import POSE_MIRROR, convert_joints
from hands.mano.poses import named_hand_pose
from hands.ohta.interhand_inputs import export_ohta
from hands.ohta.oneshot import GT_ORDER_FROM_MANO, OneShotFormatError, read_oneshot_annotation, write_oneshot_annotation
from tests.conftest import fixture_path


@pytest.fixture(scope="module")
def layers():
    return {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}


def test_pose_descriptions():
    expected = {"rest": "open", "spread": "open", "fist": "fist", "point": "pointing", "relaxed": "holding"}
    for name, description in expected.items():
        pose = named_hand_pose(name)
        assert describe_pose(pose) == description
        assert describe_pose((pose.reshape(15, 3) * POSE_MIRROR).reshape(45), "left") == description
    joints = np.zeros((21, 3))
    joints[8] = [0.01, 0.0, 0.0]  # thumb tip (4) and index tip (8) 1 cm apart
    assert describe_pose(named_hand_pose("relaxed"), joints=joints) == "pinching"
    assert hand_prompt({"left": "fist"}) == "A photo of a person's left hand making a fist."
    assert "right hand pointing" in hand_prompt({"right": "pointing", "left": "open"})


@pytest.mark.parametrize("name", ["in_the_wild/anno/02023.pkl", "editing/anno/rainbow.pkl"])
def test_ohta_fixture_pickles_read_and_round_trip(name, tmp_path):
    path = fixture_path("ohta", *name.split("/"))
    annotation = read_oneshot_annotation(path)
    assert annotation.intrinsics.shape == (3, 3) and annotation.poses.shape == (48,) and annotation.img_type == "rgb"
    middle_mcp = 9 if "in_the_wild" in name else 4  # HandMesh exports use the OpenPose order, InterHand ones MANO's
    assert np.allclose(annotation.joints[middle_mcp], 0)
    copy = write_oneshot_annotation(annotation, tmp_path / "copy.pkl")
    again = read_oneshot_annotation(copy)
    for field in ("intrinsics", "poses", "shape", "Th", "joints", "joint_cam", "bbox_min", "bbox2d"):
        np.testing.assert_allclose(getattr(again, field), getattr(annotation, field), rtol=1e-6, atol=1e-6)
    # what we write has the structure of the InterHand-derived fixture
    ours = pickle.loads(copy.read_bytes())
    reference = load_pickle(fixture_path("ohta", "editing", "anno", "rainbow.pkl"))
    assert len(ours) == 4 and set(ours[0]) == set(reference[0]) and set(ours[1]) == set(reference[1])
    for key, value in reference[1].items():
        if hasattr(value, "shape"):
            assert ours[1][key].shape == value.shape, key


def test_malformed_ohta_pickles_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(OneShotFormatError, match="bad.pkl"):
        read_oneshot_annotation(bad)
    bad.write_bytes(pickle.dumps([{"intrinsics": np.eye(3)}, {"poses": np.zeros(5)}, np.zeros(4), "rgb"]))
    with pytest.raises(OneShotFormatError, match="bbox"):
        read_oneshot_annotation(bad)


def test_ohta_export_is_consistent(synthetic_root, layers, tmp_path):
    config = InterHandDataConfig(root=str(synthetic_root), image_size=128, bbox_scale=1.5, require_mano=True,
                                 hand_types=["right", "left"], mirror_left=True)
    written = export_ohta(InterHandDataset(config, mano_layers=layers), tmp_path / "ohta")
    assert len(written) >= 3
    for path in written:
        a = read_oneshot_annotation(path)
        out = layers["right"](torch.tensor(a.poses[:3])[None], torch.tensor(a.poses[3:])[None], torch.tensor(a.shape)[None])
        joints = convert_joints(out.joints[0].numpy(), "canonical", "mano") * 10
        np.testing.assert_allclose((joints - joints[4] + a.Th)[list(GT_ORDER_FROM_MANO)], a.joint_cam, atol=1e-4)
        projected = a.joint_cam[:, :2] / a.joint_cam[:, 2:] * np.diag(a.intrinsics)[:2] + a.intrinsics[:2, 2]
        np.testing.assert_allclose(projected, a.joint_img, atol=1e-3)
        # mask against an independent rendering: OHTA's own way, filling every projected triangle
        vertices = (out.vertices[0].numpy() * 10 - joints[4] + a.Th)
        uv = vertices[:, :2] / vertices[:, 2:] * np.diag(a.intrinsics)[:2] + a.intrinsics[:2, 2]
        filled = np.zeros((128, 128), np.uint8)
        for face in layers["right"].faces.numpy():
            cv2.fillConvexPoly(filled, np.round(uv[face] * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
        mask = cv2.imread(str(path.parent.parent / "mask" / path.with_suffix(".png").name), cv2.IMREAD_GRAYSCALE) > 150
        filled = filled > 0  # fillConvexPoly also takes pixels the edges merely touch: agree up to one pixel
        assert (mask & filled).sum() / mask.sum() > 0.98
        assert (filled & ~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)).sum() < 0.02 * filled.sum()
        assert cv2.imread(str(path.parent.parent / "img" / path.with_suffix(".jpg").name)).shape == (128, 128, 3)


def test_attentionhand_export(synthetic_root, layers, tmp_path):
    config = InterHandDataConfig(root=str(synthetic_root), image_size=96, bbox_scale=2.0, require_mano=True)
    output = tmp_path / "data"
    manifest = export_attentionhand(InterHandDataset(config, mano_layers=layers), output, limit=8)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(lines) == 8
    for entry in lines:
        assert set(entry) == {"mesh", "rgb", "text", "bbox"} and entry["mesh"].startswith("data/mesh/")
        mesh = cv2.imread(str(tmp_path / entry["mesh"]))
        assert mesh.shape == (96, 96, 3) and cv2.imread(str(tmp_path / entry["rgb"])).shape == (96, 96, 3)
        prompt = (tmp_path / entry["text"]).read_text().splitlines()[0]
        assert prompt.startswith("A photo of") and "hand" in prompt
        # AttentionHand derives the hand box from the mesh render (grey > 127): it must agree with ours
        ys, xs = np.nonzero(cv2.cvtColor(mesh, cv2.COLOR_BGR2GRAY) > 127)
        x, y, w, h = entry["bbox"]
        assert abs(xs.min() - x) <= 2 and abs(ys.min() - y) <= 2 and abs(xs.max() - (x + w - 1)) <= 2
    with pytest.raises(FileExistsError):
        export_attentionhand(InterHandDataset(config, mano_layers=layers), output, limit=2)


def test_weak_perspective_fit_and_centre_maps():
    from hands.acr.targets import centre_heatmap, centre_radius, fit_weak_perspective, separate_centres

    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.05, (21, 3))
    exact = 4.0 * joints[:, :2] + [0.1, -0.2]
    np.testing.assert_allclose(fit_weak_perspective(joints, exact), [4.0, 0.1, -0.2], atol=1e-12)
    noisy = exact + rng.normal(0, 0.01, exact.shape)
    X = np.c_[joints[:, :2].reshape(-1), np.tile([[1, 0], [0, 1]], (21, 1))]  # interleaved rows (x, y) per joint
    expected = np.linalg.solve(X.T @ X, X.T @ noisy.reshape(-1))  # normal equations
    np.testing.assert_allclose(fit_weak_perspective(joints, noisy), expected, atol=1e-10)

    assert centre_radius(np.array([0.2, 0.3])) == int(np.hypot(0.1, 0.15) * 4 + 2)
    heatmap = centre_heatmap(np.array([0.0, 0.0]), radius=3)
    sigma = 7 / 6
    assert heatmap[32, 32] == 1.0 and np.isclose(heatmap[32, 33], np.exp(-1 / (2 * sigma ** 2)))
    assert heatmap[32, 36] == 0 and heatmap.sum() < 2 * np.pi * sigma ** 2 + 1
    assert centre_heatmap(np.array([1.5, 0.0]), 3).sum() == 0
    close = separate_centres(np.array([[0.0, 0.0], [0.05, 0.0]]), np.array([3, 3]))
    assert close[0, 0] < 0 < 0.05 < close[1, 0] and np.isclose(close[0, 0] + close[1, 0], 0.05)
    np.testing.assert_array_equal(separate_centres(np.array([[-0.5, 0], [0.5, 0]]), np.array([3, 3])), [[-0.5, 0], [0.5, 0]])


def test_acr_export(synthetic_root, layers, tmp_path):
    from hands.acr.interhand_inputs import export_acr

    config = InterHandDataConfig(root=str(synthetic_root), image_size=128, require_mano=True, full_image=True)
    index = np.load(export_acr(InterHandDataset(config, mano_layers=layers), tmp_path / "acr"))
    assert len(index["name"]) >= 20 and index["present"].any(axis=0).all()  # right and left hands both occur
    for i, name in enumerate(index["name"]):
        parts = cv2.imread(str(tmp_path / "acr" / "parts" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert parts.shape == (256, 256) and parts.max() <= 32
        assert ((parts >= 1) & (parts <= 16)).any() == bool(index["present"][i, 0])
        assert (parts >= 17).any() == bool(index["present"][i, 1])
        for s, hand in enumerate((slice(0, 21), slice(21, 42))):
            valid = index["joint_valid"][i, hand]
            if not index["present"][i, s] or valid.sum() < 5:
                continue
            scale, tx, ty = index["camera"][i, s]
            joints = index["joints_3d"][i, hand] - index["joints_3d"][i, hand][11]
            residual = np.abs(scale * joints[:, :2] + [tx, ty] - index["joints_2d"][i, hand])[valid]
            assert np.median(residual) < 0.05 and scale > 0  # weak perspective explains the (close-range) perspective view
            cell = ((index["joints_2d"][i, hand][valid] + 1) * 128 - 0.5).round().astype(int).clip(0, 255)
            labelled = cv2.dilate(parts, np.ones((5, 5), np.uint8))[cell[:, 1], cell[:, 0]] > 0
            assert labelled.mean() > 0.8  # the hand's joints fall on its labelled pixels
