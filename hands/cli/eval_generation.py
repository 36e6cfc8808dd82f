"""The generation metrics of AttentionHand's Table 1 for a folder of generated images against real ones.

    hands eval generation --generated outputs/attentionhand --real data/real_hands [--inception FILE] [--out DIR]
    hands eval generation --generated data/ah_synth --real data/InterHand2.6M_5fps_batch1 --split test

--generated is `inference.py`'s output (records.jsonl: each sample's mesh image gives the hand box) or a `hands
synth` set (generation.jsonl and its InterHand-format labels). --real is a folder of images (hand boxes from
MediaPipe, with the detection cascade) or an InterHand-format dataset (its annotated boxes). Reported:

- FID and KID (mean, std over subsets) of the full images, and FID-H / KID-H of square hand crops (the box
  enlarged by --crop_scale, resized to 299), with the FID Inception network (`pt_inception-2015-12-05-6726825d.pth`,
  the user's file under $HANDS_HOME/metrics/ or --inception; never downloaded);
- hand confidence: MediaPipe's handedness score of the hands found again in each generated image (0 when none);
- where the generated set carries labels (hands synth): PCK and mean error (px) of the re-detected keypoints
  against the labels' projection, and PA-MPJPE (mm) of the fitted MANO joints against the labelled joints. These
  stand where the paper's MSE-2D / MSE-3D stand; the paper does not define those.

Writes <out>/generation_metrics.json and <out>/generation_metrics.md (the table's layout).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hands.data.interhand.format import JOINT_SLICE
from hands.data.synthetic.sources import ViewHand
from hands.eval.image_metrics import InceptionFeatures, frechet_distance, kernel_inception_distance
from hands.io.atomic import atomic_write_bytes, check_writable
from hands.io.frames import IMAGE_SUFFIXES
from hands.io.images import read_image
from hands.mano.joints import convert_joints

log = logging.getLogger("eval_generation")
TABLE_COLUMNS = ("FID↓", "KID↓", "FID-H↓", "KID-H↓", "Hand Conf.↑", "PCK↑", "2D err (px)↓", "PA-MPJPE (mm)↓")


@dataclass
class Sample:
    """One image of a set: its path, hand box [x, y, w, h] (None: find it), and labelled hands (None: unknown)."""

    path: Path
    box: list[float] | None = None
    hands: list[ViewHand] | None = None
    K: np.ndarray | None = None


def labelled_hands(record) -> list[ViewHand]:
    """The hands of an InterHand record in its camera: canonical-order keypoints (px), joints (m), visibility."""
    pixels, joints = record.image_joints(), record.camera_joints() / 1000.0
    hands = []
    for side, params in record.mano.items():
        if params is None or not record.joint_valid[JOINT_SLICE[side]].any():
            continue
        part = JOINT_SLICE[side]
        hands.append(ViewHand(side, np.zeros(45), np.zeros((0, 3)), convert_joints(joints[part], "interhand", "canonical"),
                              convert_joints(pixels[part], "interhand", "canonical"),
                              convert_joints(record.joint_valid[part][:, None], "interhand", "canonical")[:, 0].astype(bool)))
    return hands


def interhand_samples(root: Path, split: str, with_labels: bool) -> list[Sample]:
    from hands.data.interhand.index import InterHandIndex

    index = InterHandIndex.open(root, split)
    samples = []
    for i in range(len(index)):
        record = index.record(i)
        box = [float(v) for v in record.bbox] if record.bbox[2] > 0 and record.bbox[3] > 0 else None
        samples.append(Sample(record.image_path, box, labelled_hands(record) if with_labels else None, record.camera.K))
    return samples


def read_generated(folder: Path, split: str) -> list[Sample]:
    """The generated images and their conditions (a hands synth set, or inference.py's records.jsonl)."""
    if (folder / "generation.jsonl").is_file():
        return interhand_samples(folder, split, with_labels=True)
    records = folder / "records.jsonl"
    if not records.is_file():
        raise FileNotFoundError(f"{folder}: neither generation.jsonl (hands synth) nor records.jsonl (inference.py) in it")
    from hands.attentionhand.data import hand_box_from_mesh

    samples = []
    for number, line in enumerate(records.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            mesh, names = Path(record["mesh"]), record["images"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{records}:{number}: expected a JSON object with 'mesh' and 'images'") from None
        mesh_image = read_image(mesh if mesh.is_absolute() else folder / mesh)
        x, y, w, h = hand_box_from_mesh(mesh_image, mesh)
        for name in names:
            image = folder / name
            size = read_image(image).shape[:2]
            sy, sx = size[0] / mesh_image.shape[0], size[1] / mesh_image.shape[1]  # the mesh is resized to the image
            samples.append(Sample(image, [x * sx, y * sy, w * sx, h * sy]))
    return samples


def read_real(folder: Path, split: str) -> list[Sample]:
    if (folder / "annotations").is_dir():
        return interhand_samples(folder, split, with_labels=False)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no images in it")
    return [Sample(path) for path in files]


def hand_crop(image: np.ndarray, box: list[float], scale: float, size: int = 299) -> np.ndarray:
    """The square (size, size, 3) crop centred on box [x, y, w, h], side `scale` times its larger side (black
    outside the image)."""
    x, y, w, h = box
    side = max(w, h) * scale
    cx, cy = x + w / 2, y + h / 2
    s = size / side
    warp = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    return cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def inception_features(model: InceptionFeatures, images: list[np.ndarray], batch: int = 16) -> np.ndarray:
    """(N, 2048) float64 features of uint8 RGB images, batched by shape (pytorch-fid's preprocessing)."""
    features: list[tuple[int, np.ndarray]] = []
    by_shape: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch):
            chunk = indices[start:start + batch]
            tensor = torch.from_numpy(np.stack([images[i] for i in chunk])).permute(0, 3, 1, 2).float().div(255.0)
            features += list(zip(chunk, model(tensor).double().numpy()))
    return np.stack([f for _, f in sorted(features, key=lambda item: item[0])])


def distances(a: np.ndarray, b: np.ndarray, subset_size: int, subsets: int) -> dict[str, float]:
    kid, kid_std = kernel_inception_distance(a, b, subset_size, subsets)
    return {"fid": frechet_distance(a, b), "kid": kid, "kid_std": kid_std}


def markdown_table(name: str, metrics: dict) -> str:
    """The metrics as one row of AttentionHand's Table 1 layout (the pose columns: ours, see the module doc)."""
    def cell(key: str, digits: int) -> str:
        value = metrics.get(key)
        return "–" if value is None else f"{value:.{digits}f}"

    row = [cell("fid", 2), cell("kid", 5), cell("fid_h", 2), cell("kid_h", 5), cell("hand_confidence", 3), cell("pck", 3),
           cell("keypoint_error_px", 2), cell("pa_mpjpe_mm", 2)]
    return "\n".join([f"| Method | {' | '.join(TABLE_COLUMNS)} |", "|---" * (len(TABLE_COLUMNS) + 1) + "|",
                      f"| {name} | {' | '.join(row)} |", ""])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="hands eval generation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", required=True, help="inference.py output or a hands synth set")
    parser.add_argument("--real", required=True, help="folder of real images, or an InterHand-format dataset")
    parser.add_argument("--split", default="train", help="split of InterHand-format sets (default train)")
    parser.add_argument("--inception", default=None, help="pt_inception-2015-12-05-6726825d.pth (default $HANDS_HOME/metrics/)")
    parser.add_argument("--out", default=None, help="output folder (default: --generated)")
    parser.add_argument("--name", default="AttentionHand", help="the table row's name")
    parser.add_argument("--dims", type=int, default=2048, choices=[64, 192, 768, 2048],
                        help="Inception features (2048: FID's; the smaller ones as pytorch-fid's --dims)")
    parser.add_argument("--crop_scale", type=float, default=1.2, help="hand crops: the box's larger side times this")
    parser.add_argument("--kid_subset", type=int, default=1000, help="KID subset size (capped by the set sizes)")
    parser.add_argument("--kid_subsets", type=int, default=100, help="KID subsets")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (the fit of the pose metrics)")
    parser.add_argument("--no_pose", action="store_true", help="skip hand confidence and the pose metrics (no MediaPipe)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out or args.generated)
    for name in ("generation_metrics.json", "generation_metrics.md"):
        check_writable(out / name, args.overwrite)
    generated, real = read_generated(Path(args.generated), args.split), read_real(Path(args.real), args.split)
    model = InceptionFeatures(args.inception, args.dims)
    quality = None
    if not args.no_pose or any(s.box is None for s in real):
        from hands.fit.quality import FitQuality

        quality = FitQuality(device=args.device)
    try:
        metrics = evaluate(generated, real, model, quality, args)
    finally:
        if quality is not None:
            quality.close()
    atomic_write_bytes(out / "generation_metrics.json", json.dumps(metrics, indent=1).encode(), args.overwrite)
    atomic_write_bytes(out / "generation_metrics.md", markdown_table(args.name, metrics).encode(), args.overwrite)
    print(markdown_table(args.name, metrics))
    return metrics


def detected_box(quality, image: np.ndarray) -> list[float] | None:
    """The box [x, y, w, h] around every hand MediaPipe finds in the image, or None."""
    from hands.fit.cascade import keypoint_box

    found = quality.fitter.detector.detect(image)
    if not found:
        return None
    x0, y0, x1, y1 = keypoint_box(np.concatenate([hand.keypoints for hand in found]))
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def evaluate(generated: list[Sample], real: list[Sample], model: InceptionFeatures, quality, args) -> dict:
    """The metrics dict of main (also callable from Python with an argparse-like `args`)."""
    images = {"generated": [], "real": []}
    crops = {"generated": [], "real": []}
    scores = []
    for kind, samples in (("generated", generated), ("real", real)):
        for sample in tqdm(samples, desc=f"{kind} images", unit="img"):
            image = read_image(sample.path)
            images[kind].append(image)
            box = sample.box if sample.box is not None else detected_box(quality, image)
            if box is not None and box[2] > 1 and box[3] > 1:
                crops[kind].append(hand_crop(image, box, args.crop_scale))
            if kind == "generated" and not args.no_pose:
                hands = sample.hands
                if hands is None:  # no labels: the hand confidence only
                    found = quality.fitter.detector.detect(image)
                    scores.append({"hand_confidence": float(np.mean([h.score for h in found])) if found else 0.0})
                else:
                    scores.append(quality.score(image, hands, sample.K))
    features = {kind: inception_features(model, images[kind]) for kind in images}
    metrics = {"generated_images": len(generated), "real_images": len(real),
               **distances(features["generated"], features["real"], args.kid_subset, args.kid_subsets)}
    if min(len(crops["generated"]), len(crops["real"])) >= 2:
        hand = distances(inception_features(model, crops["generated"]), inception_features(model, crops["real"]),
                         args.kid_subset, args.kid_subsets)
        metrics.update({"fid_h": hand["fid"], "kid_h": hand["kid"], "kid_h_std": hand["kid_std"]})
    metrics["hand_crops"] = {kind: len(crops[kind]) for kind in crops}
    for key in ("hand_confidence", "pck", "keypoint_error_px", "pa_mpjpe_mm"):
        values = [s[key] for s in scores if s.get(key) is not None]
        metrics[key] = float(np.mean(values)) if values else None
    return metrics
