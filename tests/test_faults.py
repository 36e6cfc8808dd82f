"""Faults a careless or unlucky user meets (issue 17): concurrent first opens of a dataset, incomplete indexes,
outputs that would clobber inputs or earlier runs, killed checkpoint saves, permissions, bad numbers."""

import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

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
