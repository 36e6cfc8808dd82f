"""`hands reconstruct`: ACR on an image, a folder of frames, a video or the webcam.

    hands reconstruct --inputs photo.jpg [--checkpoint checkpoints/acr/wild.pkl] [--out DIR]
    hands reconstruct --inputs clip.mp4 --temporal --save_mesh
    hands reconstruct                                # the webcam (--cam_id)

Writes the frame runner's outputs (`hands.prediction.runner`): overlays, per-frame .npz of `HandPrediction`s,
optional .obj, summary.json, config.yaml and, for folders and videos, `<stem>_output.mp4`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from hands.acr.checkpoint import CheckpointError
from hands.acr.predictor import ACRPredictor, ACRPredictorConfig
from hands.cli.options import add_dataclass_arguments, dataclass_from_arguments
from hands.prediction.runner import RunOptions, run_frames


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hands reconstruct", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser.add_argument_group("inputs and outputs"), RunOptions)
    add_dataclass_arguments(parser.add_argument_group("ACR"), ACRPredictorConfig)
    return parser


def run(options: RunOptions, config: ACRPredictorConfig) -> Path:
    """Run ACR over the inputs; a missing checkpoint or input ends with one line naming it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        predictor = ACRPredictor.from_config(config)
        record = {"run": dataclasses.asdict(options), "acr": dataclasses.asdict(config)}
        return run_frames(predictor, options, record, method="acr", video_suffix="output")
    except (CheckpointError, FileNotFoundError, OSError, ValueError) as error:
        raise SystemExit(f"hands reconstruct: {error}") from None


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    return run(dataclass_from_arguments(RunOptions, args), dataclass_from_arguments(ACRPredictorConfig, args))


if __name__ == "__main__":
    main()
