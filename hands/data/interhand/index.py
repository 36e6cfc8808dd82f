"""A compact, memory-mapped index of one InterHand2.6M split, built once from the (multi-GB) JSON annotations.

The JSON files are streamed (ijson), so building needs memory for a chunk, not for the file; the result is a
folder of flat binary arrays opened with `np.memmap`, so a split with millions of images opens in milliseconds and
only the rows that are read are paged in. The index remembers the sizes and modification times of its sources and
is rebuilt when they change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ijson
import numpy as np
from tqdm import tqdm

from hands.data.interhand.format import ANNOTATION_KINDS, HAND_TYPES, NUM_JOINTS, InterHandCamera, annotation_path
from hands.io.atomic import apply_umask, atomic_path, file_lock
from hands.io.home import cache_dir as home_cache

log = logging.getLogger(__name__)
INDEX_VERSION = 2  # 2: meta.json lists the files with their sizes (completeness check)
CHUNK = 20_000
UNKNOWN_HAND_TYPE = 255
# Arrays per table: name -> (dtype, shape of one row).
IMAGE_FIELDS = {"image_id": ("<i8", ()), "width": ("<i4", ()), "height": ("<i4", ()), "capture": ("<i4", ()),
                "camera": ("<i4", ()), "frame_idx": ("<i8", ()), "name_offset": ("<i8", ())}
ANNOTATION_FIELDS = {"annotation_id": ("<i8", ()), "image_id": ("<i8", ()), "bbox": ("<f4", (4,)),
                     "joint_valid": ("u1", (NUM_JOINTS,)), "hand_type": ("u1", ()), "hand_type_valid": ("u1", ())}
FRAME_FIELDS = {"key": ("<i8", ()), "world_coord": ("<f4", (NUM_JOINTS, 3)), "joint_valid": ("u1", (NUM_JOINTS,))}
MANO_FIELDS = {"key": ("<i8", ()), "params": ("<f4", (2, 61)), "present": ("u1", (2,))}


class InterHandFormatError(ValueError):
    """An annotation file is missing, malformed or inconsistent; the message names the file and the field."""


def frame_key(capture, frame_idx):
    """Combined (capture, frame) key, int64 (works on scalars and arrays)."""
    return np.asarray(capture, dtype=np.int64) * (1 << 32) + np.asarray(frame_idx, dtype=np.int64)


class _TableWriter:
    """Appends rows of fixed-width fields to raw binary files in chunks."""

    def __init__(self, folder: Path, table: str, fields: dict) -> None:
        self.folder, self.table, self.fields = folder, table, fields
        self.rows = {name: [] for name in fields}
        self.count = 0
        self.files = {name: open(folder / f"{table}.{name}.bin", "wb") for name in fields}

    def append(self, **values) -> None:
        for name, value in values.items():
            self.rows[name].append(value)
        if len(self.rows[next(iter(self.fields))]) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        first = next(iter(self.fields))
        n = len(self.rows[first])
        for name, (dtype, shape) in self.fields.items():
            if n:
                self.files[name].write(np.asarray(self.rows[name], dtype=dtype).reshape(n, *shape).tobytes())
            self.rows[name] = []
        self.count += n

    def close(self) -> int:
        self.flush()
        for stream in self.files.values():
            stream.close()
        return self.count


def _sources(root: Path, split: str) -> dict[str, Path]:
    paths = {kind: annotation_path(root, split, kind) for kind in ANNOTATION_KINDS}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InterHandFormatError(f"InterHand2.6M annotation file(s) not found: {', '.join(missing)} "
                                   f"(expected <root>/annotations/{split}/InterHand2.6M_{split}_<kind>.json)")
    return paths


def _fingerprint(paths: dict[str, Path]) -> dict:
    return {kind: [p.stat().st_size, p.stat().st_mtime_ns] for kind, p in paths.items()}


def _as_floats(value, count: int, where: str) -> list[float]:
    flat = np.asarray(value, dtype=np.float64).reshape(-1)
    if flat.size != count:
        raise InterHandFormatError(f"{where}: expected {count} numbers, got {flat.size}")
    return flat.tolist()


def _mano_row(entry: dict | None, where: str) -> dict[str, np.ndarray]:
    """NeuralAnnot fits of one frame -> params (2,61) = pose 48 | shape 10 | trans 3 per side, present (2,)."""
    params, present = np.zeros((2, 61)), np.zeros(2)
    for s, side in enumerate(("right", "left")):
        hand = (entry or {}).get(side)
        if hand:
            params[s] = (_as_floats(hand["pose"], 48, f"{where} {side} pose") + _as_floats(hand["shape"], 10, f"{where} {side} shape")
                         + _as_floats(hand["trans"], 3, f"{where} {side} trans"))
            present[s] = 1
    return {"params": params, "present": present}


def read_only_key(root: Path) -> str:
    """A stable name for the cache of a dataset folder (the same in every process)."""
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]


def build_index(root: str | Path, split: str, folder: str | Path) -> Path:
    """Stream the four annotation files of `split` into an index folder. Each build writes its own temporary
    folder beside `folder` and commits it by rename; call it under `index_lock` (as `InterHandIndex.open` does)."""
    root, folder = Path(root), Path(folder)
    paths = _sources(root, split)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.building-", dir=folder.parent))
    try:
        _write_index(paths, split, tmp)
        apply_umask(tmp, directory=True)
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_index(paths: dict[str, Path], split: str, tmp: Path) -> None:
    meta: dict = {"version": INDEX_VERSION, "split": split, "sources": _fingerprint(paths)}

    with open(paths["camera"], "rb") as stream:
        try:
            cameras_json = json.load(stream)
        except json.JSONDecodeError as error:
            raise InterHandFormatError(f"{paths['camera']}: not valid JSON ({error})") from None
    camera_names: dict[str, int] = {}
    camera_rows = []
    for capture, entry in cameras_json.items():
        for name in entry.get("campos", {}):
            where = f"{paths['camera']}: capture {capture} camera {name}"
            try:
                row = (int(capture), camera_names.setdefault(name, len(camera_names)),
                       _as_floats(entry["camrot"][name], 9, where + " camrot"), _as_floats(entry["campos"][name], 3, where + " campos"),
                       _as_floats(entry["focal"][name], 2, where + " focal"), _as_floats(entry["princpt"][name], 2, where + " princpt"))
            except KeyError as error:
                raise InterHandFormatError(f"{where}: missing field {error}") from None
            camera_rows.append(row)
    camera_keys = np.array([frame_key(c, n) for c, n, *_ in camera_rows], dtype=np.int64)
    np.save(tmp / "camera.key.npy", camera_keys)
    np.save(tmp / "camera.params.npy", np.array([r + t + f + p for *_, r, t, f, p in camera_rows], dtype=np.float64))
    meta["camera_names"] = list(camera_names)

    names = open(tmp / "image.names.bin", "wb")
    offset = 0
    images = _TableWriter(tmp, "image", IMAGE_FIELDS)
    with open(paths["data"], "rb") as stream:
        try:
            for item in tqdm(ijson.items(stream, "images.item", use_float=True), desc="index images", unit=" img", mininterval=2):
                encoded = str(item["file_name"]).encode()
                names.write(encoded)
                images.append(image_id=item["id"], width=item.get("width", 0), height=item.get("height", 0),
                              capture=int(item["capture"]), camera=camera_names.get(str(item["camera"]), -1),
                              frame_idx=int(item["frame_idx"]), name_offset=offset)
                offset += len(encoded)
        except (ijson.JSONError, KeyError, ValueError, TypeError) as error:
            raise InterHandFormatError(f"{paths['data']}: bad 'images' entry ({type(error).__name__}: {error})") from None
    names.close()
    meta["image_count"] = images.close()
    meta["names_size"] = offset

    annotations = _TableWriter(tmp, "annotation", ANNOTATION_FIELDS)
    type_code = {name: i for i, name in enumerate(HAND_TYPES)}
    with open(paths["data"], "rb") as stream:
        try:
            items = ijson.items(stream, "annotations.item", use_float=True)
            for item in tqdm(items, desc="index annotations", unit=" ann", mininterval=2):
                where = f"{paths['data']}: annotation {item['id']}"
                annotations.append(annotation_id=item["id"], image_id=item["image_id"],
                                   bbox=_as_floats(item["bbox"], 4, f"{where} bbox"),
                                   joint_valid=_as_floats(item["joint_valid"], NUM_JOINTS, f"{where} joint_valid"),
                                   hand_type=type_code.get(item.get("hand_type"), UNKNOWN_HAND_TYPE),
                                   hand_type_valid=int(bool(item.get("hand_type_valid", 0))))
        except (ijson.JSONError, KeyError, ValueError, TypeError) as error:
            raise InterHandFormatError(f"{paths['data']}: bad 'annotations' entry ({type(error).__name__}: {error})") from None
    meta["annotation_count"] = annotations.close()

    frames = _TableWriter(tmp, "frame", FRAME_FIELDS)
    mano = _TableWriter(tmp, "mano", MANO_FIELDS)
    for kind, table in (("joint_3d", frames), ("MANO_NeuralAnnot", mano)):
        with open(paths[kind], "rb") as stream:
            try:
                for capture, per_frame in tqdm(ijson.kvitems(stream, "", use_float=True), desc=f"index {kind}", unit=" capture"):
                    for frame, entry in per_frame.items():
                        where = f"{paths[kind]}: capture {capture} frame {frame}"
                        key = int(frame_key(int(capture), int(frame)))
                        if kind == "joint_3d":
                            table.append(key=key, world_coord=_as_floats(entry["world_coord"], NUM_JOINTS * 3, where + " world_coord"),
                                         joint_valid=_as_floats(entry["joint_valid"], NUM_JOINTS, where + " joint_valid"))
                        else:
                            table.append(key=key, **_mano_row(entry, where))
            except (ijson.JSONError, KeyError, ValueError, TypeError, AttributeError) as error:
                raise InterHandFormatError(f"{paths[kind]}: bad entry ({type(error).__name__}: {error})") from None
        meta[f"{table.table}_count"] = table.close()

    meta["files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
    with atomic_path(tmp / "meta.json", overwrite=True) as path:
        path.write_text(json.dumps(meta))


def index_is_complete(folder: Path, sources: dict[str, Path]) -> bool:
    """Whether `folder` holds a finished index of this version for these annotation files: meta.json matches and
    every file it lists is there with its size."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("version") != INDEX_VERSION or meta.get("sources") != _fingerprint(sources) or "files" not in meta:
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in meta["files"].items())


def index_lock(folder: Path):
    """An exclusive lock on `<folder>.lock`: one build at a time."""
    return file_lock(folder.with_name(folder.name + ".lock"))


@dataclass
class InterHandRecord:
    """One annotation (one image) of InterHand2.6M, with its camera, 3D joints and MANO parameters.

    bbox (4,) [x, y, w, h] pixels; joint_valid (42,) bool (annotated and inside the image); world_joints (42,3) mm
    or None; mano: side -> (pose (48,) NeuralAnnot convention, shape (10,), trans (3,) m) or None, world frame.
    """

    annotation_id: int
    image_id: int
    image_path: Path
    width: int
    height: int
    capture: int
    frame_idx: int
    camera_name: str
    camera: InterHandCamera
    bbox: np.ndarray
    joint_valid: np.ndarray
    hand_type: str | None
    hand_type_valid: bool
    world_joints: np.ndarray | None
    mano: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray] | None]

    def camera_joints(self) -> np.ndarray:
        """(42,3) joints in the camera frame, mm."""
        return self.camera.world_to_camera(self.world_joints)

    def image_joints(self) -> np.ndarray:
        """(42,2) joints projected to pixels."""
        return self.camera.project(self.camera_joints())


class InterHandIndex:
    """Random access to the annotations of one split, backed by a built index folder."""

    def __init__(self, root: str | Path, split: str, folder: str | Path) -> None:
        self.root, self.split, self.folder = Path(root), split, Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())

        def table(name: str, fields: dict, count: int) -> dict[str, np.ndarray]:
            arrays = {}
            for field_name, (dtype, shape) in fields.items():
                path = self.folder / f"{name}.{field_name}.bin"
                arrays[field_name] = (np.memmap(path, dtype=dtype, mode="r", shape=(count, *shape)) if count
                                      else np.zeros((0, *shape), dtype=dtype))
            return arrays

        self.images = table("image", IMAGE_FIELDS, self.meta["image_count"])
        self.annotations = table("annotation", ANNOTATION_FIELDS, self.meta["annotation_count"])
        self.frames = table("frame", FRAME_FIELDS, self.meta["frame_count"])
        self.mano = table("mano", MANO_FIELDS, self.meta["mano_count"])
        self.names = (np.memmap(self.folder / "image.names.bin", dtype="u1", mode="r") if self.meta["names_size"]
                      else np.zeros(0, dtype="u1"))
        self.camera_keys = np.load(self.folder / "camera.key.npy")
        self.camera_params = np.load(self.folder / "camera.params.npy")
        self._lookups()

    def _lookups(self) -> None:
        """Sorted keys for joining annotations to images, frames, MANO fits and cameras (vectorised)."""
        image_ids = np.asarray(self.images["image_id"])
        order = np.argsort(image_ids, kind="stable")
        position = np.searchsorted(image_ids[order], self.annotations["image_id"])
        position = np.clip(position, 0, max(len(order) - 1, 0))
        found = len(order) > 0
        self.image_row = np.where(found & (image_ids[order][position] == self.annotations["image_id"]), order[position], -1)
        if (self.image_row < 0).any():
            bad = int(np.asarray(self.annotations["annotation_id"])[np.argmax(self.image_row < 0)])
            raise InterHandFormatError(f"{annotation_path(self.root, self.split, 'data')}: annotation {bad} refers to a missing image")
        rows = self.image_row
        keys = frame_key(np.asarray(self.images["capture"])[rows], np.asarray(self.images["frame_idx"])[rows])
        self.frame_row = self._join(np.asarray(self.frames["key"]), keys)
        self.mano_row = self._join(np.asarray(self.mano["key"]), keys)
        self.camera_row = self._join(self.camera_keys, frame_key(np.asarray(self.images["capture"])[rows],
                                                                 np.asarray(self.images["camera"])[rows]))

    @staticmethod
    def _join(table_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
        if len(table_keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        order = np.argsort(table_keys, kind="stable")
        position = np.clip(np.searchsorted(table_keys[order], keys), 0, len(order) - 1)
        return np.where(table_keys[order][position] == keys, order[position], -1)

    @classmethod
    def open(cls, root: str | Path, split: str, cache_dir: str | Path | None = None, rebuild: bool = False) -> "InterHandIndex":
        """Open the index of `split` under `root`, building it first when missing or stale.

        The index lives in `cache_dir` (default `<root>/annotations/<split>/hands_index`, or
        `$HANDS_HOME/cache/interhand/...` when the dataset folder is read-only)."""
        root = Path(root)
        sources = _sources(root, split)
        folder = Path(cache_dir) if cache_dir else annotation_path(root, split, "data").parent / "hands_index"
        if cache_dir is None and not os.access(folder.parent, os.W_OK):
            folder = home_cache("interhand") / f"{read_only_key(root)}_{split}"
        if not rebuild and index_is_complete(folder, sources):
            return cls(root, split, folder)
        try:
            with index_lock(folder):  # another process may be building it: wait, then use its index
                if rebuild or not index_is_complete(folder, sources):
                    log.info("indexing InterHand2.6M %s annotations into %s", split, folder)
                    build_index(root, split, folder)
        except PermissionError as error:
            raise InterHandFormatError(f"cannot write the index of {root} ({split}) to {folder.parent}: {error.strerror}; "
                                       "pass an index folder you can write (--index_dir / cache_dir)") from None
        return cls(root, split, folder)

    def __len__(self) -> int:
        return int(self.meta["annotation_count"])

    def file_name(self, image_row: int) -> str:
        start = int(self.images["name_offset"][image_row])
        end = int(self.images["name_offset"][image_row + 1]) if image_row + 1 < self.meta["image_count"] else self.meta["names_size"]
        return bytes(self.names[start:end]).decode()

    def camera(self, row: int) -> InterHandCamera:
        params = self.camera_params[row]
        return InterHandCamera(params[:9].reshape(3, 3), params[9:12], params[12:14], params[14:16])

    def record(self, index: int) -> InterHandRecord:
        """The annotation at position `index` (0 <= index < len)."""
        if not 0 <= index < len(self):
            raise IndexError(f"InterHand2.6M {self.split}: index {index} out of range (0..{len(self) - 1})")
        a, image_row = self.annotations, int(self.image_row[index])
        camera_row, frame_row, mano_row = int(self.camera_row[index]), int(self.frame_row[index]), int(self.mano_row[index])
        if camera_row < 0:
            raise InterHandFormatError(f"{annotation_path(self.root, self.split, 'camera')}: no parameters for the camera of "
                                       f"image {self.file_name(image_row)} (capture {int(self.images['capture'][image_row])})")
        mano: dict = {"right": None, "left": None}
        if mano_row >= 0:
            for s, side in enumerate(("right", "left")):
                if self.mano["present"][mano_row, s]:
                    p = np.asarray(self.mano["params"][mano_row, s], dtype=np.float64)
                    mano[side] = (p[:48], p[48:58], p[58:61])
        code = int(a["hand_type"][index])
        return InterHandRecord(
            annotation_id=int(a["annotation_id"][index]), image_id=int(a["image_id"][index]),
            image_path=self.root / "images" / self.split / self.file_name(image_row),
            width=int(self.images["width"][image_row]), height=int(self.images["height"][image_row]),
            capture=int(self.images["capture"][image_row]), frame_idx=int(self.images["frame_idx"][image_row]),
            camera_name=self.meta["camera_names"][int(self.images["camera"][image_row])], camera=self.camera(camera_row),
            bbox=np.asarray(a["bbox"][index], dtype=np.float64), joint_valid=np.asarray(a["joint_valid"][index]).astype(bool),
            hand_type=HAND_TYPES[code] if code < len(HAND_TYPES) else None, hand_type_valid=bool(a["hand_type_valid"][index]),
            world_joints=np.asarray(self.frames["world_coord"][frame_row], dtype=np.float64) if frame_row >= 0 else None,
            mano=mano)
