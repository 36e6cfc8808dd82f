"""Evaluate ACR on an InterHand-format split (InterHand2.6M or a synthetic set) under both protocols.

    hands eval acr --root data/InterHand2.6M --split test --checkpoint checkpoints/acr/wild.pkl
    hands eval acr --root data/synthetic --checkpoint outputs/acr_synthetic/checkpoints/last.ckpt --limit 500

Prints MPJPE (InterNet protocol: single / interacting / all), MRRPE and handedness accuracy; MPJPE and MPVPE
(IntagHand protocol, interacting images); and the phantom-hand rate (single-hand images where a second hand
is reported) under the release's detection rule and with the phantom guard (`--phantom_guard` makes the guarded
detections the ones scored). MRRPE uses the demo's pinhole placement (focal 1265 at 512), not the dataset camera.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace

import numpy as np
import torch
from tqdm import tqdm

from hands.acr.checkpoint import DEFAULT_CHECKPOINT, CheckpointError
from hands.acr.postprocess import PostprocessConfig, decode, detect
from hands.acr.predictor import load_acr_model
from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset, mano_vector_split
from hands.data.interhand.format import JOINT_SLICE
from hands.eval.protocols import IntagHandEvaluator, InterNetEvaluator
from hands.io.atomic import atomic_path, check_writable
from hands.mano.joints import convert_joints
from hands.mano.model_file import SIDES
from hands.utils.device import resolve_device


def evaluate(dataset: InterHandDataset, model, config: PostprocessConfig, limit: int | None, device) -> dict[str, float]:
    """Run the model on every sample (whole images, padded square) and accumulate both protocols."""
    internet, intaghand = InterNetEvaluator(), IntagHandEvaluator()
    single_images = 0
    phantoms = {False: 0, True: 0}  # by phantom_guard
    layers = {side: layer.to(device) for side, layer in dataset.layers.items()}
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), desc="evaluating", unit="img"):
        sample = dataset[i]
        with torch.no_grad():
            maps = model(sample["image"][None].to(device))
            found = {guard: detect(maps, replace(config, phantom_guard=guard)) for guard in (False, True)}
            hands = {h.side: h for h in decode(maps, found[config.phantom_guard], layers, dataset.config.image_size, config)}
        gt = sample["joints_cam"].double()
        hand_type = ("interacting" if sample["hand_type"].sum() == 2 else "right" if sample["hand_type"][0] else "left")
        pred = torch.zeros(1, 42, 3, dtype=torch.float64)
        for side, hand in hands.items():
            pred[0, JOINT_SLICE[side]] = convert_joints(hand.joints + hand.translation, "canonical", "interhand").double().cpu()
        scores = torch.tensor([[float(side in hands) for side in SIDES]])
        internet.add(pred, gt[None], sample["joint_valid"][None], [hand_type], scores, sample["hand_type"][None].double())
        if hand_type != "interacting":
            single_images += 1
            for guard, detections in found.items():
                phantoms[guard] += int(len(detections[0]) == 2)
        elif all(bool(sample[f"mano_valid_{s}"]) for s in SIDES) and len(hands) == 2:
            truth, guess = {}, {}
            for side in SIDES:
                p = {k: v.double()[None] for k, v in mano_vector_split(sample[f"mano_{side}"]).items()}
                out = layers[side](p["global_orient"].to(device), p["hand_pose"].to(device), p["betas"].to(device),
                                   p["transl"].to(device))
                truth[side] = (out.joints.double().cpu(), out.vertices.double().cpu())
                guess[side] = (hands[side].joints[None].double().cpu(), hands[side].vertices[None].double().cpu())
            intaghand.add(guess, truth)
    results = {f"internet_{k}": v for k, v in internet.summary().items()}
    results.update({f"intaghand_{k}": v for k, v in intaghand.summary().items()})
    for guard, key in ((False, "phantom_hand_rate"), (True, "phantom_hand_rate_guarded")):
        results[key] = phantoms[guard] / single_images if single_images else float("nan")
    results["images"] = count
    return results


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="hands eval acr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--index_dir", default=None,
                        help="annotation index folder (default: beside the annotations; read-only sets: $HANDS_HOME/cache)")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="wild.pkl or a .ckpt of `hands train`")
    parser.add_argument("--size", type=int, default=512, help="network input size")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threshold", type=float, default=0.35)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--phantom_guard", action="store_true",
                        help="score the detections with the part-support and same-cell checks (not in the release)")
    parser.add_argument("--out", "--output", dest="out", default=None, help="also write the results as JSON here")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.out:
        check_writable(args.out, args.overwrite)  # before the evaluation, not after it
    device = resolve_device(args.device)
    try:
        model = load_acr_model(args.checkpoint).to(device).eval()
    except CheckpointError as error:
        parser.exit(2, f"error: {error}\n")
    dataset = InterHandDataset(InterHandDataConfig(root=args.root, split=args.split, image_size=args.size, full_image=True,
                                                   require_hand_type_valid=True, cache_dir=args.index_dir))
    config = PostprocessConfig(threshold=args.threshold, phantom_guard=args.phantom_guard)
    results = evaluate(dataset, model, config, args.limit, device)
    for key, value in results.items():
        print(f"{key:32s} {value:10.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.out:
        with atomic_path(args.out, args.overwrite) as tmp:
            tmp.write_text(json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in results.items()}, indent=1))
    return results


if __name__ == "__main__":
    main()
