"""What one `hands synth --source attentionhand` image costs, in plain ControlNet sampling steps timed in the same run.

    python bench/synth.py [--configs tiny sd15] [--size 512] [--sd15_size 256] [--steps 20] [--batch 4] [--device cpu]

Per image: the view's condition (scene sampling, mesh image render), AttentionHand's sampling (`--steps` DDIM
steps with CFG, `--batch` views per batch) and the quality check (MediaPipe + the fast fit), each as seconds and
as a multiple of one plain ControlNet sampling step (ControlNet + UNet on the 2 CFG latents, batch 1) at the same
size. The ratio carries over to a GPU: images per second there ~ 1 / (ratio x that GPU's step time). Random
weights (the speed does not depend on them); SD1.5-sized models at --sd15_size on a CPU (512 takes minutes).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from attentionhand import random_parts, sampling_step_seconds

from hands.attentionhand.pipeline import SamplingConfig
from hands.attentionhand.synthetic_source import AttentionHandSource
from hands.data.synthetic.generator import SyntheticConfig, SyntheticWriter
from hands.utils.device import resolve_device


def conditions(size: int, count: int, device: torch.device) -> tuple[list, float]:
    """`count` view conditions of the synthetic generator at size² and the seconds per condition."""
    config = SyntheticConfig(image_width=size, image_height=size, cameras_per_capture=count, hand_type_weights=[1, 1, 1])
    writer = SyntheticWriter(config, "unused", device)
    start = time.perf_counter()
    capture = writer.capture(0)
    scene = writer.sampler.sample(np.random.default_rng(0), "interacting", capture["betas"])
    views = [writer.view_condition(scene, camera, k, f"{k}.jpg", False, capture["skin"])
             for k, camera in enumerate(capture["cameras"])]
    return views, (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "sd15"])
    parser.add_argument("--size", type=int, default=512, help="image size of the tiny models")
    parser.add_argument("--sd15_size", type=int, default=256, help="image size of the SD1.5-sized models on this machine")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no_quality", action="store_true", help="skip the quality check (MediaPipe + fit)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    device = resolve_device(args.device)
    for name in args.configs:
        parts = random_parts(name, device)
        parts.controlnet.eval()
        size = args.size if name == "tiny" else args.sd15_size
        plain = sampling_step_seconds(parts, size, "plain", args.repeats, device)
        views, condition_seconds = conditions(size, args.batch, device)
        source = AttentionHandSource(parts, SamplingConfig(steps=args.steps, image_size=size), batch_size=args.batch)
        start = time.perf_counter()
        made = source.images(views)
        sampling_seconds = (time.perf_counter() - start) / len(views)
        rows = {"condition": condition_seconds, f"sampling ({args.steps} steps, batch {args.batch})": sampling_seconds}
        if not args.no_quality:
            from hands.fit.quality import FitQuality

            check = FitQuality()
            start = time.perf_counter()
            for view, (image, _) in zip(views, made):
                check(image, view)
            rows["quality check"] = (time.perf_counter() - start) / len(views)
            check.close()
        total = sum(rows.values())
        print(f"== {name} models, {size}² images, {device}: plain ControlNet sampling step {plain:.3f} s ==")
        for label, seconds in {**rows, "per image": total}.items():
            print(f"{label:>32}: {seconds:8.3f} s = {seconds / plain:7.2f} plain steps")
        print(f"{'images per GPU-equivalent step':>32}: {plain / total:.4f}")
        del parts, source


if __name__ == "__main__":
    main()
