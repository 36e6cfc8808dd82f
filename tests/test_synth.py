"""`hands synth`: AttentionHand-made datasets with exact labels, resuming after a kill, shards, the quality check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hands.cli.synth import main as synth
from hands.data.interhand.format import annotation_path
from hands.data.interhand.index import InterHandIndex
from hands.io.images import read_image
from hands.mano import build_mano
from hands.render import Meshes, PerspectiveCamera, Renderer, join_meshes
from tests.scenes import record_hand

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["image_width=64", "image_height=64", "cameras_per_capture=2", "frames_per_sequence=2", "sequences_per_capture=2",
         "jpeg_quality=95"]


def label_masks(root: Path):
    """(file name, mask (H, W) bool) of every annotated image, rendered from its MANO labels and camera."""
    index = InterHandIndex.open(root, "train")
    layers = {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}
    for i in range(len(index)):
        record = index.record(i)
        meshes = []
        for side, params in record.mano.items():
            if params is None:
                continue
            meshes.append(Meshes(record_hand(record, layers[side], side).vertices.float(), layers[side].faces))
        K = torch.as_tensor(record.camera.K, dtype=torch.float32)
        mask = Renderer((record.height, record.width)).render(join_meshes(meshes), PerspectiveCamera(K), ["mask"]).mask[0]
        yield record.image_path, mask.numpy()


def test_an_attentionhand_set_has_exact_labels(tiny_sd, tmp_path):
    _, folder, _ = tiny_sd
    out = tmp_path / "ah"
    synth(["--out", str(out), "--source", "attentionhand", "--weights", str(folder), "--image_size", "64", "--steps", "2",
           "--num", "16", "--device", "cpu", "--batch_size", "2", *SMALL[2:]])
    data = json.loads(annotation_path(out, "train", "data").read_text())
    assert len(data["images"]) == 16 and {i["width"] for i in data["images"]} == {64}
    samples = [json.loads(line) for line in (out / "generation.jsonl").read_text().splitlines()]
    assert [s["image_id"] for s in samples] == [i["id"] for i in data["images"]]
    assert all(s["source"] == "attentionhand" and "hand" in s["prompt"] and isinstance(s["seed"], int) for s in samples)
    assert len({s["seed"] for s in samples}) == 16 and len({s["prompt"] for s in samples}) > 1
    ious = []
    for image_path, mask in label_masks(out):
        assert read_image(image_path).shape == (64, 64, 3)
        file_name = image_path.relative_to(out / "images" / "train")
        condition = read_image(out / "conditions" / "train" / file_name.with_suffix(".png")).max(-1) > 0
        ious.append((mask & condition).sum() / max((mask | condition).sum(), 1))
    assert len(ious) == 16 and min(ious) >= 0.99, ious
    assert (out / "generation.yaml").is_file() and (out / "config.yaml").is_file()


def test_prompt_file_and_templates(tiny_sd, tmp_path):
    from hands.attentionhand.prompts import skin_word, synthetic_prompt

    assert [skin_word(np.full(3, v)) for v in (0.9, 0.6, 0.4, 0.1)] == ["light", "medium", "brown", "dark brown"]
    a = synthetic_prompt(np.random.default_rng(3), {"right": "fist"}, np.full(3, 0.6))
    assert a == synthetic_prompt(np.random.default_rng(3), {"right": "fist"}, np.full(3, 0.6))
    assert a.startswith("A photo of a person's right hand making a fist, medium skin, ")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a close-up of {hands} on a beach\n\nstudio photo of {hands}\n")
    _, folder, _ = tiny_sd
    out = tmp_path / "ah"
    synth(["--out", str(out), "--source", "attentionhand", "--weights", str(folder), "--image_size", "64", "--steps", "1",
           "--num", "4", "--device", "cpu", "--prompts", str(prompts), *SMALL[2:]])
    samples = [json.loads(line) for line in (out / "generation.jsonl").read_text().splitlines()]
    assert [s["prompt"].split(" of ")[0] for s in samples] == ["a close-up", "studio photo"] * 2
    assert all("{hands}" not in s["prompt"] and "hand" in s["prompt"] for s in samples)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="no prompt"):
        synth(["--out", str(tmp_path / "e"), "--source", "attentionhand", "--weights", str(folder), "--image_size", "64",
               "--prompts", str(tmp_path / "empty.txt"), "--device", "cpu"])


def test_batched_samples_equal_single_ones(tiny_sd):
    from hands.attentionhand.pipeline import SamplingConfig, sample_batch, sample_images

    parts, _, _ = tiny_sd
    meshes = [np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)]
    meshes[0][10:50, 20:40] = 200
    meshes[1][5:30, 5:60] = 120
    config = SamplingConfig(steps=2, image_size=64)
    images, records = sample_batch(parts, meshes, ["a right hand", "two hands"], [5, 9], config)
    for mesh, prompt, seed, image, record in zip(meshes, ["a right hand", "two hands"], [5, 9], images, records):
        single, single_record = sample_images(parts, mesh, prompt, SamplingConfig(steps=2, image_size=64, seed=seed, num_samples=1))
        assert np.abs(single[0].astype(int) - image).max() <= 1
        assert record["prompt"] == single_record["prompt"] and record["seed"] == seed
    assert not np.array_equal(images[0], images[1])


def _synth_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hands", "synth", "--out", str(out), "--device", "cpu", "--num", "24", *SMALL, *extra]


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_frames(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(_synth_command(straight), check=True, env=env, capture_output=True)
    process = subprocess.Popen(_synth_command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = killed / ".synthetic_progress.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not progress.is_file() or progress.read_text().count("\n") < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = [json.loads(line)["frame"] for line in progress.read_text().splitlines()[:3]]
    before = {f: (killed / "images" / "train" / json.loads(line)["images"][0]["file_name"]).stat().st_mtime_ns
              for f, line in zip(finished, progress.read_text().splitlines())}
    assert not annotation_path(killed, "train", "data").exists()
    result = subprocess.run(_synth_command(killed), check=True, env=env, capture_output=True, text=True)
    assert "resuming: " in result.stderr
    record = json.loads(annotation_path(killed, "train", "data").read_text())
    assert record == json.loads(annotation_path(straight, "train", "data").read_text())
    for frame, stamp in before.items():  # frames finished before the kill were not written again
        name = next(i["file_name"] for i in record["images"] if i["frame_idx"] == frame)
        assert (killed / "images" / "train" / name).stat().st_mtime_ns == stamp
    for kind in ("camera", "joint_3d", "MANO_NeuralAnnot"):
        assert annotation_path(killed, "train", kind).read_text() == annotation_path(straight, "train", kind).read_text()


def test_two_shards_write_one_dataset(tmp_path):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    synth(["--out", str(whole), "--device", "cpu", "--num", "16", *SMALL])
    first = synth(["--out", str(sharded), "--device", "cpu", "--num", "16", "--shard", "1/2", *SMALL])
    assert first[0].name.startswith(".synthetic_done.shard1of2") and not annotation_path(sharded, "train", "data").exists()
    from hands.config import ConfigError

    with pytest.raises(ConfigError, match="other picture settings"):  # the unfinished shard was made by the renderer
        synth(["--out", str(sharded), "--device", "cpu", "--num", "16", "--shard", "1/2", "--source", "attentionhand",
               "--weights", str(tmp_path / "absent"), *SMALL])
    written = synth(["--out", str(sharded), "--device", "cpu", "--num", "16", "--shard", "0/2", *SMALL])
    assert annotation_path(sharded, "train", "data") in written
    for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"):
        assert annotation_path(sharded, "train", kind).read_text() == annotation_path(whole, "train", kind).read_text()
    images = sorted(p.relative_to(sharded) for p in (sharded / "images").rglob("*.jpg"))
    assert images == sorted(p.relative_to(whole) for p in (whole / "images").rglob("*.jpg"))
    assert not list(sharded.glob(".synthetic_*"))


def test_keypoint_pck_against_hand_computed_values():
    from hands.fit.quality import keypoint_pck

    labelled = np.stack([np.linspace(0, 100, 21), np.linspace(0, 50, 21)], 1)  # box 100 x 50: threshold 10 px
    detected = labelled.copy()
    detected[:7] += [6.0, 0.0]  # within 10 px
    detected[7:12] += [0.0, 12.0]  # outside
    detected[12:] += [4.0, 4.0]  # 5.7 px: within
    visible = np.ones(21, bool)
    assert keypoint_pck(detected, labelled, visible, 0.1) == pytest.approx(16 / 21)
    visible[:7] = False  # the box of the visible labels: 65 x 32.5 px, threshold 6.5 px
    assert keypoint_pck(detected, labelled, visible, 0.1) == pytest.approx(9 / 14)
    visible[12:] = False
    assert keypoint_pck(detected, labelled, visible, 0.1) == 0.0
    assert np.isnan(keypoint_pck(detected, labelled, np.zeros(21, bool), 0.1))


@pytest.mark.slow
def test_the_quality_check_scores_renders_and_drops_inconsistent_samples(tmp_path):
    from hands.data.synthetic.generator import SyntheticConfig, SyntheticWriter
    from hands.fit.quality import FitQuality, QualityConfig

    config = SyntheticConfig(image_height=384, image_width=384, hand_type_weights=[1.0, 0.0, 0.0], camera_cone_deg=50.0,
                             orientation_range_deg=50.0, seed=2, cameras_per_capture=1)
    writer = SyntheticWriter(config, tmp_path / "unused")
    check = FitQuality(QualityConfig())
    scores = []
    try:
        for frame in range(6):
            capture = writer.capture(writer.frame_layout(frame)[0])
            scene = writer.sampler.sample(np.random.default_rng([2, 3, frame]), "right", capture["betas"])
            camera = capture["cameras"][0]
            image, _ = writer.render_view(scene, camera, np.random.default_rng(frame), capture["skin"])
            condition = writer.view_condition(scene, camera, frame, f"{frame}.jpg", False, capture["skin"])
            scores.append(check(image, condition))
            blank = check(np.full_like(image, 127), condition)
            assert blank["hands_found"] == 0 and blank["consistency"] == 0.0
    finally:
        check.close()
    found = [s for s in scores if s["hands_found"] == 1]
    assert found, scores
    assert max(s["pck"] for s in found) > 0.6 and min(s["pa_mpjpe_mm"] for s in found) < 20.0

    out = tmp_path / "filtered"
    synth(["--out", str(out), "--device", "cpu", "--num", "8", "--min_consistency", "0.5", "image_width=256",
           "image_height=256", "cameras_per_capture=2", "hand_type_weights=[1,0,0]", "camera_cone_deg=50",
           "orientation_range_deg=50"])
    samples = [json.loads(line) for line in (out / "generation.jsonl").read_text().splitlines()]
    data = json.loads(annotation_path(out, "train", "data").read_text())
    kept = [s["image_id"] for s in samples if s["kept"]]
    assert [i["id"] for i in data["images"]] == kept and [a["image_id"] for a in data["annotations"]] == kept
    assert all((s["quality"]["consistency"] >= 0.5) == s["kept"] for s in samples)
    for s in samples:
        assert (out / ("images" if s["kept"] else "rejected") / "train" / s["file_name"]).is_file()
