"""Photo -> OHTA's one-shot input: `<out>/img/<name>.png`, `mask/<name>.png` (rendered from the fitted hand) and
`anno/<name>.pkl` (the fitted MANO hand in the crop's camera), ready for `python create.py --input <out>/img/<name>.png`.

    hands prepare ohta_input photo.jpg [more.jpg | folder/] --out inputs/ [--hand auto|right|left] [--size 256]

OHTA's avatars are right hands: a left hand is handled by mirroring the photo (the avatar is then of its mirror
image). `auto` takes the most confident hand. A photo without a hand stops with an error naming it. With
`--masks DIR`, `DIR/<name>.png` (the hand, e.g. from SAM) adds a silhouette term to the fit.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from hands.cli.fit_photos import add_fit_arguments, fitter_from_arguments, photo_paths
from hands.cli.photo_inputs import oneshot_input
from hands.fit.landmarker import LandmarkerUnavailableError
from hands.fit.pipeline import NoHandError
from hands.io.atomic import OutputExistsError, check_writable
from hands.io.images import read_image
from hands.ohta.inputs import read_mask, write_oneshot_input

log = logging.getLogger("prepare_ohta")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(prog="hands prepare ohta_input", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fit_arguments(parser)
    parser.add_argument("--hand", default="auto", choices=["auto", "right", "left"], help="which hand to use")
    parser.add_argument("--size", type=int, default=256, help="side of the square input image (OHTA: 256)")
    parser.add_argument("--masks", default=None, help="folder of hand masks <name>.png for the silhouette term")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out)
    written = []
    try:
        photos = photo_paths(args.photos)
        for photo in photos:
            check_writable(out / "img" / f"{photo.stem}.png", args.overwrite)
        fitter = fitter_from_arguments(args)
    except (FileNotFoundError, OutputExistsError, LandmarkerUnavailableError) as error:
        parser.exit(2, f"error: {error}\n")
    try:
        for photo in photos:
            image = read_image(photo)
            hands = [h for h in fitter.detector.detect(image) if args.hand in ("auto", h.side)]
            if not hands:
                raise NoHandError(f"{photo}: no {'' if args.hand == 'auto' else args.hand + ' '}hand found")
            hand = hands[0]
            mask = read_mask(Path(args.masks) / f"{photo.stem}.png", image.shape[:2]) if args.masks else None
            if hand.side == "left":
                image, hand = np.ascontiguousarray(image[:, ::-1]), hand.mirrored(image.shape[1])
                mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
            K = fitter.intrinsics(image.shape[:2], None)
            fit = fitter.fit_detections([hand], K, masks=None if mask is None else [mask])[0]
            crop, mask, annotation = oneshot_input(fit, fitter.layers["right"], image, args.size, args.scale)
            written.append(write_oneshot_input(out, photo.stem, crop, mask, annotation, args.overwrite))
            log.info("%s: %s hand%s, reprojection %.1f px -> %s", photo, hands[0].side,
                     " (mirrored)" if hands[0].side == "left" else "", fit.reprojection_error, written[-1])
    except (NoHandError, OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    finally:
        fitter.close()
    return written


if __name__ == "__main__":
    main()
