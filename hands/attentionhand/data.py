"""AttentionHand's modalities: `modalities.json` (JSON lines of mesh / rgb / text paths, optional bbox) and the
training samples built from them (global = the whole image, local = the hand box, both resized to S x S).

As in the release, paths inside the JSON lines are relative to the folder that holds the one with the file
(`samples/modalities.json` lists `samples/mesh/...`), images are resized to S x S without keeping the aspect
ratio, RGB goes to [-1, 1], the mesh image to [0, 1] and the local mesh crop is grey. Without a `bbox`, the hand
box is found as the release finds it (`local_box="release"`): the mesh image resized to 512², its pixels brighter
than 127, the bounding box of the first two external contours. `local_box="all_pixels"` takes the tight box of
every such pixel of the original instead (a third blob, e.g. a finger seen apart, is kept). A mesh image with no
such pixel is an error (the release crashed there).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hands.io.images import read_image


class ModalitiesError(ValueError):
    """A modalities file or one of the files it names is missing or malformed; the message names them."""


@dataclass
class ModalityEntry:
    """One line of modalities.json with resolved paths; bbox [x, y, w, h] pixels of the rgb/mesh image or None."""

    mesh: Path
    text: Path
    rgb: Path | None = None
    bbox: list[float] | None = None

    @property
    def file_id(self) -> str:
        return self.text.stem


def _resolve(manifest: Path, relative: str, line: int, key: str, allow_outside: bool = False) -> Path:
    root = manifest.parent.parent.resolve()
    for base in (manifest.parent.parent, manifest.parent):
        candidate = base / relative
        if candidate.is_file():
            if not allow_outside and not candidate.resolve().is_relative_to(root):
                raise ModalitiesError(f"{manifest}:{line}: '{key}' file {relative} lies outside the sample folder {root} "
                                      "(allow it with allow_outside / --allow_outside_paths)")
            return candidate
    raise ModalitiesError(f"{manifest}:{line}: '{key}' file {relative} not found (looked in {manifest.parent.parent} "
                          f"and {manifest.parent})")


def read_modalities(path: str | Path, allow_outside: bool = False) -> list[ModalityEntry]:
    """Parse a modalities.json (one JSON object per line; 'mesh' and 'text' required, 'rgb' and 'bbox' optional).
    Files must lie under the folder above the manifest (as the release's data/ layout) unless `allow_outside`;
    two lines with one sample id (the text file's stem) are an error."""
    path = Path(path)
    if not path.is_file():
        raise ModalitiesError(f"modalities file not found: {path}")
    entries, seen = [], {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ModalitiesError(f"{path}:{number}: not a JSON object ({error.msg})") from None
        if not isinstance(item, dict) or "mesh" not in item or "text" not in item:
            raise ModalitiesError(f"{path}:{number}: each line needs at least the keys 'mesh' and 'text'")
        bbox = item.get("bbox")
        if bbox is not None and (not isinstance(bbox, list) or len(bbox) != 4
                                 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox) or min(bbox[2:]) <= 0):
            raise ModalitiesError(f"{path}:{number}: 'bbox' should be [x, y, w, h] with a positive size, got {bbox}")
        if not all(isinstance(item.get(key, ""), str) for key in ("mesh", "text", "rgb")):
            raise ModalitiesError(f"{path}:{number}: 'mesh', 'text' and 'rgb' should be paths (strings)")
        entry = ModalityEntry(
            mesh=_resolve(path, item["mesh"], number, "mesh", allow_outside),
            text=_resolve(path, item["text"], number, "text", allow_outside),
            rgb=_resolve(path, item["rgb"], number, "rgb", allow_outside) if item.get("rgb") else None, bbox=bbox)
        if entry.file_id in seen:
            raise ModalitiesError(f"{path}:{number}: sample id {entry.file_id!r} (the text file's name) is also line "
                                  f"{seen[entry.file_id]}: its images would replace the other's")
        seen[entry.file_id] = number
        entries.append(entry)
    return entries


def read_prompt(path: str | Path) -> str:
    """The prompt: the first line of a text file."""
    lines = Path(path).read_text().splitlines()
    if not lines or not lines[0].strip():
        raise ModalitiesError(f"prompt file {path} is empty")
    return lines[0].strip()


LocalBox = Literal["release", "all_pixels"]
RELEASE_BOX_SIZE = 512


def hand_box_from_mesh(mesh_rgb: np.ndarray, source: str | Path = "mesh image", rule: LocalBox = "all_pixels") -> list[float]:
    """[x, y, w, h] (pixels of mesh_rgb) of the hand in a mesh render. all_pixels: the tight box of the pixels whose
    grey level exceeds 127. release: the same threshold on the render resized to 512² (bilinear), the bounding box
    of the first two external contours OpenCV finds (datasets.py bounding_box), scaled back to mesh_rgb's pixels."""
    if rule not in ("release", "all_pixels"):
        raise ValueError(f"local_box must be 'release' or 'all_pixels', got {rule!r}")
    if rule == "all_pixels":
        ys, xs = np.nonzero(cv2.cvtColor(mesh_rgb, cv2.COLOR_RGB2GRAY) > 127)
        if len(xs) == 0:
            raise ModalitiesError(f"{source}: no hand in the mesh image (no pixel brighter than 127)")
        return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    small = cv2.resize(cv2.cvtColor(mesh_rgb, cv2.COLOR_RGB2GRAY), (RELEASE_BOX_SIZE, RELEASE_BOX_SIZE))
    _, mask = cv2.threshold(small, 127, 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        raise ModalitiesError(f"{source}: no hand in the mesh image (no pixel brighter than 127 at 512x512)")
    boxes = np.array([cv2.boundingRect(c) for c in contours[:2]])
    x0, y0 = boxes[:, :2].min(0)
    x1, y1 = (boxes[:, :2] + boxes[:, 2:]).max(0)
    sx, sy = mesh_rgb.shape[1] / RELEASE_BOX_SIZE, mesh_rgb.shape[0] / RELEASE_BOX_SIZE
    return [float(x0 * sx), float(y0 * sy), float((x1 - x0) * sx), float((y1 - y0) * sy)]


def crop_box(image: np.ndarray, box: list[float], size: int) -> np.ndarray:
    """The box [x, y, w, h] of an image, resized to size x size (aspect ratio not kept, as in the release)."""
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0 = max(0, x), max(0, y)
    patch = image[y0:max(y0 + 1, y + h), x0:max(x0 + 1, x + w)]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


class ModalitiesDataset(Dataset):
    """Training (rgb present) or inference (mesh and text only) samples from a modalities file.

    Item: mesh_global, mesh_local (3,S,S) in [0,1] (local crop grey), text (str), file_id (str), box (4,) and,
    with rgb, rgb_global and rgb_local (3,S,S) in [-1,1]."""

    def __init__(self, path: str | Path, size: int = 512, require_rgb: bool = True, local_box: LocalBox = "release") -> None:
        self.entries = read_modalities(path)
        self.size, self.local_box = size, local_box
        if require_rgb:
            missing = [e.text.stem for e in self.entries if e.rgb is None]
            if missing:
                raise ModalitiesError(f"{path}: {len(missing)} line(s) have no 'rgb' (needed for training), e.g. {missing[:3]}")

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        entry, S = self.entries[index], self.size
        mesh = read_image(entry.mesh)
        box = entry.bbox or hand_box_from_mesh(mesh, entry.mesh, self.local_box)
        grey_local = cv2.cvtColor(cv2.cvtColor(crop_box(mesh, box, S), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        as_chw = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255.0  # noqa: E731
        item = {"mesh_global": as_chw(cv2.resize(mesh, (S, S), interpolation=cv2.INTER_LINEAR)),
                "mesh_local": as_chw(grey_local), "text": read_prompt(entry.text), "file_id": entry.file_id,
                "box": torch.tensor(box, dtype=torch.float32)}
        if entry.rgb is not None:
            rgb = read_image(entry.rgb)
            if rgb.shape[:2] != mesh.shape[:2]:
                raise ModalitiesError(f"{entry.rgb} is {rgb.shape[1]}x{rgb.shape[0]} but its mesh image {entry.mesh} is "
                                      f"{mesh.shape[1]}x{mesh.shape[0]}")
            item["rgb_global"] = as_chw(cv2.resize(rgb, (S, S), interpolation=cv2.INTER_LINEAR)) * 2 - 1
            item["rgb_local"] = as_chw(crop_box(rgb, box, S)) * 2 - 1
        return item
