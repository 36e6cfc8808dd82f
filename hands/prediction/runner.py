"""The frame runner: any `HandPredictor` over an image, a folder of frames, a video or a webcam.

Per frame it writes the overlay `<frame>.jpg` (meshes blended in, detected keypoints drawn when the method has
them), the hands as `<frame>.npz` (`hands.prediction.save_predictions`) and, with `save_mesh`, one
`<frame>_<side>.obj` per hand in the camera frame. At the end: `summary.json` (one schema for every method),
`config.yaml` (what made the run) and, for folders and videos, `<stem>_<video_suffix>.mp4`.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from hands.config import check_fields
from hands.io.atomic import atomic_path
from hands.io.frames import read_frames, source_kind
from hands.io.images import write_image
from hands.io.mesh import save_obj
from hands.io.video import VideoFileWriter
from hands.prediction.types import HandPrediction, HandPredictor, save_predictions
from hands.render.draw import draw_skeleton
from hands.render.hand_overlay import render_hands_over

log = logging.getLogger(__name__)

WEBCAM_FRAMES = 300
"""A webcam run stops after this many frames unless `max_frames` says otherwise."""


@dataclass
class RunOptions:
    """What the frame runner reads and writes."""

    inputs: str | None = None
    """An image, a folder of images or a video file; empty: the webcam."""
    out: str = "demos_outputs"
    """Output folder: overlays, per-frame .npz, summary.json, config.yaml, .mp4."""
    overwrite: bool = False
    """Replace the outputs of an earlier run in `out`."""
    save_mesh: bool = False
    """Also write each hand as `<frame>_<side>.obj` (meters, camera frame)."""
    cam_id: int = 0
    """Webcam index (OpenCV)."""
    max_frames: int = 0
    """Stop after this many frames (0: all; the webcam: 300)."""
    strict: bool = False
    """Stop at the first unreadable frame of a folder (default: skip it, list it in summary.json, go on)."""

    def __post_init__(self) -> None:
        check_fields(self, at_least={"cam_id": 0, "max_frames": 0})


#: What a run writes into its folder (the only files `overwrite` replaces or, when this run does not write them, removes).
PRODUCT_SUFFIXES = (".jpg", ".npz", ".obj", ".mp4")
RECORDS = ("summary.json", "config.yaml")


class NothingProcessedError(ValueError):
    """Not one frame could be read."""


def check_output_folder(out: Path, inputs: str | None, overwrite: bool) -> None:
    """Refuse an output folder that holds the inputs (always) or files of an earlier run (unless `overwrite`)."""
    if inputs:
        source = Path(inputs).resolve()
        if source == out.resolve() or out.resolve() in source.parents:
            raise FileExistsError(f"--out {out} holds the inputs {inputs}: choose another output folder")
    if out.is_dir() and not overwrite:
        earlier = sorted(p.name for p in out.iterdir() if p.name in RECORDS or p.suffix in PRODUCT_SUFFIXES)
        if earlier:
            raise FileExistsError(f"{out} holds an earlier run ({', '.join(earlier[:3])}{', ...' if len(earlier) > 3 else ''}); "
                                  "pass --overwrite to replace it or choose another --out")


def remove_stale_outputs(out: Path, written: set[Path]) -> list[Path]:
    """Delete the earlier run's products that this run did not write (so the folder holds one run)."""
    stale = [p for p in out.iterdir() if p.is_file() and p.suffix in PRODUCT_SUFFIXES and p not in written
             and not p.name.endswith(".part.mp4")]
    for path in stale:
        path.unlink()
    return stale


def summary_entry(name: str, hands: list[HandPrediction]) -> dict[str, Any]:
    """One frame of summary.json: per hand its side, score, 2D box (x, y, w, h pixels) and the reprojection error
    (pixels) against the detected keypoints, or null for methods without them."""
    entries = []
    for hand in hands:
        lo, hi = hand.keypoints_2d.min(0), hand.keypoints_2d.max(0)
        error = hand.reprojection_error
        entries.append({"side": hand.side, "score": round(hand.score, 4),
                        "keypoints_2d_bbox": [round(float(v), 1) for v in (*lo, *(hi - lo))],
                        "reprojection_px": None if error is None else round(error, 2)})
    return {"frame": name, "hands": entries}


def draw_predictions(frame: np.ndarray, hands: list[HandPrediction], faces: dict[str, np.ndarray]) -> np.ndarray:
    """The frame (H, W, 3) uint8 with the hands' meshes blended in (ACR's colours) and, where a method detected
    keypoints, those drawn on top."""
    if not hands:
        return frame.copy()
    picture = render_hands_over(frame, [(hand.vertices, faces[hand.side], hand.side) for hand in hands], hands[0].K)
    for hand in hands:
        if "detected_keypoints_2d" in hand.extras:
            picture = draw_skeleton(picture, hand.extras["detected_keypoints_2d"], thickness=1, radius=2)
    return picture


def _chunks(frames: Iterator[tuple[str, np.ndarray]], size: int) -> Iterator[list[tuple[str, np.ndarray]]]:
    pending: list[tuple[str, np.ndarray]] = []
    for item in frames:
        pending.append(item)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def _predictions(predictor: HandPredictor, frames: Iterator[tuple[str, np.ndarray]], length: int,
                 stream: bool) -> Iterator[tuple[str, np.ndarray, list[HandPrediction]]]:
    """(name, frame, hands) in order: `predict_sequence` over chunks of `length` frames, `predict_stream` over
    videos and webcams when the predictor has it (it may work on the next frame while one is written), else
    `predict` frame by frame."""
    streamer = getattr(predictor, "predict_stream", None)
    if length == 1 and stream and streamer is not None:
        pending: deque[tuple[str, np.ndarray]] = deque()

        def images() -> Iterator[np.ndarray]:
            for item in frames:
                pending.append(item)
                yield item[1]

        for hands in streamer(images()):
            name, frame = pending.popleft()
            yield name, frame, hands
        return
    for chunk in _chunks(frames, length):
        images = [frame for _, frame in chunk]
        results = predictor.predict_sequence(images) if length > 1 else [predictor.predict(images[0])]
        for (name, frame), hands in zip(chunk, results):
            yield name, frame, hands


def run_frames(predictor: HandPredictor, options: RunOptions, config: dict[str, Any] | None = None,
               method: str = "hands", video_suffix: str = "output") -> Path:
    """Run `predictor` over `options.inputs` and write every output; returns the output folder. `config` (the
    whole configuration of the run) is saved as config.yaml. Predictors with `predict_sequence` get
    `sequence_length` consecutive frames at a time (folders and videos only)."""
    out = Path(options.out)
    check_output_folder(out, options.inputs, options.overwrite)  # also refuses an earlier summary.json / config.yaml
    mode = source_kind(options.inputs)
    length = getattr(predictor, "sequence_length", 1) if mode in ("folder", "video") else 1
    sequence = getattr(predictor, "predict_sequence", None) if length > 1 else None
    max_frames = options.max_frames or (WEBCAM_FRAMES if mode == "webcam" else 0)
    failures: list[tuple[str, str]] = []
    frames = read_frames(mode, options.inputs, options.cam_id, max_frames, None if options.strict else failures)
    summary: list[dict] = []
    written: set[Path] = set()
    video_path = out / f"{Path(options.inputs or 'webcam').stem}_{video_suffix}.mp4"
    with VideoFileWriter(video_path) as writer, tqdm(desc=f"{method} {mode}", unit="frame") as progress:
        for name, frame, hands in _predictions(predictor, frames, length if sequence is not None else 1,
                                               mode in ("video", "webcam")):
            picture = draw_predictions(frame, hands, predictor.faces)
            written.add(write_image(out / f"{name}.jpg", picture, overwrite=True))
            written.add(save_predictions(out / f"{name}.npz", hands, overwrite=True))
            if options.save_mesh:
                for hand in hands:
                    written.add(save_obj(out / f"{name}_{hand.side}.obj", hand.vertices,
                                         np.asarray(predictor.faces[hand.side]), overwrite=True))
            if mode in ("folder", "video"):
                writer.write(picture)
            summary.append(summary_entry(name, hands))
            progress.update()
    for name, reason in failures:
        log.warning("skipped frame %s: %s", name, reason)
    if not summary:
        raise NothingProcessedError(f"no frame of {options.inputs} could be read" + (f" ({failures[0][1]})" if failures else ""))
    if writer.frames:
        written.add(video_path)
    record = {"method": method, "mode": mode, **(config or {})}
    with atomic_path(out / "config.yaml", options.overwrite) as tmp:
        OmegaConf.save(OmegaConf.create(record), tmp)
    with atomic_path(out / "summary.json", options.overwrite) as tmp:
        tmp.write_text(json.dumps({"method": method, "mode": mode, "inputs": options.inputs, "frames": summary,
                                   "skipped": [{"frame": name, "reason": reason} for name, reason in failures]}, indent=1))
    if options.overwrite:
        for path in remove_stale_outputs(out, written):
            log.info("removed %s (from the earlier run)", path.name)
    found = sum(len(entry["hands"]) for entry in summary)
    log.info("%d hands in %d frames; wrote %s", found, len(summary), out)
    return out
