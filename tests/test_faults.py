"""Faults a careless or unlucky user meets (issue 17): concurrent first opens of a dataset, incomplete indexes,
outputs that would clobber inputs or earlier runs, killed checkpoint saves, permissions, bad numbers."""

import json
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
