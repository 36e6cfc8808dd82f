"""Sampling hand images from a mesh image and a prompt (the release's inference, on diffusers).

The released inference is a ControlNet pass: the mesh render read as grey, resized to 512², DDIM with 20 steps,
η = 0, classifier-free guidance 9 against an empty prompt, control strength 1 on both halves, 4 samples, seed 42.
`AttentionGuidance` optionally adds the text attention stage at sampling time (Attend-and-Excite's per-step
latent update on the hand tokens for the first steps), which the release does only in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from diffusers import StableDiffusionControlNetPipeline

from hands.attentionhand.attention import TextAttentionConfig, text_attention_update
from hands.attentionhand.components import StableDiffusionParts, encode_prompts
from hands.attentionhand.tokenizer import hand_token_positions


@dataclass
class SamplingConfig:
    """Sampling settings (defaults: the release's inference.py)."""

    steps: int = 20
    guidance: float = 9.0
    """Classifier-free guidance scale."""
    num_samples: int = 4
    """Images per prompt, sampled as one batch."""
    seed: int = 42
    image_size: int = 512
    control_scale: float = 1.0
    eta: float = 0.0
    added_prompt: str = ""
    """Appended to every prompt after ', ' (the release's a_prompt)."""
    negative_prompt: str = ""
    attention_guidance: bool = False
    """Update the latent towards the hand tokens' attention during the first `guidance_steps` steps."""
    guidance_steps: int = 10
    guidance_step_size: float = 20.0


def build_pipeline(parts: StableDiffusionParts) -> StableDiffusionControlNetPipeline:
    """A diffusers ControlNet pipeline over the parts, with the release's DDIM schedule and no safety checker."""
    return StableDiffusionControlNetPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        controlnet=parts.controlnet, scheduler=parts.sampling_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)


def control_image(mesh_rgb: np.ndarray, size: int) -> torch.Tensor:
    """The hint as the release builds it: the mesh render in grey, resized to size², three channels in [0, 1]:
    (1, 3, size, size)."""
    grey = cv2.resize(cv2.cvtColor(mesh_rgb, cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_LINEAR)
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
def sample_images(parts: StableDiffusionParts, mesh_rgb: np.ndarray, prompt: str, config: SamplingConfig,
                  pipeline: StableDiffusionControlNetPipeline | None = None,
                  progress: bool = False) -> tuple[list[np.ndarray], dict]:
    """`num_samples` uint8 RGB images (size², 3) for a mesh image (H, W, 3 uint8) and a prompt, and a record of
    what made them (prompt, seed, settings, attention loss when guided)."""
    pipeline = pipeline or build_pipeline(parts)
    pipeline.set_progress_bar_config(disable=not progress)
    device = parts.unet.device
    full_prompt = f"{prompt}, {config.added_prompt}" if config.added_prompt else prompt
    text = encode_prompts(parts, [full_prompt])
    negative = encode_prompts(parts, [config.negative_prompt])
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    latent_size = config.image_size // parts.vae_factor
    shape = (config.num_samples, parts.unet.config.in_channels, latent_size, latent_size)
    latents = torch.randn(shape, generator=generator).to(device=device, dtype=parts.unet.dtype)
    record = {"prompt": full_prompt, "seed": config.seed, "steps": config.steps, "guidance": config.guidance,
              "control_scale": config.control_scale, "attention_guidance": config.attention_guidance}
    callback = None
    if config.attention_guidance:
        positions = hand_token_positions(parts.tokenizer, full_prompt)
        record["hand_token_positions"] = positions
        if positions:
            callback = AttentionGuidance(parts, text, positions, config)
            pipeline.scheduler.set_timesteps(config.steps)
            latents = callback.update(latents * pipeline.scheduler.init_noise_sigma, pipeline.scheduler.timesteps[0])
            latents = latents / pipeline.scheduler.init_noise_sigma
    output = pipeline(
        prompt_embeds=text.repeat(config.num_samples, 1, 1), negative_prompt_embeds=negative.repeat(config.num_samples, 1, 1),
        image=control_image(mesh_rgb, config.image_size).to(device), height=config.image_size, width=config.image_size,
        num_inference_steps=config.steps, guidance_scale=config.guidance, eta=config.eta,
        controlnet_conditioning_scale=config.control_scale, latents=latents, output_type="np",
        callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    if callback is not None:
        record["attention_loss"] = [round(v, 5) for v in callback.losses]
    images = [np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8) for image in output.images]
    return images, record
