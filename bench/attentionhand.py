"""AttentionHand costs, as ratios measured in the same run.

    python bench/attentionhand.py [--configs tiny sd15] [--sd15_size 256] [--paper_iterations 5] [--device cpu]

Training step (forward + backward + AdamW, batch 1, random weights; the speed does not depend on the weights):
- controlnet: a plain ControlNet step, global branch only (diffusers' train_controlnet recipe);
- two-branch: AttentionHand's global + local step without the text attention stage (the denominator the fast mode
  is held to, ≤ 1.5x);
- fast: the same with the fast text attention stage;
- paper: the release's stage, 50 latent updates per branch. It is timed with --paper_iterations updates and the
  rest extrapolated linearly (each update is the same UNet pass), and said so.
Sampling (one DDIM step with CFG = ControlNet + UNet on 2 latents): with the capturing processors installed, and
with attention guidance (capture + a gradient step on the latent).
SD1.5-sized models run at --sd15_size pixels on a CPU (512 takes minutes per step); the tiny ones at 128.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from timing import median_seconds

from hands.attentionhand.attention import TextAttentionConfig, capture_cross_attention, text_attention_update
from hands.attentionhand.components import StableDiffusionParts, build_architecture, encode_prompts
from hands.attentionhand.tokenizer import clip_tokenizer, hand_token_positions
from hands.attentionhand.training import AttentionHandModule, AttentionHandTrainConfig, controlled_noise_prediction
from hands.utils.device import resolve_device

PROMPT = "A woman is holding up her hand with fingers spread out while holding a pair of scissors."


def random_batch(size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    image = lambda: torch.rand(1, 3, size, size, generator=g)  # noqa: E731
    batch = {"rgb_global": image() * 2 - 1, "rgb_local": image() * 2 - 1, "mesh_global": image(), "mesh_local": image()}
    return {**{k: v.to(device) for k, v in batch.items()}, "text": [PROMPT]}


def training_step_seconds(parts: StableDiffusionParts, size: int, mode: str, local_weight: float, iterations: int,
                          repeats: int, device: torch.device) -> float:
    config = AttentionHandTrainConfig(image_size=size, local_weight=local_weight)
    config.text_attention = TextAttentionConfig(mode=mode, iterations=iterations)
    module = AttentionHandModule(config, parts).to(device)
    optimizer = module.configure_optimizers()
    batch = random_batch(size, device)

    def step() -> None:
        loss = module.diffusion_losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return median_seconds(step, repeats, warmup=1)


def sampling_step_seconds(parts: StableDiffusionParts, size: int, variant: str, repeats: int, device: torch.device) -> float:
    latent = size // parts.vae_factor
    latents = torch.randn(2, 4, latent, latent, device=device)
    text = encode_prompts(parts, [PROMPT, ""])
    hint = torch.rand(2, 3, size, size, device=device)
    timesteps = torch.tensor([500, 500], device=device)
    positions = [hand_token_positions(parts.tokenizer, PROMPT)]

    def step() -> None:
        if variant == "guided":
            text_attention_update(parts.unet, latents[:1], timesteps[:1], text[:1], positions, TextAttentionConfig(mode="fast"))
        with torch.no_grad():
            if variant == "capture":
                with capture_cross_attention(parts.unet):
                    controlled_noise_prediction(parts, latents, timesteps, text, hint)
            else:
                controlled_noise_prediction(parts, latents, timesteps, text, hint)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return median_seconds(step, repeats, warmup=1)


def random_parts(name: str, device: torch.device) -> StableDiffusionParts:
    """SD1.5-layout parts of architecture `name` (tiny or sd15) with random weights, frozen, on `device`."""
    torch.manual_seed(0)
    unet, vae, text_encoder, controlnet = build_architecture(name)
    return StableDiffusionParts(vae, text_encoder, unet, controlnet, clip_tokenizer()).freeze().to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "sd15"])
    parser.add_argument("--sd15_size", type=int, default=256, help="image size for the SD1.5-sized models")
    parser.add_argument("--paper_iterations", type=int, default=5, help="updates timed per branch in paper mode (of 50)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per figure (x4 for the tiny models)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    device = resolve_device(args.device)
    for name in args.configs:
        parts = random_parts(name, device)
        size = 128 if name == "tiny" else args.sd15_size
        repeats = args.repeats * 4 if name == "tiny" else args.repeats
        print(f"== {name} models, {size}² images, batch 1, {device} ==")
        times = {"controlnet": training_step_seconds(parts, size, "off", 0.0, 1, repeats, device),
                 "two-branch": training_step_seconds(parts, size, "off", 0.5, 1, repeats, device),
                 "fast": training_step_seconds(parts, size, "fast", 0.5, 1, repeats, device)}
        measured = training_step_seconds(parts, size, "paper", 0.5, args.paper_iterations, repeats, device)
        per_update = (measured - times["two-branch"]) / (2 * args.paper_iterations)
        times["paper"] = times["two-branch"] + per_update * 2 * 50
        for mode, seconds in times.items():
            note = f"  (extrapolated from {args.paper_iterations} of 50 updates per branch)" if mode == "paper" else ""
            print(f"training step {mode:>10}: {seconds:8.3f} s   {seconds / times['controlnet']:6.2f}x controlnet   "
                  f"{seconds / times['two-branch']:6.2f}x two-branch{note}")
        plain = sampling_step_seconds(parts, size, "plain", repeats, device)
        for variant in ("capture", "guided"):
            seconds = sampling_step_seconds(parts, size, variant, repeats, device)
            print(f"sampling step {variant:>8}: {seconds:8.3f} s   {seconds / plain:6.2f}x plain ({plain:.3f} s)")
        del parts


if __name__ == "__main__":
    main()
