"""Real-time hands on the CPU: the fit front end frame by frame on webcam-like sequences, against MediaPipe alone.

    python bench/realtime.py [--frames 60] [--threads 2]

Sequences: the labelled photo `02023.jpg` (one hand), and beside its mirror image (two hands), gliding, turning
and zooming across a 640x480 frame, fed frame by frame as a webcam would (tracking on). Columns: MediaPipe alone
(VIDEO mode); the fast front end (cascade detector + learned lifting or the tracked hand + Levenberg-Marquardt)
with the detection / lifting / refinement split of a lifted (untracked) start, called frame by frame (`predict`)
and streamed (`predict_stream`: frame t + 1 is detected while frame t is fitted, as `hands fit` runs videos and
the webcam); the full optimisation (`--solver full`). The last line reports the streamed path. Then accuracy on
synthetic sequences (simulated detections of a moving hand, `HandSampler.sequence`): root-relative and PA
MPJPE of the lifted start, the fast fit and the full fit. Needs the HandLandmarker bundle and ../shared/fixtures.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "ohta" / "in_the_wild" / "img" / "02023.jpg"


def moving_frames(photo: np.ndarray, count: int, size: tuple[int, int] = (480, 640)) -> list[np.ndarray]:
    """`count` frames (H, W, 3) of `photo` gliding along an ellipse, turning by +-15 degrees and zooming."""
    H, W = size
    background = cv2.GaussianBlur(cv2.resize(photo, (W, H)), (0, 0), 25)
    frames = []
    for t in range(count):
        phase = 2 * np.pi * t / max(count, 1)
        scale = 0.9 + 0.15 * np.sin(phase)
        centre = (W / 2 + 0.25 * (W - photo.shape[1] * scale) / 2 * np.cos(phase), H / 2 + 0.1 * H * np.sin(phase))
        M = cv2.getRotationMatrix2D((photo.shape[1] / 2, photo.shape[0] / 2), 15 * np.sin(phase), scale)
        M[:, 2] += np.array(centre) - np.array([photo.shape[1] / 2, photo.shape[0] / 2])
        frames.append(cv2.warpAffine(photo, M, (W, H), dst=background.copy(), borderMode=cv2.BORDER_TRANSPARENT))
    return frames


def per_frame_ms(fn, frames: list[np.ndarray]) -> float:
    """Mean milliseconds of fn(frame) over the frames, after two warm-up frames (not counted)."""
    for frame in frames[:2]:
        fn(frame)
    start = time.perf_counter()
    for frame in frames[2:]:
        fn(frame)
    return (time.perf_counter() - start) / max(1, len(frames) - 2) * 1e3


def split_ms(predictor, frames: list[np.ndarray]) -> dict[str, float]:
    """The fast path's detection, lifting and refinement milliseconds per frame (one instrumented pass)."""
    from hands.fit.solver import solve

    fitter, totals = predictor.fitter, {"detect": 0.0, "lift": 0.0, "refine": 0.0}
    for frame in frames:
        start = time.perf_counter()
        hands = fitter.detector.detect(frame)
        totals["detect"] += time.perf_counter() - start
        K = torch.tensor(fitter.intrinsics(frame.shape[:2], None)).expand(1, 3, 3)
        for hand in hands:
            layer = fitter.layers[hand.side]
            keypoints, landmarks = torch.tensor(hand.keypoints)[None], torch.tensor(hand.world)[None]
            start = time.perf_counter()
            lifted = fitter.lifter.lift(keypoints, landmarks, K, hand.side)
            totals["lift"] += time.perf_counter() - start
            start = time.perf_counter()
            solve(layer, keypoints, K, lifted, landmarks, fitter.config, fitter.config.refine_iterations)
            totals["refine"] += time.perf_counter() - start
    return {k: v / len(frames) * 1e3 for k, v in totals.items()}


def synthetic_accuracy(sequences: int, frames: int) -> dict[str, tuple[float, float]]:
    """(root-relative, PA) MPJPE in mm of the lifted start, the fast fit (tracked) and the full fit."""
    from hands.eval.metrics import mpjpe, pa_mpjpe
    from hands.fit.lifting import HandSampler, LiftingConfig
    from hands.fit.mano_fit import FitConfig, fit_mano
    from hands.fit.pipeline import HandFitter, prediction_from_fit

    fitter = HandFitter(detector=_NoDetector(), config=FitConfig())
    full = FitConfig(solver="full")
    sampler = HandSampler(fitter.layers, LiftingConfig(seed=7))
    errors: dict[str, list[np.ndarray]] = {"lifted start": [], "fast (tracked)": [], "full optimisation": []}
    for index in range(sequences):
        side = ("right", "left")[index % 2]
        truth = sampler.sequence(frames, side)
        layer = fitter.layers[side]
        previous = None
        for t in range(frames):
            keypoints, landmarks, K = truth["keypoints"][t:t + 1], truth["landmarks"][t:t + 1], truth["K"][t:t + 1]
            lifted = fitter.lifter.lift(keypoints, landmarks, K, side)
            fast = fitter.fast_fit(side, keypoints, landmarks, K, [previous])[0]
            slow = fit_mano(layer, keypoints, K, landmarks, full)[0]
            previous = prediction_from_fit(side, fast, K[0])
            with torch.no_grad():
                lifted_joints = layer(global_orient=lifted.global_orient, hand_pose=lifted.hand_pose, betas=lifted.betas).joints[0]
            for name, joints in (("lifted start", lifted_joints), ("fast (tracked)", fast["joints"]),
                                 ("full optimisation", slow["joints"])):
                relative, gt = (joints - joints[:1])[None], truth["joints"][t][None]
                errors[name].append(np.array([float(mpjpe(relative, gt)[0]), float(pa_mpjpe(relative, gt)[0])]) * 1e3)
    return {name: tuple(np.mean(values, 0)) for name, values in errors.items()}


class _NoDetector:
    def detect(self, image):
        return []

    def close(self):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sequences", type=int, default=4, help="synthetic sequences for the accuracy rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from hands.fit.landmarker import HandDetector
    from hands.fit.pipeline import FitPredictor, FitPredictorConfig

    photo = cv2.cvtColor(cv2.imread(str(FIXTURE)), cv2.COLOR_BGR2RGB)
    sequences = {"one hand": moving_frames(photo, args.frames),
                 "two hands": moving_frames(np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], 1)), args.frames)}
    print(f"torch {torch.__version__}, {args.threads} threads, {args.frames} frames of 640x480 per sequence")
    print(f"{'sequence':10s} {'MediaPipe ms':>12s} {'detect':>7s} {'lift':>6s} {'refine':>7s} {'fast ms':>8s} "
          f"{'fast fps':>8s} {'vs MediaPipe':>12s} {'stream ms':>9s} {'stream fps':>9s} {'vs MediaPipe':>12s} "
          f"{'full ms':>8s} {'full fps':>8s} {'hands/frame':>11s}")
    results = {}
    for name, frames in sequences.items():
        with HandDetector(video=True) as mediapipe:
            alone = per_frame_ms(lambda f: mediapipe.detect(f), frames)
        fast = FitPredictor(FitPredictorConfig(tracking=True, device="cpu"))
        counts = []
        fast_ms = per_frame_ms(lambda f: counts.append(len(fast.predict(f))), frames)
        split = split_ms(fast, frames[:20])
        fast.reset()
        start = time.perf_counter()
        streamed = sum(1 for _ in fast.predict_stream(frames))
        piped_ms = (time.perf_counter() - start) / streamed * 1e3
        fast.close()
        full = FitPredictor(FitPredictorConfig(tracking=True, device="cpu", solver="full"))
        full_ms = per_frame_ms(lambda f: full.predict(f), frames[:12])
        full.close()
        results[name] = (1e3 / piped_ms, piped_ms / alone)
        print(f"{name:10s} {alone:12.1f} {split['detect']:7.1f} {split['lift']:6.1f} {split['refine']:7.1f} {fast_ms:8.1f} "
              f"{1e3 / fast_ms:8.1f} {fast_ms / alone:11.2f}x {piped_ms:9.1f} {1e3 / piped_ms:9.1f} {piped_ms / alone:11.2f}x "
              f"{full_ms:8.0f} {1e3 / full_ms:8.1f} {np.mean(counts):11.2f}")
    print(f"\nsynthetic sequences ({args.sequences} x 30 frames, simulated detections): MPJPE mm")
    print(f"{'start / fit':20s} {'root-relative':>13s} {'PA':>6s}")
    for name, (root_relative, pa) in synthetic_accuracy(args.sequences, 30).items():
        print(f"{name:20s} {root_relative:13.2f} {pa:6.2f}")
    (one, ratio), (two, _) = results["one hand"], results["two hands"]
    print(f"\nrealtime: one hand {one:.1f} fps ({ratio:.2f}x MediaPipe alone), two hands {two:.1f} fps")


if __name__ == "__main__":
    main()
