"""The ACR demo end to end (folder and image modes) with a small random model saved like a train.py checkpoint."""

import json

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from demo import main as demo
from hands.prediction import load_predictions


@pytest.fixture(scope="module")
def checkpoint(tiny_acr_checkpoint):
    return tiny_acr_checkpoint


@pytest.fixture(scope="module")
def frames(synthetic_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for i, path in enumerate(sorted((synthetic_root / "images").rglob("*.jpg"))[:3]):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.imread(str(path)))
    return folder


def test_folder_mode_writes_everything(checkpoint, frames, tmp_path):
    out = tmp_path / "out"
    demo(["--demo_mode", "folder", "--inputs", str(frames), "--out", str(out), "--checkpoint", str(checkpoint),
          "--threshold=-1e9", "-t", "--save_mesh", "--device", "cpu"])
    summary = json.loads((out / "summary.json").read_text())
    assert [f["frame"] for f in summary["frames"]] == ["0", "1", "2"]
    assert (out / f"{frames.name}_output.mp4").stat().st_size > 0
    for frame in summary["frames"]:
        image = cv2.imread(str(out / f"{frame['frame']}.jpg"))
        assert image.shape == (128, 96, 3)
        arrays = np.load(out / f"{frame['frame']}.npz")
        predictions = load_predictions(out / f"{frame['frame']}.npz")
        assert [p.side for p in predictions] == [h["side"] for h in frame["hands"]]
        assert all(h["reprojection_px"] is None and len(h["keypoints_2d_bbox"]) == 4 for h in frame["hands"])
        for hand in frame["hands"]:
            side = hand["side"]
            assert arrays[f"{side}_vertices"].shape == (778, 3) and arrays[f"{side}_hand_pose"].shape == (45,)
            assert (out / f"{frame['frame']}_{side}.obj").is_file()
    assert any(frame["hands"] for frame in summary["frames"])
    config = OmegaConf.load(out / "config.yaml")
    assert config.method == "acr" and config.acr.temporal and config.run.save_mesh
    with pytest.raises(SystemExit):  # refuses to replace the previous run
        demo(["--demo_mode", "folder", "--inputs", str(frames), "--out", str(out), "--checkpoint", str(checkpoint)])


def test_image_mode_and_missing_inputs(checkpoint, frames, tmp_path):
    out = tmp_path / "single"
    demo(["--demo_mode", "image", "--inputs", str(frames / "0.jpg"), "--out", str(out), "--checkpoint", str(checkpoint)])
    assert (out / "0.jpg").is_file() and (out / "summary.json").is_file()
    with pytest.raises(SystemExit, match="wild.pkl"):
        demo(["--demo_mode", "image", "--inputs", str(frames / "0.jpg"), "--out", str(tmp_path / "x"),
              "--checkpoint", str(tmp_path / "wild.pkl")])
    with pytest.raises(SystemExit):
        demo(["--demo_mode", "video", "--inputs", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "y"),
              "--checkpoint", str(checkpoint)])


def test_eval_script_reports_both_protocols(checkpoint, synthetic_root, tmp_path):
    from scripts.eval_acr import main as evaluate

    results = evaluate(["--root", str(synthetic_root), "--split", "train", "--checkpoint", str(checkpoint), "--size", "128",
                        "--threshold=-1e9", "--device", "cpu", "--limit", "12", "--output", str(tmp_path / "eval.json")])
    assert results["images"] == 12
    assert np.isfinite(results["internet_mpjpe_all"]) and results["internet_mpjpe_all"] > 0
    assert 0 <= results["internet_handedness_accuracy"] <= 1 and 0 <= results["phantom_hand_rate"] <= 1
    assert json.loads((tmp_path / "eval.json").read_text())["images"] == 12
