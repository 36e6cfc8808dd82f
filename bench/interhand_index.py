"""Indexing a full-size InterHand2.6M annotation set: time and peak memory, against plain `json.load`.

    python bench/interhand_index.py [--images 1361062] [--cameras 80] [--folder /tmp/ih_bench] [--keep]

Writes synthetic annotation files the size of the 30 fps train split (H+M: 1,361,062 images; no image files),
then, each in a fresh child process: (1) builds our index, (2) opens it and reads 10,000 random records,
(3) the naive way, `json.load` of the data file alone. Prints seconds and peak resident memory of each and the
ratios naive / ours.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from hands.data.interhand.format import annotation_path


def write_annotations(root: Path, num_images: int, cameras: int, seed: int = 0) -> None:
    """Stream InterHand-format annotation files with `num_images` images (frames x cameras) to disk."""
    rng = np.random.default_rng(seed)
    frames = -(-num_images // cameras)
    frames_per_capture = 2000
    captures = -(-frames // frames_per_capture)
    folder = annotation_path(root, "train", "data").parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(annotation_path(root, "train", "camera"), "w") as f:
        json.dump({str(c): {"campos": {str(400000 + k): rng.normal(0, 500, 3).tolist() for k in range(cameras)},
                            "camrot": {str(400000 + k): np.eye(3).tolist() for k in range(cameras)},
                            "focal": {str(400000 + k): [1200.0, 1200.0] for k in range(cameras)},
                            "princpt": {str(400000 + k): [167.0, 256.0] for k in range(cameras)}} for c in range(captures)}, f)
    with open(annotation_path(root, "train", "data"), "w") as f:
        f.write('{"images": [')
        for i in range(num_images):
            frame, cam = divmod(i, cameras)
            capture = frame // frames_per_capture
            f.write(("," if i else "") + json.dumps({
                "id": i, "file_name": f"Capture{capture}/0000_seq/cam{400000 + cam}/image{frame}.jpg", "width": 334,
                "height": 512, "capture": capture, "subject": capture, "seq_name": "0000_seq", "camera": str(400000 + cam),
                "frame_idx": frame}))
        f.write('], "annotations": [')
        valid = rng.integers(0, 2, size=(4096, 42)).tolist()
        for i in range(num_images):
            f.write(("," if i else "") + json.dumps({
                "id": i, "image_id": i, "bbox": [100.5, 200.25, 80.0, 90.0], "joint_valid": valid[i % 4096],
                "hand_type": ("right", "left", "interacting")[i % 3], "hand_type_valid": 1}))
        f.write("]}")
    joints = np.round(rng.normal(0, 100, (42, 3)), 3).tolist()
    pose = np.round(rng.normal(0, 0.3, 48), 5).tolist()
    for kind, entry in (("joint_3d", {"world_coord": joints, "joint_valid": [1] * 42, "hand_type": "interacting",
                                      "hand_type_valid": 1, "seq": "0000_seq"}),
                        ("MANO_NeuralAnnot", {"right": {"pose": pose, "shape": [0.0] * 10, "trans": [0.0, 0.0, 1.0]},
                                              "left": {"pose": pose, "shape": [0.0] * 10, "trans": [0.1, 0.0, 1.0]}})):
        with open(annotation_path(root, "train", kind), "w") as f:
            f.write("{")
            for c in range(captures):
                first = c * frames_per_capture
                last = min(frames, first + frames_per_capture)
                body = ",".join(f'"{frame}": {json.dumps(entry)}' for frame in range(first, last))
                f.write(("," if c else "") + f'"{c}": {{{body}}}')
            f.write("}")


def _build(root: str) -> None:
    from hands.data.interhand.index import InterHandIndex

    InterHandIndex.open(root, "train", rebuild=True)


def _open_and_read(root: str) -> None:
    from hands.data.interhand.index import InterHandIndex

    start = time.perf_counter()
    index = InterHandIndex.open(root, "train")
    opened = time.perf_counter() - start
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in rng.integers(0, len(index), 10_000):
        index.record(int(i))
    print(f"  open: {opened:.2f} s for {len(index):,} annotations; 10,000 random records: "
          f"{(time.perf_counter() - start) / 10_000 * 1e6:.0f} us each")


def _naive(root: str) -> None:
    with open(annotation_path(root, "train", "data")) as f:
        json.load(f)


def _child(target, root: str, queue) -> None:
    start = time.perf_counter()
    target(root)
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def measure(target, root: Path) -> tuple[float, float]:
    """Seconds and peak resident memory (GiB) of target(root), run in a fresh child process (imports excluded
    from the time, included in the memory)."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(target, str(root), queue))
    process.start()
    seconds, peak_kib = queue.get()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
    return seconds, peak_kib / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_361_062)
    parser.add_argument("--cameras", type=int, default=80)
    parser.add_argument("--folder", default="/tmp/hands_interhand_index_bench")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    root = Path(args.folder)
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    write_annotations(root, args.images, args.cameras)
    size = sum(annotation_path(root, "train", k).stat().st_size for k in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"))
    print(f"wrote {args.images:,} images of annotations ({size / 2**30:.2f} GiB JSON) in {time.perf_counter() - start:.0f} s")
    build_s, build_gib = measure(_build, root)
    print(f"ours, build index: {build_s:.1f} s, peak {build_gib:.2f} GiB")
    open_s, open_gib = measure(_open_and_read, root)
    print(f"ours, open + 10k random reads: {open_s:.1f} s, peak {open_gib:.2f} GiB")
    naive_s, naive_gib = measure(_naive, root)
    print(f"naive json.load of the data file only: {naive_s:.1f} s, peak {naive_gib:.2f} GiB")
    print(f"ratios naive / ours: time {naive_s / open_s:.1f}x (opening the built index and reading 10k records), "
          f"peak memory {naive_gib / build_gib:.1f}x (building) and {naive_gib / open_gib:.1f}x (using)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
