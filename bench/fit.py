"""Speed of the full optimisation (`--solver full`, 115 Adam steps) of the in-the-wild front end on the CPU, for
one and two hands; the fast default (lifting + Levenberg-Marquardt + tracking) is in bench/realtime.py.

    python bench/fit.py [--repeats 5] [--threads N]

Needs the HandLandmarker bundle (`make setup`) and ../shared/fixtures (the labelled photo `02023.jpg`; a two-hand
image is that photo beside its mirror image, i.e. a right and a left hand). Prints milliseconds per frame and
frames per second for detection, fitting and both, and the same for a 16-frame sequence fitted as one batch; in
the same run, fitting with the whole mesh posed at every step (the reference) against the fingertips-only path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from timing import median_seconds

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "ohta" / "in_the_wild" / "img" / "02023.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from hands.fit.landmarker import HandDetector
    from hands.fit.mano_fit import FitConfig
    from hands.fit.pipeline import HandFitter

    one = cv2.cvtColor(cv2.imread(str(FIXTURE)), cv2.COLOR_BGR2RGB)
    two = np.ascontiguousarray(np.concatenate([one, one[:, ::-1]], axis=1))
    fitter = HandFitter(HandDetector(), FitConfig(solver="full"))
    reference = HandFitter(fitter.detector, FitConfig(solver="full", joints_only=False))
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} runs; "
          f"fitting: {fitter.config.rigid_steps}+{fitter.config.steps} Adam steps")
    print(f"{'image':18s} {'hands':>5s} {'detect ms':>10s} {'fit ms':>8s} {'total ms':>9s} {'fps':>6s} "
          f"{'fit, whole mesh ms':>19s} {'speed-up':>8s}")
    for name, image in (("one hand 256x256", one), ("two hands 256x512", two)):
        detections = fitter.detector.detect(image)
        K = fitter.intrinsics(image.shape[:2], None)
        detect = median_seconds(lambda: fitter.detector.detect(image), args.repeats)
        fit = median_seconds(lambda: fitter.fit_detections(detections, K), args.repeats, warmup=1)
        whole = median_seconds(lambda: reference.fit_detections(detections, K), max(1, args.repeats // 2), warmup=1)
        print(f"{name:18s} {len(detections):5d} {detect * 1e3:10.1f} {fit * 1e3:8.0f} {(detect + fit) * 1e3:9.0f} "
              f"{1 / (detect + fit):6.2f} {whole * 1e3:19.0f} {whole / fit:7.1f}x")
    frames = [np.roll(one, 2 * t, axis=1) for t in range(16)]
    sequence = median_seconds(lambda: fitter.fit_frames(frames, smooth=True), max(1, args.repeats // 2), warmup=1)
    whole = median_seconds(lambda: reference.fit_frames(frames, smooth=True), max(1, args.repeats // 2), warmup=1)
    print(f"{'16-frame sequence':18s} {1:5d} {'(incl.)':>10s} {sequence / 16 * 1e3:8.0f} {sequence / 16 * 1e3:9.0f} "
          f"{16 / sequence:6.2f} {whole / 16 * 1e3:19.0f} {whole / sequence:7.1f}x   (per frame, detection included)")
    fitter.close()


if __name__ == "__main__":
    main()
