"""Throughput of hands' MANO layer vs smplx.MANO on the CPU, same model file, same process.

    python bench/mano.py [--repeats 30] [--threads N]

Prints forward passes per second at batch 1 and 1024 and the ratio ours/smplx, for the built-in model
(no pose correctives, which our layer skips) and for the same model with random pose correctives added (as the
official MANO files have), so both paths of our layer are measured.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from timing import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import smplx

    from hands.mano import build_mano
    from hands.mano.builtin import builtin_model
    from hands.mano.model_file import save_mano_file

    base = builtin_model("right")
    rng = np.random.default_rng(0)
    variants = {"built-in (no pose correctives)": base,
                "with pose correctives": replace(base, posedirs=rng.normal(scale=1e-3, size=base.posedirs.shape))}
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} runs, float32, no grad")
    print(f"{'model':32s} {'batch':>6s} {'smplx ms':>9s} {'ours ms':>8s} {'speed-up':>8s}")
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        for label, model in variants.items():
            path = save_mano_file(model, Path(folder) / label.split()[0] / "MANO_RIGHT.pkl")
            ref = smplx.create(str(path), model_type="mano", use_pca=False, flat_hand_mean=True)
            ours = build_mano("right", path, pose_convention="flat")
            for batch in (1, 1024):
                g = torch.randn(batch, 3) * 0.5
                p = torch.randn(batch, 45) * 0.5
                b = torch.randn(batch, 10)
                t_ref = median_seconds(lambda: ref(global_orient=g, hand_pose=p, betas=b), args.repeats)
                t_ours = median_seconds(lambda: ours(g, p, b), args.repeats)
                diff = (ref(global_orient=g, hand_pose=p, betas=b).vertices - ours(g, p, b).vertices).abs().max().item()
                print(f"{label:32s} {batch:6d} {t_ref * 1e3:9.3f} {t_ours * 1e3:8.3f} {t_ref / t_ours:7.2f}x"
                      f"   (max |dv| {diff:.1e} m)")


if __name__ == "__main__":
    main()
