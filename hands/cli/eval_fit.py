"""2D accuracy of the in-the-wild front end on labelled photos in OHTA's one-shot layout (`img/`, `anno/` with
`joint_img`): PCK@0.05 / PCK@0.1 (of the labels' box) and mean pixel error of MediaPipe's keypoints and of the
fitted MANO hand's reprojection.

    hands eval fit --root ../shared/fixtures/ohta/in_the_wild [--joint_order canonical] [--out report.json]

`--joint_order`: `canonical` for annotations made by fitting tools (the OpenPose order, as the in-the-wild
sample), `interhand` for inputs made from InterHand2.6M (OHTA's MANO-based order, as `hands prepare ohta`
writes). The fit uses the annotation's camera with `--annotation_camera`, else the default long lens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hands.eval.metrics import pck_2d
from hands.fit.cascade import CascadeDetector
from hands.fit.mano_fit import FitConfig
from hands.fit.pipeline import HandFitter
from hands.io.atomic import atomic_write_bytes
from hands.io.frames import image_files
from hands.io.images import read_image
from hands.mano.joints import convert_joints
from hands.ohta.oneshot import GT_ORDER_FROM_MANO, OneShotAnnotation, read_oneshot_annotation


def labels_of(annotation: OneShotAnnotation, order: str) -> np.ndarray:
    """The (21, 2) labelled keypoints of an annotation in the canonical order."""
    joint_img = annotation.joint_img[:, :2]
    if order == "canonical":
        return joint_img
    return convert_joints(joint_img[np.argsort(GT_ORDER_FROM_MANO)], "mano", "canonical")


def scores(points: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred, gt = torch.as_tensor(points)[None], torch.as_tensor(labels, dtype=torch.float64)[None]
    return {"pck@0.05": float(pck_2d(pred, gt, 0.05)[0]), "pck@0.1": float(pck_2d(pred, gt, 0.1)[0]),
            "mean_px": float(np.linalg.norm(points - labels, axis=-1).mean())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="hands eval fit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder with img/ and anno/")
    parser.add_argument("--joint_order", default="canonical", choices=["canonical", "interhand"])
    parser.add_argument("--annotation_camera", action="store_true", help="fit with the annotation's intrinsics")
    parser.add_argument("--landmarker", default=None)
    parser.add_argument("--solver", default="full", choices=["fast", "full"],
                        help="full: 115 Adam steps (the default); fast: learned lifting + Levenberg-Marquardt")
    parser.add_argument("--out", default=None, help="also write the report as JSON")
    args = parser.parse_args(argv)
    root = Path(args.root)
    images = image_files(root / "img") if (root / "img").is_dir() else []
    if not images:
        parser.exit(2, f"error: no images in {root / 'img'}\n")
    fitter = HandFitter(CascadeDetector(args.landmarker), FitConfig(solver=args.solver))
    rows = []
    try:
        for path in images:
            annotation = read_oneshot_annotation(root / "anno" / f"{path.stem}.pkl")
            labels = labels_of(annotation, args.joint_order)
            image = read_image(path)
            detections = fitter.detector.detect(image)
            row: dict = {"image": path.name, "hands": len(detections)}
            if detections:
                K = annotation.intrinsics if args.annotation_camera else None
                fit = fitter.fit_detections(detections[:1], fitter.intrinsics(image.shape[:2], K))[0]
                row.update({"side": fit.side, "detector": scores(detections[0].keypoints, labels),
                            "fit": scores(fit.keypoints_2d, labels)})
            rows.append(row)
    finally:
        fitter.close()
    found = [r for r in rows if r["hands"]]
    report = {"root": str(root), "solver": args.solver, "images": len(rows), "found": len(found), "per_image": rows,
              "mean": {kind: {k: float(np.mean([r[kind][k] for r in found])) for k in ("pck@0.05", "pck@0.1", "mean_px")}
                       for kind in ("detector", "fit")} if found else {}}
    print(f"{len(found)}/{len(rows)} images with a hand found")
    for kind, values in report["mean"].items():
        print(f"{kind:9s} " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()))
    if args.out:
        atomic_write_bytes(args.out, json.dumps(report, indent=1).encode(), overwrite=True)
    return report


if __name__ == "__main__":
    main()
