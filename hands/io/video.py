"""Video files written safely: frames go to `<name>.part.mp4`, renamed to the final name when complete."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class VideoFileWriter:
    """Write uint8 RGB frames (H, W, 3) to an .mp4 (mp4v); the file appears under its name only when closed
    without error. Use as a context manager."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path, self.fps = Path(path), fps
        self.partial = self.path.with_name(self.path.name + ".part.mp4")
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (frame.shape[1], frame.shape[0]))
            if not self.writer.isOpened():
                raise OSError(f"could not open a video writer for {self.partial}")
        self.writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            if keep:
                self.partial.replace(self.path)
            else:
                self.partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoFileWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(keep=kind is None)
