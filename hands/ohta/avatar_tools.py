"""The `create.py animate | export | interpolate | sample` commands (see create.py's help)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hands.io.atomic import atomic_directory, atomic_write_bytes, check_writable
from hands.io.images import encode_image
from hands.io.mesh import save_glb, save_obj
from hands.io.video import VideoFileWriter
from hands.mano import load_mano_model
from hands.ohta.animation import (
    PALM_TO_CAMERA,
    default_sequence,
    framing_view,
    interpolate_identities,
    read_pose_sequence,
    render_view,
    sample_identities,
    turned,
    vertex_colours,
    with_fingers,
)
from hands.ohta.checkpoint import load_avatar, read_avatar_metadata
from hands.ohta.creation import ViewGeometry
from hands.ohta.evaluation import evaluate_avatar, evaluation_frames
from hands.ohta.oneshot import DECIMETERS
from hands.utils.device import resolve_device

log = logging.getLogger("create")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output file or folder")
    parser.add_argument("--size", type=int, default=256, help="image side when no creation camera is stored")
    parser.add_argument("--mano_dir", help="folder with MANO_RIGHT.pkl (default models/mano/ or the built-in hand)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--overwrite", action="store_true")


def _stored_view(avatar_path: str | Path) -> ViewGeometry | None:
    view = read_avatar_metadata(avatar_path).get("view")
    if not view:
        return None
    tensor = lambda key: torch.tensor(view[key], dtype=torch.float32)  # noqa: E731
    # Avatars written before the view held meters stored the release's decimetre Th.
    transl = tensor("transl") if "transl" in view else tensor("Th") / DECIMETERS
    return ViewGeometry(tensor("K"), transl, tensor("pose"), tensor("betas"), tuple(view["size"]))


def _default_view(avatar, avatar_path: str | Path, size: int) -> ViewGeometry:
    """The creation's camera and pose when stored, else a camera framing the flat hand palm-on."""
    view = _stored_view(avatar_path)
    if view is not None:
        return view
    device = avatar.appearance.id_feature.device
    pose = torch.cat([torch.tensor(PALM_TO_CAMERA), torch.zeros(45)]).to(device)
    view = framing_view(avatar, pose, torch.zeros(10, device=device), size)
    return ViewGeometry(view.K.cpu(), view.transl.cpu(), view.pose.cpu(), view.betas.cpu(), view.size)


def animate(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="hands avatar animate", description="render an avatar through poses and views")
    parser.add_argument("--avatar", required=True, help="avatar folder (or the release's .tar)")
    parser.add_argument("--poses", help="finger poses .npy/.npz/.json (N, 45) or (N, 48); default: a built-in sequence")
    parser.add_argument("--turntable", type=int, default=0, help="also turn the hand round in this many frames")
    parser.add_argument("--fps", type=float, default=24.0)
    _common(parser)
    args = parser.parse_args(argv)
    out = check_writable(args.out, args.overwrite)
    device = resolve_device(args.device)
    avatar = load_avatar(args.avatar, load_mano_model("right", args.mano_dir)).to(device)
    view = _default_view(avatar, args.avatar, args.size)
    fingers = read_pose_sequence(args.poses) if args.poses else default_sequence()
    views = [with_fingers(view, pose) for pose in fingers]
    views += [turned(view, 2 * np.pi * k / args.turntable) for k in range(args.turntable)]
    with VideoFileWriter(out, args.fps) as writer:
        for frame_view in tqdm(views, desc="animate", unit="frame"):
            writer.write(render_view(avatar, frame_view))
    log.info("wrote %d frames to %s", len(views), out)
    return out


def export(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="hands avatar export", description="the avatar as a mesh with vertex colours")
    parser.add_argument("--avatar", required=True)
    parser.add_argument("--pose", help="finger pose file (the first row is used); default: the flat hand")
    parser.add_argument("--albedo", action="store_true", help="bake the albedo only (no shadow)")
    _common(parser)
    args = parser.parse_args(argv)
    suffix = Path(args.out).suffix.lower()
    if suffix not in (".glb", ".obj"):
        parser.error(f"--out: expected a .glb or .obj file, got {args.out}")
    check_writable(args.out, args.overwrite)
    avatar = load_avatar(args.avatar, load_mano_model("right", args.mano_dir)).to(resolve_device(args.device))
    hand_pose = read_pose_sequence(args.pose)[0] if args.pose else None
    vertices, faces, colours = vertex_colours(avatar, hand_pose=hand_pose, albedo_only=args.albedo)
    if suffix == ".glb":
        return save_glb(args.out, vertices, faces, colours, overwrite=args.overwrite)
    return save_obj(args.out, vertices, faces, overwrite=args.overwrite, colors=colours)


def _render_identities(avatar, codes: torch.Tensor, view: ViewGeometry, out: Path, overwrite: bool) -> Path:
    with atomic_directory(out, overwrite) as tmp:
        frames = []
        for k, code in enumerate(tqdm(codes, desc="identities", unit="code")):
            frames.append(render_view(avatar, view, identity=code.to(avatar.appearance.id_feature.device)))
            (tmp / f"identity_{k:02d}.png").write_bytes(encode_image(frames[-1], ".png"))
        (tmp / "strip.png").write_bytes(encode_image(np.concatenate(frames, axis=1), ".png"))
        np.save(tmp / "codes.npy", codes.cpu().numpy())
    log.info("wrote %d renders to %s", len(codes), out)
    return out


def interpolate(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="hands avatar interpolate", description="render identities between two avatars")
    parser.add_argument("--avatars", nargs=2, required=True, metavar=("A", "B"))
    parser.add_argument("--prior", help="networks to render with (default: avatar A's)")
    parser.add_argument("--steps", type=int, default=8)
    _common(parser)
    args = parser.parse_args(argv)
    check_writable(args.out, args.overwrite)
    model = load_mano_model("right", args.mano_dir)
    device = resolve_device(args.device)
    ends = [load_avatar(path, model).appearance.id_feature.detach() for path in args.avatars]
    renderer = load_avatar(args.prior or args.avatars[0], model).to(device)
    codes = interpolate_identities(ends[0], ends[1], args.steps)
    return _render_identities(renderer, codes, _default_view(renderer, args.avatars[0], args.size), Path(args.out),
                              args.overwrite)


def sample(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="hands avatar sample", description="render new identities drawn from a prior")
    parser.add_argument("--prior", required=True)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    _common(parser)
    args = parser.parse_args(argv)
    check_writable(args.out, args.overwrite)
    prior = load_avatar(args.prior, load_mano_model("right", args.mano_dir)).to(resolve_device(args.device))
    codes = sample_identities(prior.appearance.id_code, args.count, torch.Generator().manual_seed(args.seed))
    return _render_identities(prior, codes, _default_view(prior, args.prior, args.size), Path(args.out), args.overwrite)


def evaluate(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="hands avatar evaluate", description="PSNR/SSIM/LPIPS on test frames (OHTA's protocol)")
    parser.add_argument("--avatar", required=True)
    parser.add_argument("--frames", required=True, help="folder of one-shot inputs (`hands prepare ohta` --split test)")
    parser.add_argument("--lpips_weights", help="vgg16-397923af.pth (default checkpoints/metrics/)")
    _common(parser)
    args = parser.parse_args(argv)
    out = check_writable(args.out, args.overwrite)
    avatar = load_avatar(args.avatar, load_mano_model("right", args.mano_dir)).to(resolve_device(args.device))
    report = evaluate_avatar(avatar, evaluation_frames(args.frames), args.size, args.lpips_weights)
    report.update({"avatar": str(args.avatar), "frames_folder": str(args.frames), "size": args.size})
    atomic_write_bytes(out, json.dumps(report, indent=1).encode(), args.overwrite)
    log.info("%d frames: %s", report["count"], ", ".join(f"{k} {v:.4f}" for k, v in report["mean"].items()))
    return out


def run_tool(name: str, argv: list[str]) -> Path:
    """Run one of animate, export, interpolate, sample, evaluate."""
    tools = {"animate": animate, "export": export, "interpolate": interpolate, "sample": sample, "evaluate": evaluate}
    return tools[name](argv)
