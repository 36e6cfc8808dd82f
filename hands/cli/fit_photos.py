"""Command-line pieces shared by the scripts that fit photos (`hands prepare ohta_input`, `hands prepare modalities`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hands.fit.cascade import CascadeDetector
from hands.fit.mano_fit import FitConfig
from hands.fit.pipeline import HandFitter
from hands.io.frames import image_files
from hands.utils.device import resolve_device


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photos", nargs="+", help="photos, or folders of photos")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--landmarker", default=None, help="HandLandmarker .task (default checkpoints/mediapipe/)")
    parser.add_argument("--mano_dir", "--mano-dir", dest="mano_dir", default=None,
                        help="folder with MANO_RIGHT.pkl (default: models/mano or built-in)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--focal_ratio", type=float, default=2.0, help="focal length / max(H, W) of the unknown camera")
    parser.add_argument("--scale", type=float, default=1.3, help="crop side / the hand's extent")
    parser.add_argument("--solver", default="full", choices=["fast", "full"],
                        help="full: mean pose + 115 Adam steps; fast: learned lifting + Levenberg-Marquardt")


def photo_paths(inputs: list[str]) -> list[Path]:
    """The photos named on the command line, folders expanded (natural order); a missing path is an error."""
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += image_files(item)
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"no such photo or folder: {item}")
    return paths


def fitter_from_arguments(args: argparse.Namespace) -> HandFitter:
    config = FitConfig(device=str(resolve_device(args.device)), focal_ratio=args.focal_ratio, solver=args.solver)
    return HandFitter(CascadeDetector(args.landmarker), config, args.mano_dir)
