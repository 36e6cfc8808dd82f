"""ACR demo on an image, a folder of frames, a video or a webcam: overlays, per-frame parameters, meshes, video.

Fixes over the original demo: image mode works, every flag is honoured, nothing is written to the working
directory, and it runs headless on the CPU (our renderer needs neither OpenGL nor pytorch3d).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hands.acr.checkpoint import CheckpointError, load_official_checkpoint
from hands.acr.model import ACRNet, ACRNetConfig
from hands.acr.postprocess import CENTRE, HandDetection, PostprocessConfig, input_intrinsics, input_pixels, place_hand
from hands.acr.predictor import ACRPredictor, Letterbox
from hands.geometry.smoothing import HandSmoother
from hands.io.atomic import atomic_path, check_writable
from hands.io.frames import read_frames
from hands.io.images import write_image
from hands.io.mesh import save_obj
from hands.io.video import VideoFileWriter
from hands.render.hand_overlay import render_hands_over

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    mode: str
    inputs: str | None
    out: str = "demos_outputs"
    checkpoint: str = "checkpoints/acr/wild.pkl"
    temporal: bool = False
    smooth_coeff: float = 4.0
    save_mesh: bool = False
    overwrite: bool = False
    device: str = "cpu"
    mano_dir: str | None = None
    threshold: float = 0.35
    phantom_guard: bool = False
    placement: str = "pnp"
    pad_value: int = 255
    cam_id: int = 0
    max_frames: int = 0
    input_size: int = 512


def load_acr_model(path: str | Path) -> ACRNet:
    """ACRNet with the official `wild.pkl`, or with a checkpoint of our trainer (`.ckpt`: weights under `model.`,
    layer widths read from the tensor shapes)."""
    path = Path(path)
    if path.suffix != ".ckpt":
        model = ACRNet()
        load_official_checkpoint(model, path)
        return model
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    config = ACRNetConfig(backbone_width=weights["backbone.transition1.0.0.weight"].shape[0],
                          head_width=weights["right_head.params.0.0.weight"].shape[0],
                          pose_width=weights["parts.pose_features.0.weight"].shape[0],
                          shape_width=weights["parts.shape_features.0.weight"].shape[0])
    model = ACRNet(config)
    model.load_state_dict(weights)
    return model


def original_camera(box: Letterbox, focal: float) -> torch.Tensor:
    """Intrinsics (3,3) in original-image pixels of the pinhole camera the hands were placed for, with pixel
    centres at integer coordinates (the renderer's convention; ACR's own coordinates are 0.5 px larger)."""
    K = input_intrinsics(box.input_size, focal)
    f = K[0, 0] / box.scale
    cx, cy = box.to_original(K[:2, 2]) - 0.5
    return torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def render_hands(image: np.ndarray, hands: list[HandDetection], box: Letterbox, faces: dict, focal: float) -> np.ndarray:
    """The hands drawn over the frame (alpha 0.9), shaded, in ACR's colours."""
    meshes = [(hand.vertices + hand.translation, faces[hand.side], hand.side) for hand in hands]
    return render_hands_over(image, meshes, original_camera(box, focal))


def run_demo(options: DemoOptions) -> Path:
    """Run the demo; returns the output folder (overlays, per-frame .npz, optional .obj, summary.json, .mp4)."""
    out = Path(options.out)
    check_writable(out / "summary.json", options.overwrite)
    try:
        model = load_acr_model(options.checkpoint)
    except CheckpointError as error:
        raise SystemExit(f"error: {error}") from None
    config = PostprocessConfig(threshold=options.threshold, phantom_guard=options.phantom_guard,
                               placement=options.placement, pad_value=options.pad_value)
    predictor = ACRPredictor(model, options.input_size, config, options.mano_dir, options.device)
    faces = {side: layer.faces for side, layer in predictor.layers.items()}
    smoothers = {side: HandSmoother(options.smooth_coeff) for side in ("right", "left")}
    summary = []
    video_path = out / f"{Path(options.inputs or 'webcam').stem}_output.mp4"
    with VideoFileWriter(video_path) as writer:
        frames = read_frames(options.mode, options.inputs, options.cam_id, options.max_frames)
        for name, frame in tqdm(frames, desc=f"acr {options.mode}", unit="frame"):
            hands, box = predictor.predict(frame)
            if options.temporal:
                hands = [smooth(hand, smoothers[hand.side], predictor) for hand in hands]
            picture = render_hands(frame, hands, box, faces, config.focal)
            write_image(out / f"{name}.jpg", picture, overwrite=True)
            arrays = {"sides": np.array([h.side for h in hands])}
            for h in hands:
                joints_2d = box.to_original(h.joints_2d.cpu().numpy())
                for key, value in (("score", h.score), ("camera", h.camera), ("translation", h.translation),
                                   ("global_orient", h.global_orient), ("hand_pose", h.hand_pose), ("betas", h.betas),
                                   ("joints", h.joints), ("joints_2d", joints_2d), ("vertices", h.vertices)):
                    arrays[f"{h.side}_{key}"] = np.asarray(value.detach().cpu() if torch.is_tensor(value) else value)
                if options.save_mesh:
                    save_obj(out / f"{name}_{h.side}.obj", (h.vertices + h.translation).cpu().numpy(), faces[h.side].cpu().numpy(),
                             overwrite=True)
            with atomic_path(out / f"{name}.npz", overwrite=True) as tmp, open(tmp, "wb") as stream:
                np.savez(stream, **arrays)
            summary.append({"frame": name, "hands": [{"side": h.side, "score": round(h.score, 4),
                                                      "joints_2d_bbox": _bbox(box.to_original(h.joints_2d.cpu().numpy()))}
                                                     for h in hands]})
            if options.mode in ("folder", "video"):
                writer.write(picture)
    with atomic_path(out / "summary.json", options.overwrite) as tmp:
        tmp.write_text(json.dumps({"mode": options.mode, "inputs": options.inputs, "checkpoint": options.checkpoint,
                                   "frames": summary}, indent=1))
    log.info("wrote %d frames to %s", len(summary), out)
    return out


def _bbox(points: np.ndarray) -> list[float]:
    lo, hi = points.min(0), points.max(0)
    return [round(float(v), 1) for v in (*lo, *(hi - lo))]


def smooth(hand: HandDetection, smoother: HandSmoother, predictor: ACRPredictor) -> HandDetection:
    """The hand with One-Euro-filtered parameters and its mesh recomputed."""
    orient, pose, betas = smoother(hand.global_orient, hand.hand_pose, hand.betas)
    layer = predictor.layers[hand.side]
    out = layer(orient[None].to(layer.v_template), pose[None].to(layer.v_template), betas[None].to(layer.v_template))
    root = out.joints[:, CENTRE:CENTRE + 1]
    hand.global_orient, hand.hand_pose, hand.betas = orient, pose, betas
    hand.vertices, hand.joints = (out.vertices - root)[0], (out.joints - root)[0]
    camera = hand.camera.to(hand.joints)
    hand.joints_2d = input_pixels(camera[0] * hand.joints[:, :2] + camera[1:3], predictor.input_size)
    hand.translation = place_hand(camera, hand.joints, hand.joints_2d, predictor.input_size, predictor.config)
    return hand
