"""`demo.py --demo_mode fit`: MediaPipe keypoints + MANO fitting on any photo, folder, video or webcam.

Per frame it writes the photo with the fitted hands and the detected keypoints drawn over it (`<name>.jpg`), the
hands' MANO parameters, camera, joints and vertices (`<name>.npz`, keys `<side>_<field>`), optional `.obj`
meshes; then `summary.json`, `config.yaml` and, for folders and videos, an `.mp4`. With `temporal`, frames are
fitted in chunks as sequences (one shape per hand, smooth motion); a webcam (or `chunk` 1) is fitted frame by
frame and smoothed with One-Euro filters instead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from hands.fit.landmarker import HandDetector
from hands.fit.mano_fit import FitConfig, HandFit
from hands.fit.pipeline import FitSmoother, HandFitter
from hands.io.atomic import atomic_path, check_writable
from hands.io.frames import read_frames, source_kind
from hands.io.images import write_image
from hands.io.mesh import save_obj
from hands.io.video import VideoFileWriter
from hands.render.draw import draw_skeleton
from hands.render.hand_overlay import render_hands_over

log = logging.getLogger(__name__)


@dataclass
class FitDemoOptions:
    """What the fit demo reads and writes."""

    inputs: str | None
    """An image, a folder of images, a video file; None: the webcam."""
    out: str = "demos_outputs/fit"
    overwrite: bool = False
    temporal: bool = False
    """Fit consecutive frames together (shared shape, smooth motion)."""
    chunk: int = 16
    """Frames fitted together with `temporal` (videos and folders)."""
    mirrored: bool = False
    """The frames were flipped left-right (a selfie preview saved as shown): swap MediaPipe's handedness. A webcam
    read through OpenCV is not mirrored."""
    save_mesh: bool = False
    cam_id: int = 0
    max_frames: int = 0
    landmarker: str | None = None
    mano_dir: str | None = None
    device: str = "cpu"
    focal_ratio: float = 2.0


def draw_fits(frame: np.ndarray, fits: list[HandFit], faces: dict) -> np.ndarray:
    """The frame with the fitted meshes blended in and the detected keypoints drawn on top."""
    if not fits:
        return frame.copy()
    picture = render_hands_over(frame, [(f.vertices, faces[f.side], f.side) for f in fits], fits[0].K)
    for fit in fits:
        picture = draw_skeleton(picture, fit.keypoints, thickness=1, radius=2)
    return picture


def run_fit_demo(options: FitDemoOptions) -> Path:
    """Run the demo; returns the output folder."""
    out = Path(options.out)
    for name in ("summary.json", "config.yaml"):
        check_writable(out / name, options.overwrite)
    mode = source_kind(options.inputs)
    video = mode in ("video", "webcam") or (mode == "folder" and options.temporal)  # track hands across frames
    detector = HandDetector(options.landmarker, mirrored=options.mirrored, video=video)
    fitter = HandFitter(detector, FitConfig(device=options.device, focal_ratio=options.focal_ratio), options.mano_dir)
    faces = {side: layer.faces.cpu() for side, layer in fitter.layers.items()}
    chunk = options.chunk if options.temporal and mode in ("folder", "video") else 1
    smoother = FitSmoother(fitter.layers) if options.temporal and chunk == 1 else None
    summary: list[dict] = []
    video_path = out / f"{Path(options.inputs or 'webcam').stem}_fit.mp4"
    try:
        with VideoFileWriter(video_path) as writer:
            pending: list[tuple[str, np.ndarray]] = []
            frames = read_frames(mode, options.inputs, options.cam_id, options.max_frames or (300 if mode == "webcam" else 0))
            for name, frame in tqdm(frames, desc=f"fit {mode}", unit="frame"):
                pending.append((name, frame))
                if len(pending) >= chunk:
                    summary += write_chunk(pending, fitter, options, faces, writer if mode in ("folder", "video") else None,
                                           smoother)
                    pending = []
            if pending:
                summary += write_chunk(pending, fitter, options, faces, writer if mode in ("folder", "video") else None,
                                       smoother)
    finally:
        fitter.close()
    with atomic_path(out / "config.yaml", options.overwrite) as tmp:
        OmegaConf.save(OmegaConf.create({"mode": mode, **asdict(options)}), tmp)
    with atomic_path(out / "summary.json", options.overwrite) as tmp:
        tmp.write_text(json.dumps({"mode": mode, "inputs": options.inputs, "frames": summary}, indent=1))
    found = sum(len(s["hands"]) for s in summary)
    log.info("fitted %d hands in %d frames; wrote %s", found, len(summary), out)
    return out


def write_chunk(frames: list[tuple[str, np.ndarray]], fitter: HandFitter, options: FitDemoOptions, faces: dict,
                writer: VideoFileWriter | None, smoother: FitSmoother | None = None) -> list[dict]:
    """Fit a chunk of frames and write each frame's outputs; returns their summary entries."""
    images = [frame for _, frame in frames]
    fits_per_frame = fitter.fit_frames(images, smooth=options.temporal and len(images) > 1)
    if smoother is not None:
        fits_per_frame = [smoother(fits) for fits in fits_per_frame]
    out = Path(options.out)
    entries = []
    for (name, frame), fits in zip(frames, fits_per_frame):
        picture = draw_fits(frame, fits, faces)
        write_image(out / f"{name}.jpg", picture, overwrite=True)
        arrays = {"sides": np.array([f.side for f in fits])}
        for fit in fits:
            arrays.update({f"{fit.side}_{key}": value for key, value in fit.to_dict().items()})
            if options.save_mesh:
                save_obj(out / f"{name}_{fit.side}.obj", fit.vertices, faces[fit.side].numpy(), overwrite=True)
        with atomic_path(out / f"{name}.npz", overwrite=True) as tmp, open(tmp, "wb") as stream:
            np.savez(stream, **arrays)
        if writer is not None:
            writer.write(picture)
        entries.append({"frame": name, "hands": [{"side": f.side, "reprojection_px": round(f.reprojection_error, 2)}
                                                 for f in fits]})
    return entries
