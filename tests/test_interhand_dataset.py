"""The InterHand2.6M Dataset: crops, augmentation and flips keep every label consistent with the image."""

import numpy as np
import pytest
import torch

from hands.data.crops import AugmentConfig, CropParams, expand_bbox
from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset, mano_vector_split
from hands.io.images import ImageReadError
from hands.mano import build_mano
from hands.mano.joints import convert_joints


@pytest.fixture(scope="module")
def layers():
    return {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}


def dataset(root, layers, **overrides):
    config = InterHandDataConfig(root=str(root), image_size=64, **overrides)
    return InterHandDataset(config, AugmentConfig(rotation_prob=1.0, flip_prob=0.5), layers, seed=3)


def test_crop_camera_reproduces_the_affine_map():
    rng = np.random.default_rng(0)
    K = np.array([[500.0, 0, 160], [0, 500.0, 250], [0, 0, 1]])
    points = rng.normal(0, 0.05, (20, 3)) + [0, 0, 0.6]
    pixels = points[:, :2] / points[:, 2:] * 500 + [160, 250]
    for flip in (False, True):
        crop = CropParams(np.array([170.0, 240.0]), 120.0, 0.4, (64, 64), flip)
        moved = points @ crop.camera_rotation().T
        K2 = crop.intrinsics(K)
        projected = moved[:, :2] / moved[:, 2:] * K2[0, 0] + K2[:2, 2]
        expected = pixels @ crop.affine()[:, :2].T + crop.affine()[:, 2]
        np.testing.assert_allclose(projected, expected, atol=1e-9)
    np.testing.assert_allclose(expand_bbox([10, 20, 40, 10], 1.0, 1.0), [10, 5, 40, 40])


@pytest.mark.parametrize("augment", [False, True])
def test_labels_agree_with_each_other_in_the_crop(synthetic_root, layers, augment):
    data = dataset(synthetic_root, layers, augment=augment)
    assert len(data) > 0
    flips = 0
    for i in range(len(data)):
        sample = data[i]
        assert sample["image"].shape == (3, 64, 64) and 0 <= sample["image"].min() and sample["image"].max() <= 1
        K, joints = sample["K"].double(), sample["joints_cam"].double()
        projected = joints[:, :2] / joints[:, 2:] * K[0, 0] + K[:2, 2]
        valid = sample["joint_valid"]
        torch.testing.assert_close(projected[valid], sample["joints_2d"].double()[valid], atol=1e-3, rtol=0)
        for s, side in enumerate(("right", "left")):
            hand = slice(0, 21) if side == "right" else slice(21, 42)
            if not sample[f"mano_valid_{side}"]:
                continue
            assert sample["hand_type"][s] == 1
            params = {k: v.double()[None] for k, v in mano_vector_split(sample[f"mano_{side}"]).items()}
            out = layers[side](params["global_orient"], params["hand_pose"], params["betas"], params["transl"])
            joints_ih = convert_joints(out.joints[0], "canonical", "interhand")
            # The middle tip is vertex 444 on right hands but 445 on left ones, so a mirrored fit's tip moves a little.
            others = [j for j in range(21) if j != 8]
            torch.testing.assert_close(joints_ih[others], joints[hand][others], atol=2e-4, rtol=0)  # float32 storage
            torch.testing.assert_close(joints_ih[8], joints[hand][8], atol=3e-3, rtol=0)
        flips += int(sample["flipped"])
    if augment:
        assert 0 < flips < len(data)


def test_filters_and_missing_images(synthetic_root, layers, tmp_path):
    everything = dataset(synthetic_root, layers)
    only_right = dataset(synthetic_root, layers, hand_types=["right"])
    assert 0 < len(only_right) < len(everything)
    assert all(only_right[i]["hand_type"].tolist() == [1.0, 0.0] for i in range(len(only_right)))
    record = everything.index.record(int(everything.rows[0]))
    moved = record.image_path.with_suffix(".bak")
    record.image_path.rename(moved)
    try:
        with pytest.raises(ImageReadError, match=str(record.image_path.name)):
            everything[0]
        record.image_path.write_bytes(b"not a jpeg")
        with pytest.raises(ImageReadError, match="could not decode"):
            everything[0]
    finally:
        record.image_path.unlink(missing_ok=True)
        moved.rename(record.image_path)


def test_batches_collate(synthetic_root, layers):
    loader = torch.utils.data.DataLoader(dataset(synthetic_root, layers, augment=True), batch_size=4)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["mano_right"].shape == (4, 61)
