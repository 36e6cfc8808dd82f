"""`hands demo` (and `python demo.py`): ACR hand reconstruction on your images, videos or webcam, MANO fitting on
any photo, or the hand model in a few poses.

    python demo.py --demo_mode image  --inputs photo.jpg  [--checkpoint checkpoints/acr/wild.pkl] [--out DIR]
    python demo.py --demo_mode folder --inputs frames/ [-t]          # overlays, .npz per frame, an .mp4
    python demo.py --demo_mode video  --inputs clip.mp4 [-t] [--save_mesh]
    python demo.py --demo_mode webcam [--cam_id 0] [--max_frames 300]
    python demo.py --demo_mode fit --inputs photo.jpg|frames/|clip.mp4 [-t]   # any photo: MediaPipe + MANO fitting
    python demo.py --demo_mode fit                                    # ... on the webcam (--cam_id)
    python demo.py                                                    # poses mode: no checkpoint needed

ACR modes write to --out (default demos_outputs/): the overlay per frame, the hands' MANO parameters, joints and
cameras as .npz, .obj meshes with --save_mesh, summary.json, and an .mp4 for folders and videos. -t smooths the
hands over time with One-Euro filters (ACR's settings). The poses mode renders the configured MANO model (or
the built-in open hand) in a few poses into --output (default outputs/demo). The fit mode needs no trained weights:
MediaPipe's hand landmarks (bundle built by `make setup`) and MANO fitted to them; it writes the same kinds of
outputs (`hands fit`). The ACR modes are `hands reconstruct`, the fit mode `hands fit`, with the flags of the
original demo.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from hands.io.atomic import atomic_path, check_writable
from hands.io.home import home_file
from hands.io.images import write_image
from hands.io.safe_pickle import load_pickle
from hands.mano import build_mano
from hands.mano.poses import named_hand_pose
from hands.render import Meshes, MeshImageStyle, PerspectiveCamera, RenderConfig, Renderer
from hands.render.draw import to_uint8_image
from hands.utils.device import resolve_device

FIXTURE_FIT = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ohta" / "editing" / "anno" / "rainbow.pkl"
# Rotate the model frame (fingers -x, palm -y) so fingers point up in the image and the palm faces the camera.
SKIN = (0.80, 0.52, 0.40)  # linear RGB albedo for the demo renders
VIEW_ROTATION = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def demo_poses() -> dict[str, np.ndarray]:
    """Name -> (45,) flat-hand pose; includes the real fit when the shared fixture is present."""
    poses = {name: named_hand_pose(name) for name in ("rest", "fist", "point", "spread")}
    if FIXTURE_FIT.is_file():
        poses["real_fit"] = np.asarray(load_pickle(FIXTURE_FIT)[1]["poses"][3:], dtype=np.float64)
    return poses


def frame_mesh(vertices: torch.Tensor, size: int, distance: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """Place vertices (V,3) in front of an OpenCV camera so they fill ~80 % of a size x size image -> (verts, K)."""
    rot = torch.as_tensor(VIEW_ROTATION, dtype=vertices.dtype, device=vertices.device)
    v = vertices @ rot.T
    centre = (v.amax(0) + v.amin(0)) / 2
    v = v - centre + torch.tensor([0.0, 0.0, distance], dtype=v.dtype, device=v.device)
    extent = (v[:, :2].amax(0) - v[:, :2].amin(0)).max().item()
    focal = 0.8 * size * distance / extent
    K = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], dtype=v.dtype, device=v.device)
    return v, K


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="hands demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", "--output", dest="out", default=None,
                        help="output folder (default: outputs/demo for the poses, demos_outputs for the other modes)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--size", type=int, default=384, help="image side in pixels")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--mano_dir", "--mano-dir", dest="mano_dir", default=None,
                        help="folder with MANO_RIGHT.pkl (default: $HANDS_MANO_DIR, $HANDS_HOME/mano, else built-in)")
    parser.add_argument("--demo_mode", "--mode", default="poses", choices=["poses", "image", "folder", "video", "webcam", "fit"])
    parser.add_argument("--inputs", default=None, help="image, folder of frames or video file (ACR and fit modes)")
    parser.add_argument("--checkpoint", default=str(home_file("acr", "wild.pkl")),
                        help="official wild.pkl or a .ckpt of `hands train` (default: $HANDS_HOME/acr/wild.pkl)")
    parser.add_argument("-t", "--temporal_optimization", action="store_true", help="One-Euro smoothing over frames")
    parser.add_argument("--smooth_coeff", type=float, default=4.0, help="One-Euro min cutoff of the pose filters")
    parser.add_argument("--save_mesh", action="store_true", help="also write each hand as .obj")
    parser.add_argument("--threshold", type=float, default=0.35, help="centre-map detection threshold")
    parser.add_argument("--phantom_guard", action="store_true",
                        help="ACR: drop sides without part-segmentation support (not in the release; docs/deviations.md)")
    parser.add_argument("--placement", default="pnp", choices=["pnp", "closed_form"],
                        help="ACR: mesh translation by the release's RANSAC PnP or the exact weak-perspective match")
    parser.add_argument("--pad_value", type=int, default=255, help="ACR: letterbox padding (the release's 255 = white)")
    parser.add_argument("--runtime", default="auto", choices=["auto", "eager", "channels_last", "compile", "onnx"],
                        help="ACR: how the network runs (auto: ONNX Runtime on the CPU, outputs equal within 1e-4)")
    parser.add_argument("--cam_id", type=int, default=0)
    parser.add_argument("--max_frames", type=int, default=0, help="stop after this many frames (0: all; webcam: 300)")
    parser.add_argument("--landmarker", default=None, help="fit: HandLandmarker .task (default checkpoints/mediapipe/)")
    parser.add_argument("--mirrored", action="store_true", help="fit: the frames were flipped left-right (selfie previews)")
    parser.add_argument("--chunk", type=int, default=16, help="fit -t: frames fitted together")
    parser.add_argument("--solver", default="auto", choices=["auto", "fast", "full"],
                        help="fit: learned lifting + tracking + Levenberg-Marquardt (fast), 115 Adam steps (full), "
                             "or fast for videos and the webcam and full for photos (auto)")
    parser.add_argument("--focal_ratio", type=float, default=2.0, help="fit: focal length / max(H, W) of the unknown camera")
    args = parser.parse_args(argv)
    if args.size < 16:
        parser.error(f"--size: must be at least 16 pixels, got {args.size}")
    args.out = args.out or ("outputs/demo" if args.demo_mode == "poses" else "demos_outputs")
    if args.demo_mode == "fit":
        return run_fit(parser, args)
    if args.demo_mode != "poses":
        return run_acr(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    log = logging.getLogger("demo")
    out_dir = Path(args.out)
    device = resolve_device(args.device)
    poses = demo_poses()
    targets = [out_dir / f"{name}.png" for name in poses] + [out_dir / "poses.png", out_dir / "config.yaml"]
    for target in targets:  # refuse before rendering anything, so nothing is half-replaced
        check_writable(target, args.overwrite)
    mano = build_mano("right", args.mano_dir, pose_convention="flat", device=device)
    log.info("hand model: %s (%d vertices) on %s", mano.source, mano.num_vertices, device)
    renderer = Renderer(args.size, RenderConfig(mesh_image=MeshImageStyle(base_color=SKIN, smooth=True)))
    tiles = []
    for name, pose in tqdm(poses.items(), desc="rendering poses"):
        out = mano(hand_pose=torch.as_tensor(pose, dtype=torch.float32, device=device)[None])
        verts, K = frame_mesh(out.vertices[0], args.size)
        image = renderer.render(Meshes(verts[None], mano.faces), PerspectiveCamera(K), ["mesh_image"]).mesh_image[0]
        rgb = to_uint8_image(image)
        write_image(out_dir / f"{name}.png", rgb, args.overwrite)
        tiles.append(rgb)
    write_image(out_dir / "poses.png", np.concatenate(tiles, axis=1), args.overwrite)
    config = OmegaConf.create({**vars(args), "poses": list(poses), "hand_model": mano.source})
    with atomic_path(out_dir / "config.yaml", args.overwrite) as tmp:
        OmegaConf.save(config, tmp)
    log.info("wrote %d images and config.yaml to %s", len(tiles) + 1, out_dir)
    return out_dir


def run_acr(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """The ACR modes (image, folder, video, webcam): `hands reconstruct` with the release's flags."""
    from hands.acr.predictor import ACRPredictorConfig
    from hands.cli.reconstruct import run

    if args.demo_mode != "webcam" and not args.inputs:
        parser.error(f"--demo_mode {args.demo_mode} needs --inputs")
    config = ACRPredictorConfig(
        checkpoint=args.checkpoint, threshold=args.threshold, phantom_guard=args.phantom_guard, placement=args.placement,
        pad_value=args.pad_value, temporal=args.temporal_optimization, smooth_coeff=args.smooth_coeff,
        device=args.device, mano_dir=args.mano_dir, runtime=args.runtime)
    return run(run_options(args), config)


def run_fit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """The fit mode: `hands fit` on a photo, folder, video or the webcam."""
    from hands.cli.fit import run
    from hands.fit.pipeline import FitPredictorConfig

    config = FitPredictorConfig(landmarker=args.landmarker, mirrored=args.mirrored, temporal=args.temporal_optimization,
                                chunk=args.chunk, focal_ratio=args.focal_ratio, smooth_coeff=args.smooth_coeff,
                                device=args.device, mano_dir=args.mano_dir, solver=args.solver)
    return run(run_options(args), config)


def run_options(args: argparse.Namespace):
    from hands.prediction.runner import RunOptions

    return RunOptions(inputs=None if args.demo_mode == "webcam" else args.inputs, out=args.out, overwrite=args.overwrite,
                      save_mesh=args.save_mesh, cam_id=args.cam_id, max_frames=args.max_frames)


if __name__ == "__main__":
    main()
