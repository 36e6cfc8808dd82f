"""OHTA on the CPU: rendering frames per second (thin band vs the release's dense sampling, same run) and one-shot
creation time with the release's schedule.

    python bench/ohta.py [--sizes 128 256] [--dense_sizes 128] [--creation_sizes 128] [--checkpoint PRIOR]
                         [--geometry_steps 300] [--finetune_steps 100]

Without --checkpoint there is no learned prior here: the avatar's appearance is random and PairOF is first fitted
for --geometry_steps to the built-in hand's inside/outside labels in random poses (`pretrain_pairof`), so its
occupancy is sharper, closer to a learned prior's. An untrained PairOF is soft everywhere, so every ray keeps many
samples and every renderer looks slower than it would be; a fully trained prior is sharper still, so these times are
upper bounds. Speeds do not depend on the appearance weights.

Renders: `band` and `dense` are `volume.render_image` (every sample evaluated, colour networks at every sample);
`baked` is what animate/creation use (`CachedView`: occupancy front to back, stopping at opaque rays, only the
samples carrying the weight shaded); `baked dense` bakes the release's 64 depths through the ray box instead
(`creation.volume.sampling=dense`). Creation: inversion + 7 reference views + texture fitting, 8 views x
--finetune_steps steps, 2 patches of 110/256 of the side, L1 only (no LPIPS weights here).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from timing import median_seconds

from hands.mano import load_mano_model
from hands.mano.poses import named_hand_pose
from hands.ohta.animation import PALM_TO_CAMERA, framing_view, render_view
from hands.ohta.avatar import HandAvatar
from hands.ohta.checkpoint import load_avatar
from hands.ohta.creation import CachedView, CreationConfig, create_avatar
from hands.ohta.prior import pretrain_pairof
from hands.ohta.volume import VolumeConfig, render_image

DENSE_BAKE = CreationConfig(volume=VolumeConfig(sampling="dense", perturb=False))


def once(fn) -> float:
    """Wall time of one call (a frame takes seconds; repeats would add minutes)."""
    return median_seconds(fn, repeats=1, warmup=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 256])
    parser.add_argument("--dense_sizes", type=int, nargs="*", default=[128], help="sizes to also render densely (slow)")
    parser.add_argument("--creation_sizes", type=int, nargs="*", default=[128])
    parser.add_argument("--checkpoint", help="a prior (.tar or avatar folder) instead of the geometry fit")
    parser.add_argument("--geometry_steps", type=int, default=600)
    parser.add_argument("--fill", type=float, default=0.6, help="share of the image side the hand spans")
    parser.add_argument("--finetune_steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_mano_model("right")
    if args.checkpoint:
        avatar = load_avatar(args.checkpoint, model)
        print(f"prior: {args.checkpoint}")
    else:
        avatar = HandAvatar(model)
        start = time.perf_counter()
        losses = pretrain_pairof(avatar, model, args.geometry_steps)
        print(f"PairOF fitted to the hand's occupancy: {args.geometry_steps} steps, MSE {np.mean(losses[-20:]):.4f} "
              f"(first 20: {np.mean(losses[:20]):.4f}), {time.perf_counter() - start:.0f} s")
    avatar.requires_grad_(False)
    pose = torch.cat([torch.tensor(PALM_TO_CAMERA), torch.as_tensor(named_hand_pose("relaxed")).float()])
    pose[:3] = torch.tensor([math.pi * 0.9, 0.3, 0.1])
    identity = avatar.appearance.id_feature[None]
    print(f"torch threads: {torch.get_num_threads()}")
    print("| size | renderer | seconds/frame | frames/s | vs dense |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        view = framing_view(avatar, pose, torch.zeros(10), size, fill=args.fill)
        K, Th = view.K[None], view.Th[None]
        with torch.no_grad():
            posed = avatar.pose(view.pose[None, :3], view.pose[None, 3:], view.betas[None], torch.Generator().manual_seed(0))
            times = {"band": once(lambda: render_image(avatar, posed, K, Th, view.size, identity, VolumeConfig(perturb=False))),
                     "baked": once(lambda: render_view(avatar, view)),
                     "baked dense": once(lambda: render_view(avatar, view, config=DENSE_BAKE))}
            if size in args.dense_sizes:
                times["dense"] = once(lambda: render_image(avatar, posed, K, Th, view.size, identity,
                                                              VolumeConfig(sampling="dense", perturb=False)))
        for name, value in times.items():
            ratio = f"{times['dense'] / value:.1f}x faster" if "dense" in times and name != "dense" else "-"
            print(f"| {size}² | {name} | {value:.2f} | {1 / value:.2f} | {ratio} |", flush=True)
    for size in args.creation_sizes:
        view = framing_view(avatar, pose, torch.zeros(10), size, fill=args.fill)
        config = CreationConfig(finetune_steps=args.finetune_steps)
        cached = CachedView(avatar, view, config)
        target = render_view(avatar, view)
        mask = (cached.opacity > 0.5).cpu().numpy()
        start = time.perf_counter()
        result = create_avatar(avatar, target, mask, view, config, progress=True)
        total = time.perf_counter() - start
        steps = len(result.history["finetune"])
        print(f"creation at {size}²: {total:.0f} s ({total / 60:.1f} min) for {config.inversion_steps} inversion steps and "
              f"{steps} texture-fitting steps ({config.views} views x {args.finetune_steps}); goal < 10 min at 128²", flush=True)


if __name__ == "__main__":
    main()
