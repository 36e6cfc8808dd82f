"""Train the keypoint lifter of the fit front end for a hand model once (`hands.fit.lifting`).

    hands prepare lifter [--mano_dir models/mano]            # -> $HANDS_HOME/lifting/lifting_<digest>.safetensors
    hands prepare lifter --folder hands/fit/assets           # the built-in hand's shipped weights

`hands fit` does this by itself on first use with official MANO files; this verb does it ahead of time (e.g.
on every node of a cluster before a run). Keys are the fields of `hands.fit.lifting.LiftingConfig`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from hands.cli.options import add_dataclass_arguments, dataclass_from_arguments
from hands.fit.lifting import LiftingConfig, lifter_paths, model_digest, read_lifter, save_lifter, train_lifter
from hands.mano import build_mano

log = logging.getLogger("prepare_lifter")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="hands prepare lifter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mano_dir", default=None, help="folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: as hands fit)")
    parser.add_argument("--folder", default=None, help="where the weights go (default: $HANDS_HOME/lifting)")
    parser.add_argument("--overwrite", action="store_true", help="retrain weights that exist")
    add_dataclass_arguments(parser.add_argument_group("training"), LiftingConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = dataclass_from_arguments(LiftingConfig, args)
    layers = {side: build_mano(side, args.mano_dir, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}
    digest = model_digest(layers)
    cached = lifter_paths(digest)[1]
    output = Path(args.folder) / cached.name if args.folder else cached
    if read_lifter(output, digest) is not None and not args.overwrite:
        log.info("%s exists for this hand model (pass --overwrite to retrain)", output)
        return output
    net, history = train_lifter(layers, config)
    log.info("loss %.3f -> %.3f over %d steps", history[0], history[-1], config.steps)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_lifter(net, config, digest, output, overwrite=True)
    log.info("wrote %s (%.2f MB)", output, output.stat().st_size / 1e6)
    return output


if __name__ == "__main__":
    main()
