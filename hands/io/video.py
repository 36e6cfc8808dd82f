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


def browser_video(source: str | Path, target: str | Path, overwrite: bool = False) -> Path:
    """Re-encode a video (e.g. the mp4v files `VideoFileWriter` writes) as H.264 yuv420p .mp4, which browsers
    play; odd frame sides are padded by one black pixel (yuv420p needs even ones). Written atomically."""
    import av

    from hands.io.atomic import atomic_path

    with av.open(str(source)) as reader, atomic_path(target, overwrite) as tmp:
        stream_in = reader.streams.video[0]
        rate = stream_in.average_rate or 30
        with av.open(str(tmp), mode="w", format="mp4") as writer:
            stream = writer.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            stream.width, stream.height = stream_in.width + stream_in.width % 2, stream_in.height + stream_in.height % 2
            for frame in reader.decode(stream_in):
                image = frame.to_ndarray(format="rgb24")
                height, width = image.shape[:2]
                image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)))
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    writer.mux(packet)
            for packet in stream.encode():
                writer.mux(packet)
    return Path(target)
