"""`hands fit`: MediaPipe keypoints + MANO fitting on any photo, folder, video or the webcam (no trained weights).

    hands fit --inputs photo.jpg [--out DIR] [--save_mesh]
    hands fit --inputs clip.mp4 --temporal [--chunk 16]     # sequences: one shape per hand, smooth motion
    hands fit                                               # the webcam, smoothed frame by frame with --temporal
    hands fit --inputs clip.mp4 --solver full               # the full optimisation instead of lifting + tracking

Videos and the webcam (frame by frame) start each hand from the learned lifting or the tracked hand of the
previous frame and refine it with a few Levenberg-Marquardt steps (`--solver fast`, about 20x faster); photos
and folders run 115 Adam steps from the mean pose (`--solver full`). Images with fewer hands than --max_hands
are retried over the detection cascade (in videos, only frames with no hand).

Writes the frame runner's outputs (`hands.prediction.runner`), the detected keypoints drawn over each overlay;
summary.json gives each hand's reprojection error against them.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from hands.cli.options import add_dataclass_arguments, dataclass_from_arguments
from hands.fit.cascade import DetectionConfig
from hands.fit.landmarker import LandmarkerUnavailableError
from hands.fit.pipeline import FitPredictor, FitPredictorConfig
from hands.io.frames import source_kind
from hands.prediction.runner import RunOptions, run_frames


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hands fit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser.add_argument_group("inputs and outputs"), RunOptions)
    add_dataclass_arguments(parser.add_argument_group("fitting"), FitPredictorConfig, skip=("tracking",))
    add_dataclass_arguments(parser.add_argument_group("detection (MediaPipe and the retry cascade)"), DetectionConfig)
    return parser


def run(options: RunOptions, config: FitPredictorConfig) -> Path:
    """Fit the inputs; a missing landmarker bundle or input ends with one line naming it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    mode = source_kind(options.inputs)
    tracking = mode in ("video", "webcam")
    solver = config.solver if config.solver != "auto" else ("fast" if tracking else "full")
    config = dataclasses.replace(config, tracking=tracking, solver=solver)  # config.yaml records what ran
    try:
        predictor = FitPredictor(config)
    except (LandmarkerUnavailableError, ValueError) as error:
        raise SystemExit(f"hands fit: {error}") from None
    try:
        record = {"run": dataclasses.asdict(options), "fit": dataclasses.asdict(config)}
        return run_frames(predictor, options, record, method="fit", video_suffix="fit")
    except (FileNotFoundError, OSError, ValueError) as error:
        raise SystemExit(f"hands fit: {error}") from None
    finally:
        predictor.close()


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    config = dataclass_from_arguments(FitPredictorConfig, args)
    config = dataclasses.replace(config, detection=dataclass_from_arguments(DetectionConfig, args))
    return run(dataclass_from_arguments(RunOptions, args), config)


if __name__ == "__main__":
    main()
