"""Photo -> AttentionHand's modalities: `<out>/rgb/`, `mesh/` (the fitted hands' mesh image), `text/` (a prompt
from their poses) and `<out>/modalities.json`, ready for `python inference.py --sample_path <out>/modalities.json`.

    hands prepare modalities photo.jpg [more.jpg | folder/] --out samples/ [--size 512]

Each photo is cropped to a square around all its hands. A photo without a hand stops with an error naming it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hands.attentionhand.interhand_inputs import write_modalities_manifest, write_modality_sample
from hands.cli.fit_photos import add_fit_arguments, fitter_from_arguments, photo_paths
from hands.cli.photo_inputs import modality_sample
from hands.fit.landmarker import LandmarkerUnavailableError
from hands.fit.pipeline import NoHandError
from hands.io.atomic import OutputExistsError, check_writable
from hands.io.images import read_image

log = logging.getLogger("prepare_modalities")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="hands prepare modalities", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fit_arguments(parser)
    parser.add_argument("--size", type=int, default=512, help="side of the square images (AttentionHand: 512)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out)
    manifest = out / "modalities.json"
    try:
        photos = photo_paths(args.photos)
        check_writable(manifest, args.overwrite)
        fitter = fitter_from_arguments(args)
    except (FileNotFoundError, OutputExistsError, LandmarkerUnavailableError) as error:
        parser.exit(2, f"error: {error}\n")
    faces = {side: layer.faces for side, layer in fitter.layers.items()}
    lines = []
    try:
        for photo in photos:
            image = read_image(photo)
            fits = fitter.fit_image(image)
            if not fits:
                raise NoHandError(f"{photo}: no hand found")
            rgb, mesh_image, mask, prompt = modality_sample(fits, faces, image, args.size, args.scale)
            lines.append(write_modality_sample(out, photo.stem, rgb, mesh_image, mask, prompt, args.overwrite))
            log.info("%s: %s -> %r", photo, ", ".join(f"{f.side} ({f.reprojection_error:.1f} px)" for f in fits), prompt)
    except (NoHandError, OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    finally:
        fitter.close()
    return write_modalities_manifest(manifest, lines, args.overwrite)


if __name__ == "__main__":
    main()
