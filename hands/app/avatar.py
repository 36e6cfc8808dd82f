"""The Avatar tab's jobs: OHTA's one-shot input (a photo's fit or an uploaded .zip), creation with the prior,
a turntable, a pose animation, the .glb export and texture editing with a painted mask."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hands.app.config import AppConfig
from hands.app.jobs import AppError, copy_upload, extract_oneshot_zip, missing_file, new_run_folder, run_verb
from hands.io.video import browser_video

ANIMATIONS = ("rest", "relaxed", "fist", "point", "spread")
ANIMATION_FRAMES = 24
"""Frames of a pose animation: rest -> the pose -> rest."""


@dataclass
class AvatarResult:
    """A created avatar: its folder (as `hands avatar create` writes it), the one-shot input image it was made
    from (`<run>/input/img/<name>`), the turntable video and the .glb."""

    folder: Path
    input_image: Path
    turntable: Path
    glb: Path
    message: str = ""


def avatar_status(config: AppConfig) -> str | None:
    """None when OHTA's prior is present, else the sentence naming the missing file."""
    return missing_file(config.ohta_prior, "OHTA's prior (pretrained_prior_learning.tar)", "--ohta_prior")


def oneshot_from_upload(config: AppConfig, upload: str) -> tuple[Path, Path]:
    """(run folder, the one-shot input image) from a photo (fitted, as `hands prepare ohta_input` does) or a .zip
    of OHTA's one-shot layout, in a new run folder `<out>/avatar/<time>_<name>/input/`."""
    if not upload:
        raise AppError("upload a photo or a one-shot .zip first")
    folder = new_run_folder(config.out, "avatar", Path(upload).name)
    if Path(upload).suffix.lower() == ".zip":
        archive = copy_upload(upload, folder / "upload", config.max_upload_bytes)
        return folder, extract_oneshot_zip(archive, folder / "input", 4 * config.max_upload_bytes)
    photo = copy_upload(upload, folder / "upload", config.max_upload_bytes)
    run_verb(["prepare", "ohta_input", str(photo), "--out", str(folder / "input"), "--size", str(config.avatar_size),
              "--device", config.device])
    return folder, folder / "input" / "img" / f"{photo.stem}.png"


def create(config: AppConfig, folder: Path, image: Path) -> AvatarResult:
    """`hands avatar create` from the one-shot input into `<folder>/<name>/`, then its turntable (.mp4 for the
    browser beside the CLI's) and `avatar.glb`."""
    missing = avatar_status(config)
    if missing:
        raise AppError(missing)
    result = run_verb(["avatar", "create", "--input", str(image), "--checkpoint", config.ohta_prior, "--out", str(folder),
                       "--device", config.device, f"size={config.avatar_size}", *config.avatar_overrides])
    result = Path(result)
    turntable = render_poses(config, result, np.zeros((1, 45)), "turntable", config.turntable_frames)
    glb = Path(run_verb(["avatar", "export", "--avatar", str(result / "avatar"), "--out", str(result / "avatar.glb"),
                         "--device", config.device]))
    return AvatarResult(result, image, turntable, glb, f"avatar created - files in {result}")


def pose_animation(name: str, frames: int = ANIMATION_FRAMES) -> np.ndarray:
    """Finger poses (frames, 45) going from rest to the named pose and back (flat-hand axis-angle)."""
    from hands.mano.poses import named_hand_pose

    if name not in ANIMATIONS:
        raise AppError(f"unknown pose {name!r}; one of {', '.join(ANIMATIONS)}")
    weights = np.sin(np.linspace(0, np.pi, frames))
    return weights[:, None] * named_hand_pose(name)[None]


def render_poses(config: AppConfig, result: Path, poses: np.ndarray, name: str, turntable: int = 0) -> Path:
    """`hands avatar animate` through `poses` (N, 45) (and a turntable of that many frames) to `<result>/<name>.mp4`;
    returns the browser copy `<name>_h264.mp4`."""
    poses_file = result / f"{name}_poses.npy"
    np.save(poses_file, poses)
    video = run_verb(["avatar", "animate", "--avatar", str(result / "avatar"), "--poses", str(poses_file), "--turntable",
                      str(turntable), "--out", str(result / f"{name}.mp4"), "--device", config.device, "--overwrite"])
    return browser_video(Path(video), result / f"{name}_h264.mp4", overwrite=True)


def animate(config: AppConfig, result: Path, name: str) -> Path:
    """The avatar through the named pose (rest -> pose -> rest) as a browser video."""
    return render_poses(config, result, pose_animation(name), f"animation_{name}")


def edit(config: AppConfig, result: AvatarResult, painted: np.ndarray, strokes: np.ndarray) -> AvatarResult:
    """Paint strokes into the avatar (`hands avatar edit`): `painted` (H, W, 3) uint8 is the one-shot input image
    with the strokes on it, `strokes` (H, W) bool where they are. The edit starts from the created avatar, reuses
    the input's annotation, and lands in `<result>/edits/<name>/` with its own turntable and .glb."""
    from hands.io.images import write_image

    annotation = result.input_image.parent.parent / "anno" / f"{result.input_image.stem}.pkl"
    if not annotation.is_file():
        raise AppError(f"the one-shot annotation {annotation} is missing")
    if painted.shape[:2] != strokes.shape or strokes.shape != _image_size(result.input_image):
        raise AppError(f"the painted image is {painted.shape[1]}x{painted.shape[0]}; paint on the input image as shown")
    if not strokes.any():
        raise AppError("paint on the input image first (the painted pixels are what the edit copies)")
    edits = result.folder / "edits"
    k = 1 + (sum(1 for p in edits.glob("input_*") if p.is_dir()) if edits.is_dir() else 0)
    root, name = edits / f"input_{k}", f"{result.folder.name}_edit{k}"
    write_image(root / "img" / f"{name}.png", painted)
    write_image(root / "mask" / f"{name}.png", strokes.astype(np.uint8) * 255)
    (root / "anno").mkdir(parents=True)
    shutil.copyfile(annotation, root / "anno" / f"{name}.pkl")
    edited = Path(run_verb(["avatar", "edit", "--input", str(root / "img" / f"{name}.png"), "--checkpoint",
                            str(result.folder / "avatar"), "--out", str(edits), "--device", config.device,
                            f"size={config.avatar_size}", *config.avatar_overrides]))
    turntable = render_poses(config, edited, np.zeros((1, 45)), "turntable", config.turntable_frames)
    glb = Path(run_verb(["avatar", "export", "--avatar", str(edited / "avatar"), "--out", str(edited / "avatar.glb"),
                         "--device", config.device]))
    return AvatarResult(edited, root / "img" / f"{name}.png", turntable, glb, f"edit painted in - files in {edited}")


def _image_size(path: Path) -> tuple[int, int]:
    from hands.io.images import read_image

    return read_image(path).shape[:2]
