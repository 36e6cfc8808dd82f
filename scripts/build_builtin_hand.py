"""Regenerate the built-in open hand model asset (hands/mano/assets/builtin_hand.npz).

    python scripts/build_builtin_hand.py [--output PATH] [--overwrite]

The generation is deterministic; tests/test_builtin_hand.py checks that it reproduces the shipped asset.
"""

from __future__ import annotations

import argparse
import logging
import time

from hands.mano.builtin import ASSET_PATH, generate_right_hand
from hands.mano.model_file import save_mano_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(ASSET_PATH), help="where to write the .npz (default: the shipped asset)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.time()
    logging.info("generating the built-in right hand (implicit surface -> marching cubes -> decimation -> rig)")
    model = generate_right_hand()
    save_mano_file(model, args.output, overwrite=args.overwrite)
    logging.info("wrote %s: %d vertices, %d faces in %.1f s", args.output, model.num_vertices, len(model.faces), time.time() - start)


if __name__ == "__main__":
    main()
