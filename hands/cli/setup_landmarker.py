"""Build the HandLandmarker model bundle once (MediaPipe's hand models from the mediapipe 0.10.21 wheel on PyPI).

    hands prepare landmarker                       # pip download + pack -> checkpoints/mediapipe/
    hands prepare landmarker --wheel mediapipe-0.10.21-....whl   # offline, from a wheel you have
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from hands.fit.landmarker import DEFAULT_TASK_PATH, build_task_bundle, download_model_wheel

log = logging.getLogger("setup_landmarker")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="hands prepare landmarker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", default=None, help="a mediapipe 0.10.21 wheel (default: pip download it)")
    parser.add_argument("--output", default=str(DEFAULT_TASK_PATH), help="where the .task bundle goes")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing bundle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        log.info("%s exists (pass --overwrite to rebuild)", output)
        return output
    with tempfile.TemporaryDirectory() as folder:
        wheel = Path(args.wheel) if args.wheel else download_model_wheel(folder)
        build_task_bundle(wheel, output, overwrite=args.overwrite)
    log.info("wrote %s (%.1f MB)", output, output.stat().st_size / 1e6)
    return output


if __name__ == "__main__":
    main()
