"""Recall, PCK and false hands of the hand detector, MediaPipe alone against the retry cascade, per kind of image.

    hands eval detection --fixtures ../shared/fixtures [--synthetic 32] [--hand_free 24] [--steps] [--out report.json]

The set (`hands.cli.recall_set`) is made from the fixtures' photos (close-ups, small hands in a large frame,
padded, mirrored), synthetic renders with known keypoints and hand-free images. A labelled hand is found when a
detection's keypoint box overlaps its box by IoU > 0.3; PCK@0.05/0.1 (of the label's box) is over the found
hands with keypoint labels; every other detection is a false hand. `--steps` also runs each cascade step on its
own and checks that the cascade finds every hand one of them finds. `--fit` fits every labelled hand the
cascade finds with the fast and the full solver and reports the PCK of their reprojections.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hands.cli.options import add_dataclass_arguments, dataclass_from_arguments
from hands.cli.recall_set import KINDS, LabelledImage, build_recall_set
from hands.eval.metrics import pck_2d
from hands.fit.cascade import CascadeDetector, DetectionConfig, box_iou, keypoint_box, merge_hands, moved
from hands.fit.landmarker import DetectedHand
from hands.io.atomic import atomic_write_bytes

MATCH_IOU = 0.3


def score_image(item: LabelledImage, hands: list[DetectedHand]) -> dict:
    """found (0/1 or None without a hand), false hands, and PCK of the matched hand when labelled."""
    if item.box is None:
        return {"found": None, "false": len(hands)}
    overlaps = [box_iou(keypoint_box(h.keypoints), item.box) for h in hands]
    best = int(np.argmax(overlaps)) if hands else -1
    found = best >= 0 and overlaps[best] > MATCH_IOU
    row: dict = {"found": int(found), "false": len(hands) - int(found)}
    if found and item.keypoints is not None:
        pred, gt = torch.as_tensor(hands[best].keypoints)[None], torch.as_tensor(item.keypoints)[None]
        row["pck@0.05"] = float(pck_2d(pred, gt, 0.05)[0])
        row["pck@0.1"] = float(pck_2d(pred, gt, 0.1)[0])
    return row


def summarise(rows: list[dict]) -> dict:
    """Per kind: images, recall, mean PCK of the found labelled hands, false hands."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    summary = {}
    for kind in [k for k in KINDS if k in by_kind]:
        group = by_kind[kind]
        entry: dict = {"images": len(group), "false_hands": int(sum(r["false"] for r in group))}
        labelled = [r for r in group if r["found"] is not None]
        if labelled:
            entry["recall"] = float(np.mean([r["found"] for r in labelled]))
        with_pck = [r for r in group if "pck@0.1" in r]
        for key in ("pck@0.05", "pck@0.1"):
            entry[key] = float(np.mean([r[key] for r in with_pck])) if with_pck else None
        summary[kind] = entry
    return summary


def step_union(detector: CascadeDetector, image: np.ndarray) -> list[DetectedHand]:
    """The hands of every cascade step run on its own, merged."""
    hands = merge_hands([], detector.first.detect(image), detector.config.merge_iou)
    for _, step_detector, view, scale, offset in detector.views(image):
        hands = merge_hands(hands, [moved(h, scale, offset) for h in step_detector.detect(view)], detector.config.merge_iou)
    return hands


def fitted_rows(item: LabelledImage, hand: DetectedHand, fitters: dict) -> dict[str, dict]:
    """PCK of each solver's fitted reprojection of a found, labelled hand."""
    rows = {}
    for solver, fitter in fitters.items():
        fit = fitter.fit_detections([hand], fitter.intrinsics(item.image.shape[:2], None))[0]
        rows[f"fit {solver}"] = {"kind": item.kind, "name": item.name, **score_image(item, [replace(hand, keypoints=fit.keypoints_2d)])}
    return rows


def evaluate(items: list[LabelledImage], config: DetectionConfig, landmarker: str | None = None,
             steps: bool = False, fit: bool = False) -> dict:
    """The report of MediaPipe alone (`retry=never`) and of the cascade on `items`; with `fit`, also the PCK of
    the fast and the full fit of every labelled hand the cascade finds."""
    from hands.fit.mano_fit import FitConfig
    from hands.fit.pipeline import HandFitter

    plain = CascadeDetector(landmarker, replace(config, retry="never"))
    cascade = CascadeDetector(landmarker, config)
    fitters = {solver: HandFitter(cascade, FitConfig(solver=solver)) for solver in ("fast", "full")} if fit else {}
    rows: dict[str, list[dict]] = {"mediapipe": [], "cascade": [], **{f"fit {s}": [] for s in fitters}}
    missed_by_cascade = []
    try:
        for item in items:
            rows["mediapipe"].append({"kind": item.kind, "name": item.name, **score_image(item, plain.detect(item.image))})
            hands = cascade.detect(item.image)
            row = score_image(item, hands)
            rows["cascade"].append({"kind": item.kind, "name": item.name, **row})
            if fitters and "pck@0.1" in row:  # a labelled hand the cascade found
                best = max(hands, key=lambda h: box_iou(keypoint_box(h.keypoints), item.box))
                for name, fitted in fitted_rows(item, best, fitters).items():
                    rows[name].append(fitted)
            if steps and item.box is not None:
                union = score_image(item, step_union(cascade, item.image))
                if union["found"] and not rows["cascade"][-1]["found"]:
                    missed_by_cascade.append(item.name)
    finally:
        plain.close()
        cascade.close()
    report = {name: summarise(group) for name, group in rows.items()}
    report["per_image"] = rows
    if steps:
        report["found_by_a_step_but_not_the_cascade"] = missed_by_cascade
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="hands eval detection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", required=True, help="the shared fixtures folder (acr/, ohta/)")
    parser.add_argument("--synthetic", type=int, default=32, help="synthetic renders in the set")
    parser.add_argument("--hand_free", type=int, default=24, help="hand-free images in the set")
    parser.add_argument("--steps", action="store_true", help="also run each cascade step alone (slower)")
    parser.add_argument("--fit", action="store_true", help="also fit every found labelled hand (fast and full solver)")
    parser.add_argument("--landmarker", default=None)
    parser.add_argument("--out", default=None, help="also write the report as JSON")
    add_dataclass_arguments(parser.add_argument_group("detection"), DetectionConfig)
    args = parser.parse_args(argv)
    config = dataclass_from_arguments(DetectionConfig, args)
    if not (Path(args.fixtures) / "ohta" / "in_the_wild").is_dir():
        parser.exit(2, f"hands eval detection: {args.fixtures} has no ohta/in_the_wild (the shared fixtures)\n")
    items = build_recall_set(args.fixtures, args.synthetic, args.hand_free)
    report = evaluate(items, config, args.landmarker, args.steps, args.fit)
    print(f"{'kind':10s} {'images':>6s} | {'recall':>6s} {'PCK.05':>6s} {'PCK.1':>6s} {'false':>5s} (MediaPipe) | "
          f"{'recall':>6s} {'PCK.05':>6s} {'PCK.1':>6s} {'false':>5s} (cascade)")
    fmt = lambda v: "     -" if v is None else f"{v:6.2f}"  # noqa: E731
    for kind, plain in report["mediapipe"].items():
        cascade = report["cascade"][kind]
        cells = lambda e: f"{fmt(e.get('recall'))} {fmt(e['pck@0.05'])} {fmt(e['pck@0.1'])} {e['false_hands']:5d}"  # noqa: E731
        print(f"{kind:10s} {plain['images']:6d} | {cells(plain)}             | {cells(cascade)}")
    if args.fit:
        print(f"\nfitted reprojection of the hands the cascade found (PCK of the labels' box):\n{'kind':10s} "
              f"{'hands':>6s} {'fast .05':>8s} {'fast .1':>8s} {'full .05':>8s} {'full .1':>8s}")
        for kind, fast in report["fit fast"].items():
            full = report["fit full"][kind]
            print(f"{kind:10s} {fast['images']:6d} {fmt(fast['pck@0.05']):>8s} {fmt(fast['pck@0.1']):>8s} "
                  f"{fmt(full['pck@0.05']):>8s} {fmt(full['pck@0.1']):>8s}")
    if args.steps:
        print(f"found by a step alone but not by the cascade: {report['found_by_a_step_but_not_the_cascade'] or 'none'}")
    if args.out:
        atomic_write_bytes(args.out, json.dumps(report, indent=1).encode(), overwrite=True)
    return report


if __name__ == "__main__":
    main()
