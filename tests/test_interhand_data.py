"""The synthetic InterHand-format generator and the InterHand2.6M index, checked against each other and MANO."""

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from hands.config import ConfigError
from hands.data.interhand.format import JOINT_SLICE, annotation_path
from hands.data.interhand.index import InterHandFormatError, InterHandIndex
from hands.data.synthetic.generator import PROGRESS_FILE, SyntheticConfig, SyntheticWriter
from hands.io.atomic import OutputExistsError
from hands.mano import build_mano
from hands.mano.joints import convert_joints
from scripts.make_synthetic import main as make_synthetic
from tests.conftest import SMALL_SYNTHETIC as SMALL
from tests.scenes import record_hand


def test_dataset_has_interhand_layout_and_contents(synthetic_root):
    for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"):
        assert annotation_path(synthetic_root, "train", kind).is_file()
    data = json.loads(annotation_path(synthetic_root, "train", "data").read_text())
    assert len(data["images"]) == 24 and len(data["annotations"]) == 24
    types = {a["hand_type"] for a in data["annotations"]}
    assert types <= {"right", "left", "interacting"} and len(types) >= 2
    first = data["images"][0]
    image = cv2.imread(str(synthetic_root / "images" / "train" / first["file_name"]))
    assert image.shape == (128, 96, 3)
    assert first["file_name"].startswith(f"Capture{first['capture']}/") and f"/cam{first['camera']}/image" in first["file_name"]
    assert (synthetic_root / "config.yaml").is_file() and not (synthetic_root / PROGRESS_FILE).exists()


def test_mano_fits_moved_into_each_camera_reproduce_the_joints(synthetic_root):
    index = InterHandIndex.open(synthetic_root, "train")
    layers = {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}
    checked = 0
    for i in range(len(index)):
        record = index.record(i)
        for side, params in record.mano.items():
            if params is None:
                assert not record.joint_valid[JOINT_SLICE[side]].any()
                continue
            out = record_hand(record, layers[side], side)
            joints_mm = convert_joints(out.joints[0].numpy(), "canonical", "interhand") * 1000
            np.testing.assert_allclose(joints_mm, record.camera_joints()[JOINT_SLICE[side]], atol=1e-3)
            checked += 1
        # valid joints project inside the image and inside the hands' box
        pixels = record.image_joints()[record.joint_valid]
        x, y, w, h = record.bbox
        assert ((pixels >= -1e-6) & (pixels <= [record.width - 1 + 1e-6, record.height - 1 + 1e-6])).all()
        if len(pixels) and w > 0:
            assert ((pixels >= [x - 3, y - 3]) & (pixels <= [x + w + 3, y + h + 3])).mean() > 0.9
    assert checked >= len(index)


def test_index_is_reused_and_rebuilt_when_sources_change(synthetic_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root / "annotations", root / "annotations")
    index = InterHandIndex.open(root, "train")
    meta = index.folder / "meta.json"
    stamp = meta.stat().st_mtime_ns
    assert InterHandIndex.open(root, "train").folder == index.folder and meta.stat().st_mtime_ns == stamp
    data_file = annotation_path(root, "train", "data")
    data = json.loads(data_file.read_text())
    data["annotations"] = data["annotations"][:5]
    data_file.write_text(json.dumps(data))
    assert len(InterHandIndex.open(root, "train")) == 5


def test_broken_annotations_are_clear_errors(synthetic_root, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(synthetic_root / "annotations", root / "annotations")
    data_file = annotation_path(root, "train", "data")
    data = json.loads(data_file.read_text())
    data["annotations"][3]["joint_valid"] = [1, 0]
    data_file.write_text(json.dumps(data))
    with pytest.raises(InterHandFormatError, match=r"annotation 3 joint_valid: expected 42"):
        InterHandIndex.open(root, "train")
    data_file.write_text(json.dumps(data)[:-200])
    with pytest.raises(InterHandFormatError, match="InterHand2.6M_train_data.json"):
        InterHandIndex.open(root, "train")
    annotation_path(root, "train", "camera").unlink()
    with pytest.raises(InterHandFormatError, match="InterHand2.6M_train_camera.json"):
        InterHandIndex.open(root, "train")


def test_generation_is_deterministic_and_resumes_after_an_interruption(tmp_path, monkeypatch):
    config = SyntheticConfig(**{**SMALL, "num_images": 12})
    SyntheticWriter(config, tmp_path / "straight").run()

    calls = {"n": 0}
    original = SyntheticWriter.frame_records

    def interrupted(self, frame, write_images=True):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, frame, write_images)

    monkeypatch.setattr(SyntheticWriter, "frame_records", interrupted)
    with pytest.raises(KeyboardInterrupt):
        SyntheticWriter(config, tmp_path / "resumed").run()
    assert (tmp_path / "resumed" / PROGRESS_FILE).exists()
    monkeypatch.setattr(SyntheticWriter, "frame_records", original)
    with pytest.raises(Exception, match="different config"):
        SyntheticWriter(SyntheticConfig(**{**SMALL, "num_images": 12, "seed": 5}), tmp_path / "resumed").run()
    SyntheticWriter(config, tmp_path / "resumed").run()
    for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"):
        assert annotation_path(tmp_path / "straight", "train", kind).read_text() == \
            annotation_path(tmp_path / "resumed", "train", kind).read_text()
    straight = sorted((tmp_path / "straight" / "images").rglob("*.jpg"))
    resumed = sorted((tmp_path / "resumed" / "images").rglob("*.jpg"))
    assert [p.relative_to(tmp_path / "straight") for p in straight] == [p.relative_to(tmp_path / "resumed") for p in resumed]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(straight, resumed))
    with pytest.raises(OutputExistsError):
        SyntheticWriter(config, tmp_path / "resumed").run()


def test_unknown_config_key_is_rejected(tmp_path):
    with pytest.raises(SystemExit):
        make_synthetic(["--output", str(tmp_path / "x"), "num_imgs=3"])


def test_capture_lighting_lights_every_image_of_a_subject_alike(tmp_path):
    writer = SyntheticWriter(SyntheticConfig(**{**SMALL, "lighting": "capture"}), tmp_path)
    capture = writer.capture(0)
    scene = writer.sampler.sample(np.random.default_rng(0), "right", capture["betas"], False)
    camera = capture["cameras"][0]
    renders = {}
    for style_name, style in (("capture", capture["style"]), ("image", None)):
        renders[style_name] = [writer.render_view(scene, camera, np.random.default_rng(seed), capture["skin"], style)
                               for seed in (1, 2)]
    (a, mask), (b, mask_b) = renders["capture"]
    assert mask.sum() > 50 and np.array_equal(mask, mask_b)
    assert np.array_equal(a[mask], b[mask]) and not np.array_equal(a[~mask], b[~mask])  # same hand, new background
    (c, _), (d, _) = renders["image"]
    assert np.abs(c[mask].astype(int) - d[mask].astype(int)).mean() > 2
    assert writer.capture(1)["style"] != capture["style"]
    with pytest.raises(ConfigError, match="lighting"):
        SyntheticWriter(SyntheticConfig(**{**SMALL, "lighting": "frame"}), tmp_path / "x")
