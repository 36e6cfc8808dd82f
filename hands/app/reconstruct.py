"""The Reconstruct tab's jobs: a photo or video through `hands fit` or `hands reconstruct`, and live webcam frames."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from hands.app.config import AppConfig
from hands.app.jobs import AppError, copy_upload, missing_file, new_run_folder, run_verb
from hands.io.frames import source_kind

Predictor = Literal["fit", "acr"]
PREDICTORS: dict[str, str] = {"fit": "Fit front end (MediaPipe + MANO fitting, no trained weights)",
                              "acr": "ACR (needs wild.pkl)"}


@dataclass
class ReconstructResult:
    """What a run shows: the overlay, the browser video, the scene of both hands, one row per hand, the files."""

    folder: Path
    overlay: Path | None
    video: Path | None
    scene: Path | None
    rows: list[list] = field(default_factory=list)
    downloads: list[Path] = field(default_factory=list)
    message: str = ""


def predictor_status(config: AppConfig) -> dict[str, str | None]:
    """Per predictor: None when it can run, else the sentence naming the missing file."""
    return {"fit": None, "acr": missing_file(config.acr_checkpoint, "ACR's weights (wild.pkl)", "--acr_checkpoint")}


def hand_faces() -> dict[str, np.ndarray]:
    """Triangles (1538, 3) of the MANO layers the verbs build (official MANO files when present, else the built-in hand)."""
    from hands.mano import build_mano

    return {side: build_mano(side, pose_convention="flat").faces.cpu().numpy() for side in ("right", "left")}


def write_scene(npz: Path, target: Path, faces: dict[str, np.ndarray]) -> Path | None:
    """The hands of one frame's `.npz` as one .glb (a mesh per hand, named by side, 778 vertices each), in the
    camera frame turned to glTF's axes (y up) so that the viewer shows them as in the photo; None without hands."""
    from hands.io.mesh import OPENCV_TO_GLTF, save_glb_scene
    from hands.prediction.types import load_predictions
    from hands.render.hand_overlay import HAND_COLOURS

    hands = load_predictions(npz)
    if not hands:
        return None
    meshes = {f"{hand.side}_hand": (hand.vertices, faces[hand.side], np.tile(HAND_COLOURS[hand.side], (len(hand.vertices), 1)))
              for hand in hands}
    return save_glb_scene(target, meshes, axes=OPENCV_TO_GLTF)


def reconstruct(config: AppConfig, upload: str, predictor: Predictor = "fit") -> ReconstructResult:
    """Run `hands fit` (or `hands reconstruct` for ACR) on an uploaded photo or video into a new run folder
    `<out>/reconstruct/<time>_<name>/` (input/, hands/ as the verb writes it, scene.glb, preview.mp4 for videos)."""
    if predictor not in PREDICTORS:
        raise AppError(f"unknown predictor {predictor!r}; one of {', '.join(PREDICTORS)}")
    missing = predictor_status(config)[predictor]
    if missing:
        raise AppError(missing)
    if not upload:
        raise AppError("upload a photo or a video first")
    folder = new_run_folder(config.out, "reconstruct", Path(upload).name)
    media = copy_upload(upload, folder / "input", config.max_upload_bytes)
    kind = source_kind(str(media))
    hands_dir = folder / "hands"
    argv = ["fit" if predictor == "fit" else "reconstruct", "--inputs", str(media), "--out", str(hands_dir),
            "--save_mesh", "--device", config.device]
    argv += ["--checkpoint", config.acr_checkpoint] if predictor == "acr" else []
    argv += ["--temporal"] if kind == "video" else []
    run_verb(argv)
    summary = json.loads((hands_dir / "summary.json").read_text())
    rows = [[frame["frame"], hand["side"], hand["score"], hand["reprojection_px"]]
            for frame in summary["frames"] for hand in frame["hands"]]
    with_hands = [frame["frame"] for frame in summary["frames"] if frame["hands"]]
    shown = with_hands[0] if with_hands else summary["frames"][0]["frame"]
    scene = write_scene(hands_dir / f"{shown}.npz", folder / "scene.glb", hand_faces()) if with_hands else None
    made = sorted(p for p in hands_dir.glob("*.mp4") if not p.name.endswith(".part.mp4"))  # videos only
    video = None
    if made:
        from hands.io.video import browser_video

        video = browser_video(made[0], folder / "preview.mp4")
    files = [hands_dir / f"{shown}.npz", *(hands_dir / f"{shown}_{side}.obj" for side in ("right", "left"))]
    files = [path for path in files if path.is_file()]
    downloads = [*files, *([scene] if scene else []), hands_dir / "summary.json", hands_dir / "config.yaml", *made]
    frames = len(summary["frames"])
    message = (f"{len(rows)} hand(s) in {frames} frame(s)" if kind == "video" else
               f"{len(rows)} hand(s): " + ", ".join(f"{r[1]} ({r[2]:.2f})" for r in rows) if rows else "no hand found")
    return ReconstructResult(folder, hands_dir / f"{shown}.jpg", video, scene, rows, downloads,
                             f"{message} - files in {folder}")


class LiveReconstruction:
    """Webcam frames in, overlays out: the fit front end tracking hands frame by frame (fast solver, smoothed)."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.predictors: dict[bool, object] = {}

    def overlay(self, frame: np.ndarray, mirrored: bool = True) -> np.ndarray:
        """The frame (H, W, 3) uint8 RGB with the tracked hands drawn over it."""
        from hands.fit.pipeline import FitPredictor, FitPredictorConfig
        from hands.prediction.runner import draw_predictions

        with self.lock:
            if mirrored not in self.predictors:
                self.predictors[mirrored] = FitPredictor(FitPredictorConfig(
                    device=self.config.device, tracking=True, temporal=True, chunk=1, solver="fast", mirrored=mirrored))
            predictor = self.predictors[mirrored]
            hands = predictor.predict(np.ascontiguousarray(frame[..., :3]))
            return draw_predictions(frame[..., :3], hands, predictor.faces)

    def close(self) -> None:
        for predictor in self.predictors.values():
            predictor.close()
        self.predictors.clear()
