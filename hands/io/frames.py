"""Frames from an image, a folder of images, a video file or a webcam, as uint8 RGB arrays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from hands.io.images import ImageReadError, read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def natural_key(path: Path) -> list:
    """Sort key that orders frame2 before frame10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    """The images (by suffix) directly in a folder, in natural order."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)


def source_kind(inputs: str | None) -> str:
    """"image", "folder", "video" or "webcam" (no inputs) for a path given on the command line."""
    if not inputs:
        return "webcam"
    path = Path(inputs)
    if path.is_dir():
        return "folder"
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def frame_names(files: list[Path]) -> list[str]:
    """Output names of image files: the stem, or the whole name with its dot as '_' where two files share a stem
    (a.jpg and a.png give a_jpg and a_png)."""
    stems = [path.stem for path in files]
    return [path.name.replace(".", "_") if stems.count(path.stem) > 1 else path.stem for path in files]


def read_frames(mode: str, inputs: str | None, cam_id: int = 0, max_frames: int = 0,
                failures: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 RGB frame (H, W, 3)) from an image, a folder (natural order), a video or a camera. With a
    `failures` list, an unreadable file of a folder is skipped and recorded there as (name, reason) instead of
    ending the run."""
    limit = max_frames or None
    if mode == "image":
        yield Path(inputs).stem, read_image(inputs)
        return
    if mode == "folder":
        folder = Path(inputs)
        if not folder.is_dir():
            raise FileNotFoundError(f"--inputs {folder} is not a folder")
        files = image_files(folder)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
        for path, name in list(zip(files, frame_names(files)))[:limit]:
            try:
                image = read_image(path)
            except ImageReadError as error:
                if failures is None:
                    raise
                failures.append((name, str(error)))
                continue
            yield name, image
        return
    source = cam_id if mode == "webcam" else inputs
    if mode == "video" and not Path(inputs).is_file():
        raise FileNotFoundError(f"video not found: {inputs}")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise OSError(f"could not open {'camera ' + str(source) if mode == 'webcam' else source}")
    index = 0
    try:
        while limit is None or index < limit:
            ok, frame = capture.read()
            if not ok:
                break
            yield f"{index:06d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
