"""OHTA end to end on synthetic hands: does one-shot creation beat the prior alone on new poses and views?

    python bench/ohta_quality.py [--work outputs/bench_ohta_quality] [--steps 400] [--subjects 7 8]

1. A synthetic InterHand-format set (10 captures x 48 right-hand images at 128², a new lighting per image) is
   exported as one-shot inputs at 64²; prior learning (`configs/ohta/prior_synthetic.yaml`: PairOF warm-up, then
   `--steps` steps) runs on 9 of the captures.
2. Each held-out subject (`--subjects`: generator seeds) is a new synthetic capture whose lighting is fixed
   (`lighting=capture`), so its appearance is known and the same in every frame up to pose: 48 images, 4
   cameras. Creation (the release's full schedule) uses its first frame; both the prior alone and the created
   avatar are then scored on the other 47 frames (new poses and cameras) with the release's protocol (PSNR and
   SSIM over the full frame on black) and PSNR over the hand mask.

Every stage is kept in --work and skipped when its output exists. On 2 CPU threads: prior learning ~45 min,
creation ~3.5 min per subject, evaluation ~1 min per avatar.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_inputs(folder: Path, seed: int, lighting: str, images: int) -> Path:
    """Right-hand one-shot inputs at 64² (img/, mask/, anno/, captures.json) from a fresh synthetic set."""
    from hands.cli.synth import main as make_synthetic
    from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset
    from hands.mano import build_mano
    from hands.ohta.interhand_inputs import export_ohta

    raw, inputs = folder / "interhand", folder / "inputs"
    if not raw.exists():
        make_synthetic(["--output", str(raw), "--device", "cpu", f"num_images={images}", "image_width=128",
                        "image_height=128", "cameras_per_capture=4", "frames_per_sequence=4", "sequences_per_capture=3",
                        "hand_type_weights=[1.0,0.0,0.0]", f"lighting={lighting}", f"seed={seed}"])
    if not inputs.exists():
        layers = {side: build_mano(side, pose_convention="flat") for side in ("right", "left")}
        config = InterHandDataConfig(root=str(raw), image_size=64, bbox_scale=1.5, require_mano=True, mirror_left=True)
        export_ohta(InterHandDataset(config, mano_layers=layers), inputs)
    return inputs


def training_split(inputs: Path, folder: Path) -> Path:
    """All captures but the last, copied to their own one-shot folder."""
    if not folder.exists():
        captures = json.loads((inputs / "captures.json").read_text())
        kept = {name: c for name, c in captures.items() if c != max(captures.values())}
        for sub in ("img", "mask", "anno"):
            (folder / sub).mkdir(parents=True)
            for name in kept:
                source = next((inputs / sub).glob(f"{name}.*"))
                shutil.copy(source, folder / sub / source.name)
        (folder / "captures.json").write_text(json.dumps(kept))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="outputs/bench_ohta_quality")
    parser.add_argument("--steps", type=int, default=400, help="prior-learning steps after the PairOF warm-up")
    parser.add_argument("--subjects", type=int, nargs="+", default=[7, 8], help="generator seeds of held-out subjects")
    args = parser.parse_args()
    from hands.cli import avatar as create
    from hands.cli import train
    from hands.mano import load_mano_model
    from hands.ohta.checkpoint import load_avatar
    from hands.ohta.evaluation import evaluate_avatar

    work = Path(args.work)
    train_inputs = training_split(synthetic_inputs(work / "training", 0, "image", 480), work / "training" / "split")
    run = work / f"prior_{args.steps}"
    if not (run / "prior").exists():
        start = time.time()
        train.main(["--config", str(ROOT / "configs/ohta/prior_synthetic.yaml"), "--overwrite", f"trainer.output={run}",
                    f"ohta.data={train_inputs}", "ohta.image_size=64", "ohta.patch_size=16", f"trainer.max_steps={args.steps}",
                    "trainer.checkpoint_every_steps=100", "trainer.accelerator=cpu", "trainer.devices=1",
                    f"ohta.lr_decay_steps={args.steps}"])
        print(f"prior learning: {args.steps} steps in {time.time() - start:.0f} s")
    model = load_mano_model("right")
    rows = []
    for seed in args.subjects:
        frames = sorted((synthetic_inputs(work / f"subject_{seed}", seed, "capture", 48) / "img").glob("*"))
        created = work / f"subject_{seed}" / "created"
        if not (created / frames[0].stem / "avatar").exists():
            start = time.time()
            create.main(["--input", str(frames[0]), "--checkpoint", str(run / "prior"), "--out", str(created),
                         "--overwrite", "--quiet", "size=64"])
            print(f"subject {seed}: creation at 64² in {time.time() - start:.0f} s")
        for name, path in (("prior alone", run / "prior"), ("created", created / frames[0].stem / "avatar")):
            mean = evaluate_avatar(load_avatar(path, model), frames[1:], size=64)["mean"]
            rows.append((seed, name, mean))
    print(f"\n{'subject':>7s} {'avatar':12s} {'frames':>6s} {'PSNR':>6s} {'SSIM':>6s} {'PSNR hand':>9s}")
    for seed, name, mean in rows:
        print(f"{seed:7d} {name:12s} {47:6d} {mean['psnr']:6.2f} {mean['ssim']:6.3f} {mean['psnr_hand']:9.2f}")


if __name__ == "__main__":
    main()
