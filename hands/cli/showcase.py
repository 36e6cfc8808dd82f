"""`hands showcase` (what `make demo` runs): the project's main job, photo -> MANO hands, on inputs it makes itself.

    hands showcase [--out outputs/demo] [--overwrite] [--fixtures ../shared/fixtures]

Inputs: the fixture photos when ../shared/fixtures is present (`ohta/in_the_wild/img/02023.jpg`,
`acr/magic.jpg`), else two-hand renders of the synthetic generator (the built-in hand over a procedural
background; the first seeds in which the detector finds both hands). The fit front end (MediaPipe + MANO
fitting, no trained weights) writes what `hands fit` writes (overlay, `.npz`, `.obj`, summary.json,
config.yaml) into `<out>/`, plus each hand as `.glb` and `contact_sheet.jpg` (input above overlay, per image).
An existing folder needs `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from hands.io.atomic import check_writable
from hands.io.images import read_image, write_image

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
FIXTURE_PHOTOS = (("ohta", "in_the_wild", "img", "02023.jpg"), ("acr", "magic.jpg"))
log = logging.getLogger("showcase")


def synthetic_two_hand_images(count: int = 2, size: tuple[int, int] = (384, 512), tries: int = 12) -> list[np.ndarray]:
    """Up to `count` renders of two interacting built-in hands (H, W, 3) in which the detector finds two hands."""
    from hands.data.synthetic.generator import SyntheticConfig, SyntheticWriter
    from hands.fit.cascade import CascadeDetector

    config = SyntheticConfig(image_height=size[0], image_width=size[1], hand_type_weights=[0.0, 0.0, 1.0],
                             contact_fraction=0.0, camera_cone_deg=60.0, orientation_range_deg=60.0, seed=3)
    writer = SyntheticWriter(config, "unused")
    found: list[np.ndarray] = []
    with CascadeDetector() as detector:
        for frame in range(tries):
            capture_id = writer.frame_layout(frame)[0]
            capture = writer.capture(capture_id)
            rng = np.random.default_rng([config.seed, 11, frame])
            scene = writer.sampler.sample(rng, "interacting", capture["betas"], False)
            image, _ = writer.render_view(scene, capture["cameras"][0], rng, capture["skin"])
            if len(detector.detect(image)) == 2:
                found.append(image)
            if len(found) == count:
                break
    return found


def contact_sheet(pairs: list[tuple[np.ndarray, np.ndarray]], width: int = 480) -> np.ndarray:
    """Columns of (input above overlay), each scaled to `width` pixels wide, side by side on black."""
    columns = []
    for source, overlay in pairs:
        scale = width / source.shape[1]
        size = (width, max(1, round(source.shape[0] * scale)))
        columns.append(np.concatenate([cv2.resize(source, size, interpolation=cv2.INTER_AREA),
                                       cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)], 0))
    height = max(c.shape[0] for c in columns)
    return np.concatenate([np.pad(c, ((0, height - c.shape[0]), (0, 8), (0, 0))) for c in columns], 1)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="hands showcase", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier showcase in --out")
    parser.add_argument("--fixtures", default=str(FIXTURES), help="the shared fixtures folder, when present")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic renders even when fixtures exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from hands.cli.fit import run
    from hands.fit.pipeline import FitPredictorConfig
    from hands.io.mesh import save_glb
    from hands.mano import build_mano
    from hands.prediction.runner import RunOptions
    from hands.prediction.types import load_predictions

    out = Path(args.out)
    inputs = out / "inputs"
    check_writable(out / "contact_sheet.jpg", args.overwrite)
    photos = [Path(args.fixtures).joinpath(*parts) for parts in FIXTURE_PHOTOS]
    images = {}
    if not args.synthetic and all(p.is_file() for p in photos):
        images = {p.stem: read_image(p) for p in photos}
    else:
        images = {f"synthetic_{i}": image for i, image in enumerate(synthetic_two_hand_images())}
    if not images:
        raise ValueError("no input: the synthetic renders gave no image with two detected hands")
    for name, image in images.items():
        write_image(inputs / f"{name}.png", image, overwrite=True)
    result = run(RunOptions(inputs=str(inputs), out=str(out / "hands"), overwrite=args.overwrite, save_mesh=True),
                 FitPredictorConfig(device="auto"))
    faces = {side: build_mano(side, pose_convention="flat").faces.numpy() for side in ("right", "left")}
    pairs = []
    for name, image in images.items():
        for hand in load_predictions(result / f"{name}.npz"):
            save_glb(result / f"{name}_{hand.side}.glb", hand.vertices, faces[hand.side], overwrite=True)
        pairs.append((image, read_image(result / f"{name}.jpg")))
    write_image(out / "contact_sheet.jpg", contact_sheet(pairs), overwrite=True)
    summary = json.loads((result / "summary.json").read_text())
    found = {frame["frame"]: len(frame["hands"]) for frame in summary["frames"]}
    print(f"hands found per image: {found}")
    print(f"wrote {result}/ (overlays, .npz, .obj, .glb, summary.json, config.yaml) and {out / 'contact_sheet.jpg'}")
    print("your own photo, video or webcam: hands fit --inputs photo.jpg   (or python demo.py --demo_mode fit)")
    print("in the browser (Reconstruct, Generate, Avatar): make app   (or .venv/bin/hands app; then open http://127.0.0.1:7860)")
    return out
