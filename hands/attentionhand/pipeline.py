"""Sampling hand images from a mesh image and a prompt (the release's inference, on diffusers).

The released inference is a ControlNet pass: the mesh render decoded as grey, resized to 512² (bilinear) and
then to the sampling size (area; Lanczos above 512), the prompt `prompt + ', ' + added_prompt`, the initial noise
drawn on the sampling device right after seeding, DDIM with 20 steps, η = 0, classifier-free guidance 9 against an
empty prompt, control strength 1 on both halves, 4 samples, seed 42, and the decoded images truncated to uint8.
`AttentionGuidance` optionally adds the text attention stage at sampling time (Attend-and-Excite's per-step
latent update on the hand tokens for the first steps), which the release does only in training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from diffusers import StableDiffusionControlNetPipeline

from hands.attentionhand.attention import TextAttentionConfig, text_attention_update
from hands.attentionhand.components import StableDiffusionParts, encode_prompts
from hands.attentionhand.tokenizer import hand_token_positions
from hands.config import check_fields
from hands.io.images import decode_image_file


@dataclass
class SamplingConfig:
    """Sampling settings (defaults: the release's inference.py)."""

    steps: int = 20
    """DDIM steps."""
    guidance: float = 9.0
    """Classifier-free guidance scale."""
    num_samples: int = 4
    """Images per prompt, sampled as one batch."""
    seed: int = 42
    """Seed of the initial noise (one per modalities line)."""
    image_size: int = 512
    """Side of the generated images, pixels (a multiple of 64)."""
    control_scale: float = 1.0
    """Strength of the ControlNet's residuals."""
    eta: float = 0.0
    """DDIM eta (0: deterministic)."""
    added_prompt: str = ""
    """Appended to every prompt after ', ' (the release's a_prompt)."""
    negative_prompt: str = ""
    """The unconditional prompt of classifier-free guidance."""
    attention_guidance: bool = False
    """Update the latent towards the hand tokens' attention during the first `guidance_steps` steps."""
    guidance_steps: int = 10
    """Steps with attention guidance."""
    guidance_step_size: float = 20.0
    """Step size of the attention guidance update."""
    noise_device: Literal["sampling", "cpu"] = "sampling"
    """Where the initial noise is drawn: on the sampling device as the release does (a CUDA seed then gives the
    release's noise), or on the CPU (the same images from one seed on every device; not the release)."""

    def __post_init__(self) -> None:
        check_fields(self, at_least={"steps": 1, "num_samples": 1, "image_size": 64, "guidance_steps": 0,
                                     "guidance_step_size": 0, "eta": 0, "control_scale": 0},
                     finite=("guidance",), multiple_of={"image_size": 64})
        if self.noise_device not in ("sampling", "cpu"):
            raise ValueError(f"noise_device must be 'sampling' or 'cpu', got {self.noise_device!r}")


HINT_SIZE = 512
"""The release resizes every mesh image to 512² before its own resize to the sampling size."""


def read_mesh_hint(path: str | Path) -> np.ndarray:
    """The mesh image as the release reads it: decoded straight to grey (cv2.IMREAD_GRAYSCALE) and resized to
    512² bilinearly: (512, 512) uint8."""
    return cv2.resize(decode_image_file(path, cv2.IMREAD_GRAYSCALE, "mesh image"), (HINT_SIZE, HINT_SIZE))


def full_prompt(prompt: str, added_prompt: str) -> str:
    """The prompt the release encodes: `prompt + ', ' + added_prompt`, also when the added prompt is empty."""
    return f"{prompt}, {added_prompt}"


def quantise_images(decoded: torch.Tensor) -> list[np.ndarray]:
    """VAE output (B, 3, H, W) in [-1, 1] -> uint8 RGB images (H, W, 3), truncated as the release does
    (x * 127.5 + 127.5, clipped to [0, 255], then cast)."""
    values = (decoded.float().permute(0, 2, 3, 1) * 127.5 + 127.5).cpu().numpy().clip(0, 255)
    return list(values.astype(np.uint8))


def build_pipeline(parts: StableDiffusionParts) -> StableDiffusionControlNetPipeline:
    """A diffusers ControlNet pipeline over the parts, with the release's DDIM schedule and no safety checker."""
    return StableDiffusionControlNetPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        controlnet=parts.controlnet, scheduler=parts.sampling_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)


def control_image(mesh: np.ndarray, size: int) -> torch.Tensor:
    """The hint as the release builds it from a grey mesh image (H, W) (`read_mesh_hint`), or an RGB render
    (H, W, 3) turned grey: resized to 512² bilinearly, then to size² (a multiple of 64) with area interpolation
    (Lanczos when enlarging); three equal channels in [0, 1]: (1, 3, size, size)."""
    grey = cv2.cvtColor(mesh, cv2.COLOR_RGB2GRAY) if mesh.ndim == 3 else mesh
    if grey.shape != (HINT_SIZE, HINT_SIZE):
        grey = cv2.resize(grey, (HINT_SIZE, HINT_SIZE))
    side = int(np.round(size / 64.0)) * 64
    if side != size:
        raise ValueError(f"image_size must be a multiple of 64 (the release rounds it), got {size}")
    interpolation = cv2.INTER_LANCZOS4 if size > HINT_SIZE else cv2.INTER_AREA
    grey = cv2.resize(grey, (size, size), interpolation=interpolation)
    return torch.from_numpy(grey).float().div(255.0)[None, None].repeat(1, 3, 1, 1)


class AttentionGuidance:
    """Attend-and-Excite on the hand tokens at sampling time, as a step callback of the pipeline: after step i it
    moves the latent the pipeline will denoise at step i + 1."""

    def __init__(self, parts: StableDiffusionParts, text: torch.Tensor, positions: list[int], config: SamplingConfig) -> None:
        self.parts, self.text, self.positions = parts, text, positions
        self.last_step = config.guidance_steps
        self.attention = TextAttentionConfig(mode="fast", step_size=config.guidance_step_size)
        self.losses: list[float] = []

    def update(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        count = latents.shape[0]
        timesteps = timestep.reshape(1).to(latents.device).repeat(count)
        updated, losses = text_attention_update(self.parts.unet, latents, timesteps, self.text.repeat(count, 1, 1),
                                                [self.positions] * count, self.attention, iterations=1)
        self.losses += losses
        return updated.to(latents.dtype)

    def __call__(self, pipeline: StableDiffusionControlNetPipeline, step: int, timestep, kwargs: dict) -> dict:
        timesteps = pipeline.scheduler.timesteps
        if step + 1 < min(self.last_step, len(timesteps)):
            kwargs["latents"] = self.update(kwargs["latents"], timesteps[step + 1])
        return kwargs


@torch.no_grad()
def sample_images(parts: StableDiffusionParts, mesh: np.ndarray, prompt: str, config: SamplingConfig,
                  pipeline: StableDiffusionControlNetPipeline | None = None,
                  progress: bool = False) -> tuple[list[np.ndarray], dict]:
    """`num_samples` uint8 RGB images (size², 3) for a mesh image (grey (H, W) from `read_mesh_hint`, or an RGB
    render (H, W, 3)) and a prompt, and a record of what made them (prompt, seed and noise device, settings,
    attention loss when guided)."""
    pipeline = pipeline or build_pipeline(parts)
    pipeline.set_progress_bar_config(disable=not progress)
    device = parts.unet.device
    hint = control_image(mesh, config.image_size).to(device)
    prompt = full_prompt(prompt, config.added_prompt)
    text = encode_prompts(parts, [prompt])
    negative = encode_prompts(parts, [config.negative_prompt])
    noise_device = device if config.noise_device == "sampling" else torch.device("cpu")
    generator = torch.Generator(device=noise_device).manual_seed(config.seed)  # = the release's seed_everything
    latent_size = config.image_size // parts.vae_factor
    shape = (config.num_samples, parts.unet.config.in_channels, latent_size, latent_size)
    latents = torch.randn(shape, generator=generator, device=noise_device).to(device=device, dtype=parts.unet.dtype)
    record = {"prompt": prompt, "seed": config.seed, "noise_device": str(noise_device), "steps": config.steps,
              "guidance": config.guidance, "control_scale": config.control_scale,
              "attention_guidance": config.attention_guidance}
    callback = None
    if config.attention_guidance:
        positions = hand_token_positions(parts.tokenizer, prompt)
        record["hand_token_positions"] = positions
        if positions:
            callback = AttentionGuidance(parts, text, positions, config)
            pipeline.scheduler.set_timesteps(config.steps)
            latents = callback.update(latents * pipeline.scheduler.init_noise_sigma, pipeline.scheduler.timesteps[0])
            latents = latents / pipeline.scheduler.init_noise_sigma
    output = pipeline(
        prompt_embeds=text.repeat(config.num_samples, 1, 1), negative_prompt_embeds=negative.repeat(config.num_samples, 1, 1),
        image=hint, height=config.image_size, width=config.image_size, num_inference_steps=config.steps,
        guidance_scale=config.guidance, eta=config.eta, controlnet_conditioning_scale=config.control_scale,
        latents=latents, generator=generator, output_type="latent", callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents"])
    if callback is not None:
        record["attention_loss"] = [round(v, 5) for v in callback.losses]
    decoded = parts.vae.decode(output.images / parts.latent_scale).sample
    return quantise_images(decoded), record


@torch.no_grad()
def sample_batch(parts: StableDiffusionParts, meshes: list[np.ndarray], prompts: list[str], seeds: list[int],
                 config: SamplingConfig, pipeline: StableDiffusionControlNetPipeline | None = None) -> tuple[list[np.ndarray], list[dict]]:
    """One image (size², 3) per (mesh image, prompt, seed), sampled as one batch. Each sample's noise comes from
    its own generator seeded as `sample_images` seeds it, so a sample's image does not depend on its batch (up to
    float rounding). With attention guidance the samples run one at a time (its update is per prompt)."""
    if not len(meshes) == len(prompts) == len(seeds):
        raise ValueError(f"sample_batch: {len(meshes)} meshes, {len(prompts)} prompts and {len(seeds)} seeds")
    pipeline = pipeline or build_pipeline(parts)
    single = [replace(config, seed=int(seed), num_samples=1) for seed in seeds]
    if config.attention_guidance or len(meshes) == 1:
        made = [sample_images(parts, mesh, prompt, one, pipeline) for mesh, prompt, one in zip(meshes, prompts, single)]
        return [images[0] for images, _ in made], [record for _, record in made]
    pipeline.set_progress_bar_config(disable=True)
    device = parts.unet.device
    hints = torch.cat([control_image(mesh, config.image_size) for mesh in meshes]).to(device)
    texts = encode_prompts(parts, [full_prompt(p, config.added_prompt) for p in prompts])
    negative = encode_prompts(parts, [config.negative_prompt]).repeat(len(meshes), 1, 1)
    noise_device = device if config.noise_device == "sampling" else torch.device("cpu")
    generators = [torch.Generator(device=noise_device).manual_seed(int(seed)) for seed in seeds]
    latent_size = config.image_size // parts.vae_factor
    shape = (1, parts.unet.config.in_channels, latent_size, latent_size)
    latents = torch.cat([torch.randn(shape, generator=g, device=noise_device) for g in generators])
    output = pipeline(
        prompt_embeds=texts, negative_prompt_embeds=negative, image=hints, height=config.image_size,
        width=config.image_size, num_inference_steps=config.steps, guidance_scale=config.guidance, eta=config.eta,
        controlnet_conditioning_scale=config.control_scale, latents=latents.to(device=device, dtype=parts.unet.dtype),
        generator=generators, output_type="latent")
    images = quantise_images(parts.vae.decode(output.images / parts.latent_scale).sample)
    records = [{"prompt": full_prompt(p, config.added_prompt), "seed": int(seed), "noise_device": str(noise_device),
                "steps": config.steps, "guidance": config.guidance, "control_scale": config.control_scale,
                "attention_guidance": False} for p, seed in zip(prompts, seeds)]
    return images, records
