"""Write a synthetic hand dataset in the InterHand2.6M file format.

    hands synth --out data/synthetic [--config configs/synthetic.yaml] [key=value ...]
    hands synth --out data/synthetic --num 10000 --seed 0

Keys are the fields of `hands.data.synthetic.generator.SyntheticConfig` (num_images, split, seed, ...). An
interrupted run resumes when started again with the same settings; --overwrite starts over.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hands.cli.options import config_epilog
from hands.config import ConfigError, load_config
from hands.data.synthetic.generator import SyntheticConfig, SyntheticWriter
from hands.io.atomic import OutputExistsError
from hands.utils.device import resolve_device


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(prog="hands synth", description=__doc__,
                                     epilog=config_epilog(SyntheticConfig, "config keys (key=value overrides):"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", "--output", dest="out", required=True, help="dataset folder (images/ and annotations/ are created in it)")
    parser.add_argument("--config", default=None, help="YAML file with SyntheticConfig fields")
    parser.add_argument("--overwrite", action="store_true", help="start over, replacing an existing dataset")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (rendering)")
    parser.add_argument("--num", type=int, default=None, help="number of images (same as num_images=N)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (same as seed=N)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of SyntheticConfig")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after options
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    overrides = list(args.overrides)
    overrides += [f"num_images={args.num}"] if args.num is not None else []
    overrides += [f"seed={args.seed}"] if args.seed is not None else []
    try:
        config = load_config(SyntheticConfig, args.config, overrides)
    except ConfigError as error:
        parser.error(str(error))
    try:
        return SyntheticWriter(config, args.out, resolve_device(args.device)).run(overwrite=args.overwrite)
    except (ConfigError, OutputExistsError) as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
