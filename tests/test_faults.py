"""Faults a careless or unlucky user meets (issue 17): concurrent first opens of a dataset, incomplete indexes,
outputs that would clobber inputs or earlier runs, killed checkpoint saves, permissions, bad numbers."""

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hands.data.interhand.index import InterHandIndex, _sources, index_is_complete, index_lock, read_only_key

ROOT = Path(__file__).resolve().parents[1]


def _open_and_read(root: str, queue) -> None:
    try:
        index = InterHandIndex.open(root, "train")
        queue.put(("ok", [index.record(i).annotation_id for i in range(len(index))]))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        queue.put(("error", repr(error)))


def test_concurrent_first_opens_of_a_dataset_share_one_complete_index(synthetic_root, tmp_path):
    root = tmp_path / "fresh"
    shutil.copytree(synthetic_root / "annotations", root / "annotations")
    folder = root / "annotations" / "train" / "hands_index"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with index_lock(folder):  # hold the lock so that all four start their open at once, then race
        workers = [context.Process(target=_open_and_read, args=(str(root), queue)) for _ in range(4)]
        for worker in workers:
            worker.start()
    results = [queue.get(timeout=240) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(kind == "ok" for kind, _ in results), results
    assert len({tuple(ids) for _, ids in results}) == 1 and len(results[0][1]) == 24
    assert index_is_complete(folder, _sources(root, "train"))
    assert not [p.name for p in folder.parent.iterdir() if ".building-" in p.name or ".old-" in p.name]


def test_an_incomplete_index_is_rebuilt_not_trusted(synthetic_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root / "annotations", root / "annotations")
    index = InterHandIndex.open(root, "train")
    expected = [index.record(i).annotation_id for i in range(len(index))]
    victim = next(index.folder.glob("annotation.*.bin"))
    victim.unlink()  # what a build killed or raced before its commit used to leave behind, with matching metadata
    again = InterHandIndex.open(root, "train")
    assert victim.is_file() and [again.record(i).annotation_id for i in range(len(again))] == expected


def test_the_cache_of_a_read_only_dataset_has_one_name_in_every_process(tmp_path):
    code = f"from hands.data.interhand.index import read_only_key; print(read_only_key({str(tmp_path)!r}))"
    names = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
             for _ in range(3)}
    assert names == {read_only_key(tmp_path)}


# --- the frame runner: inputs and earlier runs are never clobbered, bad frames are skipped and reported ---------

def frames_folder(synthetic_root, folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i, path in enumerate(sorted((synthetic_root / "images").rglob("*.jpg"))[:count]):
        shutil.copy(path, folder / f"{i}.jpg")
    return folder


def reconstruct(checkpoint, *argv):
    from hands.cli.reconstruct import main

    return main(["--checkpoint", str(checkpoint), "--threshold=-1e9", "--device", "cpu", *map(str, argv)])


def test_the_runner_refuses_to_write_into_its_inputs(tiny_acr_checkpoint, synthetic_root, tmp_path):
    frames = frames_folder(synthetic_root, tmp_path / "frames")
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    for inputs in (frames, frames / "0.jpg"):
        with pytest.raises(SystemExit, match="holds the inputs"):
            reconstruct(tiny_acr_checkpoint, "--inputs", inputs, "--out", frames, "--overwrite")
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before


def test_an_earlier_run_is_kept_or_replaced_whole(tiny_acr_checkpoint, synthetic_root, tmp_path):
    frames = frames_folder(synthetic_root, tmp_path / "frames")
    out = tmp_path / "out"
    reconstruct(tiny_acr_checkpoint, "--inputs", frames, "--out", out, "--save_mesh")
    (out / "summary.json").unlink()
    (out / "config.yaml").unlink()  # only per-frame files are left: still an earlier run
    stamp = (out / "0.jpg").stat().st_mtime_ns
    with pytest.raises(SystemExit, match="holds an earlier run"):
        reconstruct(tiny_acr_checkpoint, "--inputs", frames, "--out", out)
    assert (out / "0.jpg").stat().st_mtime_ns == stamp
    (frames / "2.jpg").unlink()
    reconstruct(tiny_acr_checkpoint, "--inputs", frames, "--out", out, "--overwrite")
    names = {p.name for p in out.iterdir()}
    assert {"0.jpg", "1.jpg", "0.npz", "1.npz", "summary.json", "config.yaml"} <= names
    assert not names & {"2.jpg", "2.npz"} and not any(n.endswith(".obj") for n in names)  # the earlier run's extras are gone


def test_bad_frames_are_skipped_and_reported(tiny_acr_checkpoint, synthetic_root, tmp_path):
    frames = frames_folder(synthetic_root, tmp_path / "frames")
    data = (frames / "1.jpg").read_bytes()
    (frames / "1.jpg").write_bytes(data[: len(data) // 2])  # truncated: libjpeg would fill it with grey
    shutil.copy(frames / "0.jpg", frames / "0.png")  # two files with one stem
    out = reconstruct(tiny_acr_checkpoint, "--inputs", frames, "--out", tmp_path / "out")
    summary = json.loads((out / "summary.json").read_text())
    assert [f["frame"] for f in summary["frames"]] == ["0_jpg", "0_png", "2"]
    assert [s["frame"] for s in summary["skipped"]] == ["1"] and "truncated" in summary["skipped"][0]["reason"]
    with pytest.raises(SystemExit, match="1.jpg is truncated"):
        reconstruct(tiny_acr_checkpoint, "--inputs", frames, "--out", tmp_path / "strict", "--strict")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"\xff\xd8\xff not an image")
    with pytest.raises(SystemExit, match="no frame of"):
        reconstruct(tiny_acr_checkpoint, "--inputs", only_bad, "--out", tmp_path / "none")


# --- checkpoints that survive a kill, resumes that refuse a changed model ------------------------------------------

KILLED_SAVE = """
import sys, time, torch
from hands.cli.checkpoint_io import AtomicCheckpointIO
io = AtomicCheckpointIO()
path = sys.argv[1]
io.save_checkpoint({"step": 1, "weights": torch.ones(10)}, path)
print("saving", flush=True)
io.save_checkpoint({"step": 2, "weights": torch.ones(150_000_000)}, path)   # 600 MB: killed while it is written
print("saved", flush=True)
"""


def test_a_kill_during_a_checkpoint_save_keeps_the_previous_one(tmp_path):
    from hands.cli.checkpoint_io import checkpoint_is_intact, resume_checkpoint

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(tmp_path).stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the temporary folder")
    run = Path(tempfile.mkdtemp(dir=shm))
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    try:
        folder = run / "checkpoints"
        last = folder / "last.ckpt"
        child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(last)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "TMPDIR": str(private_tmp)})
        assert child.stdout.readline().strip() == "saving"
        time.sleep(0.3)
        child.kill()
        child.wait(timeout=60)
        assert checkpoint_is_intact(last)
        assert torch.load(last, weights_only=True)["step"] == 1  # the previous checkpoint, whole
        assert not list(private_tmp.iterdir())  # nothing staged in $TMPDIR
        assert resume_checkpoint(folder) == last and not list(folder.glob(".*.part"))  # the partial save is gone
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_resume_falls_back_to_the_newest_intact_checkpoint(toy_method, tmp_path, caplog):
    from hands.cli import main

    config = tmp_path / "toy.yaml"
    run = tmp_path / "run"
    config.write_text(f"method: toyline\ntrainer:\n  output: {run}\n  accelerator: cpu\n  max_steps: 4\n"
                      "  checkpoint_every_steps: 2\n")
    main(["train", "--config", str(config)])
    folder = run / "checkpoints"
    periodic = [p for p in folder.glob("*.ckpt") if p.name != "last.ckpt"]
    assert periodic and (folder / "last.ckpt").is_file()
    (folder / "last.ckpt").write_bytes(b"")  # what a killed save across filesystems used to leave
    main(["train", "--config", str(config), "trainer.max_steps=6", "--resume"])
    assert "damaged" in caplog.text
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 6


def test_resume_refuses_a_changed_model_and_keeps_the_config(toy_method, tmp_path):
    from hands.cli import main

    config = tmp_path / "toy.yaml"
    run = tmp_path / "run"
    config.write_text(f"method: toyline\ntrainer:\n  output: {run}\n  accelerator: cpu\n  max_steps: 2\n")
    main(["train", "--config", str(config)])
    saved = (run / "config.yaml").read_text()
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "toyline.lr=0.5", "trainer.max_steps=4", "--resume"])
    assert (run / "config.yaml").read_text() == saved
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--resume", f"trainer.output={tmp_path / 'nothing'}"])


def test_outputs_are_readable_by_others(tmp_path):
    from hands.io.atomic import atomic_directory, atomic_write_bytes
    from hands.io.images import write_image

    old = os.umask(0o022)
    try:
        image = write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
        data = atomic_write_bytes(tmp_path / "b.json", b"{}")
        with atomic_directory(tmp_path / "folder") as folder:
            (folder / "x.txt").write_text("x")
    finally:
        os.umask(old)
    assert [oct(p.stat().st_mode & 0o777) for p in (image, data, tmp_path / "folder")] == ["0o644", "0o644", "0o755"]


@pytest.mark.parametrize("text, message", [("method: acr\ntrainer: [unclosed\n", "not valid YAML at line"),
                                           ("method: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
                                           ("- method\n- acr\n", "expected a mapping")])
def test_bad_yaml_is_one_line_naming_the_file(tmp_path, text, message, capsys):
    from hands.cli import main
    from hands.config import ConfigError, load_config
    from hands.data.synthetic.generator import SyntheticConfig

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(SyntheticConfig, path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(SystemExit):
        main(["train", "--config", str(path)])
    assert message in capsys.readouterr().err


# --- numbers out of range: one mechanism (the configs' __post_init__), the field named ---------------------------

@pytest.mark.parametrize("schema, key, value, message", [
    ("hands.cli.train:TrainerConfig", "max_steps", -1, "max_steps: must be at least 1"),
    ("hands.cli.train:TrainerConfig", "checkpoint_every_steps", 0, "checkpoint_every_steps: must be at least 1"),
    ("hands.attentionhand.pipeline:SamplingConfig", "steps", 0, "steps: must be at least 1"),
    ("hands.attentionhand.pipeline:SamplingConfig", "guidance", float("nan"), "guidance: must be a finite number"),
    ("hands.attentionhand.pipeline:SamplingConfig", "image_size", 60, "image_size: must be at least 64"),
    ("hands.attentionhand.pipeline:SamplingConfig", "image_size", 96, "image_size: must be a multiple of 64"),
    ("hands.ohta.creation:CreationConfig", "views", 0, "views: must be at least 1"),
    ("hands.ohta.creation:CreationConfig", "finetune_steps", -4, "finetune_steps: must be at least 0"),
    ("hands.data.synthetic.generator:SyntheticConfig", "num_images", 0, "num_images: must be at least 1"),
])
def test_out_of_range_numbers_are_refused_naming_the_field(schema, key, value, message):
    from hands.config import ConfigError, load_config
    from hands.registry import load_object

    with pytest.raises(ConfigError, match=message):
        load_config(load_object(schema), None, [f"{key}={value}"])


def test_the_verbs_refuse_bad_numbers_in_one_line(tmp_path, capsys):
    from hands.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["generate", "--sample_path", str(tmp_path / "m.json"), "--steps", "0"])
    assert "steps: must be at least 1" in str(stop.value)
    with pytest.raises(SystemExit) as stop:
        main(["synth", "--out", str(tmp_path / "s"), "--num", "-5"])
    assert "num_images: must be at least 1" in capsys.readouterr().err + str(stop.value)
    with pytest.raises(SystemExit):
        main(["train", "--config", str(ROOT / "configs/acr/synthetic.yaml"), f"trainer.output={tmp_path / 'r'}",
              "acr.batch_size=0"])
    assert "acr.batch_size: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


# --- AttentionHand's modalities: confined paths, unique ids, records kept through a kill -------------------------

def modalities(tmp_path: Path, lines: list[dict]) -> Path:
    root = tmp_path / "samples"
    (root / "data").mkdir(parents=True)
    for item in lines:
        for key in ("mesh", "text"):
            path = root / item[key]
            if not path.resolve().is_relative_to(root.resolve()):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if key == "mesh":
                cv2.imwrite(str(path), np.full((64, 64, 3), 128, np.uint8))
            else:
                path.write_text("a right hand")
    manifest = root / "data" / "modalities.json"
    manifest.write_text("".join(json.dumps(item) + "\n" for item in lines))
    return manifest


def test_modalities_stay_inside_their_sample_folder(tmp_path):
    from hands.attentionhand.data import ModalitiesError, read_modalities

    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    manifest = modalities(tmp_path, [{"mesh": "mesh/a.jpg", "text": "../secret.txt"}])
    with pytest.raises(ModalitiesError, match="outside the sample folder"):
        read_modalities(manifest)
    assert read_modalities(manifest, allow_outside=True)[0].text == manifest.parent.parent / "../secret.txt"
    manifest = modalities(tmp_path / "abs", [{"mesh": "mesh/a.jpg", "text": str(secret)}])
    with pytest.raises(ModalitiesError, match="outside the sample folder"):
        read_modalities(manifest)
    manifest = modalities(tmp_path / "dup", [{"mesh": "mesh/a.jpg", "text": "text/a.txt"},
                                             {"mesh": "mesh/b.jpg", "text": "other/a.txt"}])
    with pytest.raises(ModalitiesError, match="sample id 'a'.*also line 1"):
        read_modalities(manifest)
    manifest = modalities(tmp_path / "box", [{"mesh": "mesh/a.jpg", "text": "text/a.txt", "bbox": "0 0 4 4"}])
    with pytest.raises(ModalitiesError, match="'bbox' should be"):
        read_modalities(manifest)


def test_generation_keeps_records_through_a_kill_and_resumes(tiny_sd, tmp_path):
    from hands.cli.generate import main as generate
    from hands.cli.generate import recorded_ids

    _, _, ckpt = tiny_sd
    manifest = modalities(tmp_path, [{"mesh": f"mesh/{n}.jpg", "text": f"text/{n}.txt"} for n in "abc"])
    out = tmp_path / "out"
    fast = ["--sample_path", str(manifest), "--weights", str(ckpt), "--out", str(out), "--steps", "1",
            "--num_samples", "1", "--image_size", "64", "--architecture", "tiny", "--device", "cpu"]
    generate(fast)
    assert recorded_ids(out / "records.jsonl") == {"a", "b", "c"}
    # A run killed after sample b's images but before its record, with a half-written last line:
    lines = (out / "records.jsonl").read_text().splitlines()
    (out / "records.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    config_stamp = (out / "config.yaml").stat().st_mtime_ns
    generate([*fast, "--skip_existing"])
    assert recorded_ids(out / "records.jsonl") == {"a", "b", "c"}
    generate([*fast, "--skip_existing"])  # nothing left to do: config.yaml untouched
    assert (out / "config.yaml").stat().st_mtime_ns != config_stamp
    stamp = (out / "config.yaml").stat().st_mtime_ns
    generate([*fast, "--skip_existing"])
    assert (out / "config.yaml").stat().st_mtime_ns == stamp


# --- writes that fail say why in one line and leave nothing half-written ------------------------------------------

def test_a_full_disk_and_a_file_in_the_way_are_one_line(tmp_path, monkeypatch):
    from hands.io.atomic import atomic_write_bytes

    target = atomic_write_bytes(tmp_path / "kept.json", b"old")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match="no space left on the device of .*kept.json"):
        atomic_write_bytes(target, b"new", overwrite=True)
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["kept.json"]
    with pytest.raises(NotADirectoryError, match="kept.json is a file, not a folder"):
        atomic_write_bytes(target / "inside.txt", b"x")


def test_a_damaged_acr_checkpoint_is_named(tmp_path):
    import pickle

    from hands.acr.checkpoint import CheckpointError
    from hands.acr.predictor import load_acr_model

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.ckpt: not a readable ACR checkpoint") as error:
        load_acr_model(garbage)
    assert "\n" not in str(error.value) and "weights_only` set to `False" not in str(error.value)
    evil = tmp_path / "wild.pkl"
    evil.write_bytes(pickle.dumps(Exception("a pickle that carries an object")))
    with pytest.raises(CheckpointError, match="wild.pkl: not a checkpoint of plain tensors"):
        load_acr_model(evil)  # the official format's path (also acr.init_checkpoint)
    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"model.something": torch.zeros(1)}}, wrong)
    with pytest.raises(CheckpointError, match="wrong.ckpt: not an ACR checkpoint"):
        load_acr_model(wrong)
    with pytest.raises(ValueError, match="image_size must be a positive"):
        from hands.render import Renderer

        Renderer(0)


def test_overrides_may_follow_options(tmp_path):
    from hands.cli import main

    out = main(["synth", "--out", str(tmp_path / "s"), "num_images=1", "--device", "cpu", "image_width=64", "--seed", "3",
                "image_height=64"])
    saved = (tmp_path / "s" / "config.yaml").read_text()
    assert out and "image_width: 64" in saved and "image_height: 64" in saved and "seed: 3" in saved


@pytest.mark.parametrize("field, value, message", [("intrinsics", np.zeros((3, 3)), "positive focal lengths"),
                                                   ("Th", np.array([0.0, np.nan, 4.0]), "'Th' holds NaN")])
def test_bad_ohta_annotations_are_refused_naming_the_field(tmp_path, field, value, message):
    import pickle

    from hands.ohta.oneshot import OneShotFormatError, read_oneshot_annotation

    source = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "ohta" / "in_the_wild" / "anno" / "02023.pkl"
    if not source.is_file():
        pytest.skip("shared fixture ohta/in_the_wild not present (only CI and developer machines have ../shared/fixtures)")
    data = pickle.loads(source.read_bytes())  # noqa: S301 - the project's own fixture, rewritten for the test
    (data[0] if field == "intrinsics" else data[1])[field] = value
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(OneShotFormatError, match=message):
        read_oneshot_annotation(path)


def test_an_acr_index_with_object_arrays_is_refused(tmp_path):
    from hands.acr.data import ACRTrainingSet

    np.savez(tmp_path / "index.npz", name=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="index.npz: not an ACR training index"):
        ACRTrainingSet(tmp_path)


# --- exports shared by several processes ---------------------------------------------------------------------------

@pytest.mark.parametrize("method, manifest", [("acr", "index.npz"), ("attentionhand", "modalities.json"),
                                              ("ohta", "captures.json")])
def test_sharded_exports_merge_into_what_one_process_writes(synthetic_root, tmp_path, method, manifest):
    from hands.cli.prepare_interhand import main as prepare

    common = [method, "--root", str(synthetic_root), "--size", "64"]
    prepare([*common, "--out", str(tmp_path / "one")])
    prepare([*common, "--out", str(tmp_path / "two"), "--shard", "1/2"])
    assert not (tmp_path / "two" / manifest).exists()  # shard 0 is still to come
    prepare([*common, "--out", str(tmp_path / "two"), "--shard", "0/2"])
    one, two = tmp_path / "one", tmp_path / "two"
    assert sorted(p.name for p in two.iterdir() if p.is_file()) == [manifest]
    if manifest.endswith(".npz"):
        with np.load(one / manifest) as a, np.load(two / manifest) as b:
            order = np.argsort(a["name"], kind="stable")
            assert set(a.files) == set(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key][order], b[key], err_msg=key)
    elif manifest == "modalities.json":
        lines = (one / manifest).read_text().replace('"one/', '"two/').splitlines()  # paths name their folder
        assert sorted(lines) == (two / manifest).read_text().splitlines()
    else:
        assert json.loads((one / manifest).read_text()) == json.loads((two / manifest).read_text())
    files = lambda root: sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parent != root)  # noqa: E731
    assert files(one) == files(two)


def test_a_pickled_weight_file_in_a_diffusers_folder_is_named(tiny_sd, tmp_path):
    from hands.attentionhand.components import load_parts

    _, folder, _ = tiny_sd
    copy = tmp_path / "sd"
    shutil.copytree(folder, copy)
    for weights in (copy / "vae").glob("*.safetensors"):
        weights.unlink()
    (copy / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04\x95 not a real pickle")
    with pytest.raises(ValueError, match=r"vae: not a loadable AutoencoderKL"):
        load_parts(copy)


def test_mano_inputs_of_the_wrong_kind_are_named():
    from hands.mano import build_mano

    layer = build_mano("right", pose_convention="flat")
    with pytest.raises(ValueError, match="'global_orient' should be an array, got the scalar"):
        layer(global_orient=torch.tensor(0.5))
    with pytest.raises(ValueError, match="'hand_pose' should be an array of numbers, got the string"):
        layer(hand_pose="fist")
    with pytest.raises(ValueError, match=r"'betas' should have shape \(1, <= 10\)"):
        layer(betas=torch.zeros(1, 11))
    torch.testing.assert_close(layer(hand_pose=np.zeros(45), offsets=np.zeros((1, 778, 3))).vertices, layer().vertices)
