"""Training AttentionHand: a LightningModule over the frozen SD1.5 parts and the trainable ControlNet.

One step (the release's `p_losses`, with its local-latent bug fixed): encode the global and local RGB with the VAE,
share one timestep, noise each latent with its own noise, optionally move both noisy latents with the text attention
stage, predict the noise with the ControlNet-conditioned UNet (one ControlNet for both branches, the mesh image and
its crop as hints) and take 0.5·MSE_global + 0.5·MSE_local. Checkpoints hold only the trainable weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from hands.attentionhand.attention import TextAttentionConfig, text_attention_update
from hands.attentionhand.components import DEFAULT_BASE, StableDiffusionParts, encode_images, encode_prompts, load_parts
from hands.attentionhand.data import ModalitiesDataset
from hands.attentionhand.tokenizer import hand_token_positions
from hands.io.atomic import atomic_directory, atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass
class AttentionHandTrainConfig:
    """Data, base weights and optimisation of an AttentionHand training run (release defaults)."""

    data: str = "data/attentionhand/modalities.json"
    """Training modalities (JSON lines with mesh, rgb, text and optionally bbox), e.g. from `hands prepare`."""
    init_checkpoint: str = DEFAULT_BASE
    """SD1.5 + ControlNet weights to start from: the official sd15_ini.ckpt / attentionhand.ckpt, or a local
    diffusers folder."""
    architecture: Literal["sd15", "tiny"] = "sd15"
    """Layout of an ldm checkpoint in `base`: sd15, or tiny (the test models)."""
    controlnet: str | None = None
    """A ControlNet folder (save_pretrained) to start from instead of the one in `base`."""
    image_size: int = 512
    batch_size: int = 1
    num_workers: int = 0
    lr: float = 1e-5
    sd_locked: bool = True
    """Train the ControlNet only; False also trains the UNet's decoder (release option)."""
    local_weight: float = 0.5
    """Loss = (1 - w)·MSE_global + w·MSE_local; 0 trains the global branch only."""
    local_latent: Literal["local", "global"] = "local"
    """Latent the local branch noises: local (the paper) or global (the released code's bug, for comparison)."""
    local_box: Literal["release", "all_pixels"] = "release"
    """Hand box of the local branch without a bbox: release (first two contours of the 512² mesh image) or
    all_pixels (every pixel brighter than 127)."""
    text_attention: TextAttentionConfig = field(default_factory=TextAttentionConfig)
    log_images_every: int = 100
    """Sample images from the first training batch every N steps into <output>/images (0: never)."""
    log_sampling_steps: int = 20
    seed: int = 0


def controlled_noise_prediction(parts: StableDiffusionParts, latents: torch.Tensor, timesteps: torch.Tensor,
                                text: torch.Tensor, hint: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """ε from the UNet with the ControlNet's residuals (mid + 12 skips, times `scale`): latents (B, 4, h, w), hint
    (B, 3, 8h, 8w) in [0, 1], text (B, 77, D)."""
    down, mid = parts.controlnet(latents, timesteps, encoder_hidden_states=text, controlnet_cond=hint,
                                 conditioning_scale=scale, return_dict=False)
    return parts.unet(latents, timesteps, encoder_hidden_states=text, down_block_additional_residuals=down,
                      mid_block_additional_residual=mid).sample


class AttentionHandModule(pl.LightningModule):
    """The SD parts, the two-branch diffusion loss and the text attention stage."""

    def __init__(self, config: AttentionHandTrainConfig, parts: StableDiffusionParts | None = None) -> None:
        super().__init__()
        if config.local_latent not in ("local", "global"):
            raise ValueError(f"local_latent: expected local or global, got {config.local_latent!r}")
        if config.text_attention.mode not in ("paper", "fast", "off"):
            raise ValueError(f"text_attention.mode: expected paper, fast or off, got {config.text_attention.mode!r}")
        if config.local_box not in ("release", "all_pixels"):
            raise ValueError(f"local_box: expected release or all_pixels, got {config.local_box!r}")
        if config.text_attention.hand_words not in ("project", "release"):
            raise ValueError(f"text_attention.hand_words: expected project or release, got {config.text_attention.hand_words!r}")
        self.config = config
        self.parts = (parts or load_parts(config.init_checkpoint, config.controlnet, config.architecture)).freeze()
        self.controlnet = self.parts.controlnet
        self.unet = self.parts.unet
        self.vae, self.text_encoder = self.parts.vae, self.parts.text_encoder
        if not config.sd_locked:
            for module in (self.unet.up_blocks, self.unet.conv_norm_out, self.unet.conv_out):
                module.requires_grad_(True)
        self.scheduler = self.parts.noise_scheduler
        self.strict_loading = False  # checkpoints hold the trainable weights only
        self.last_text_attention_loss: list[float] = []

    def datasets(self) -> ModalitiesDataset:
        return ModalitiesDataset(self.config.data, self.config.image_size, require_rgb=True, local_box=self.config.local_box)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.trainable_parameters(), lr=self.config.lr)

    @property
    def branches(self) -> int:
        """2 (global and local) unless local_weight is 0 (global only)."""
        return 2 if self.config.local_weight > 0 else 1

    def noisy_latents(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """Shared timesteps, per-branch noise and noisy latents (branches, B, 4, h, w), and the text embedding."""
        x0 = [encode_images(self.parts, batch["rgb_global"])]
        if self.branches == 2:
            x0.append(encode_images(self.parts, batch["rgb_local"]) if self.config.local_latent == "local" else x0[0])
        count = x0[0].shape[0]
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (count,), device=self.device, generator=generator)
        noise = torch.randn((len(x0),) + x0[0].shape, device=self.device, generator=generator)
        return {"timesteps": timesteps, "noise": noise, "text": encode_prompts(self.parts, list(batch["text"])),
                "noisy": torch.stack([self.scheduler.add_noise(x, n, timesteps) for x, n in zip(x0, noise)])}

    def apply_text_attention(self, inputs: dict, prompts: list[str]) -> torch.Tensor:
        """The branches' noisy latents after the text attention stage: (branches, B, 4, h, w)."""
        config = self.config.text_attention
        noisy = inputs["noisy"]
        if config.mode == "off":
            return noisy
        positions = [hand_token_positions(self.parts.tokenizer, prompt, config.hand_words) for prompt in prompts]
        timesteps, text = inputs["timesteps"], inputs["text"]
        branches = noisy.shape[0]
        if config.mode == "fast":  # all branches in one pass
            both, losses = text_attention_update(self.unet, noisy.flatten(0, 1), timesteps.repeat(branches),
                                                 text.repeat(branches, 1, 1), positions * branches, config)
            self.last_text_attention_loss = losses
            return both.unflatten(0, (branches, -1))
        updated = []
        for branch in noisy:
            latents, losses = text_attention_update(self.unet, branch, timesteps, text, positions, config)
            updated.append(latents)
            self.last_text_attention_loss = losses
        return torch.stack(updated)

    def diffusion_losses(self, batch: dict, generator: torch.Generator | None = None,
                         text_attention: bool = True) -> dict[str, torch.Tensor]:
        """ε-MSE of the global and local branches and their weighted sum (one ControlNet+UNet pass for both)."""
        inputs = self.noisy_latents(batch, generator)
        noisy = self.apply_text_attention(inputs, list(batch["text"])) if text_attention else inputs["noisy"]
        branches, count = noisy.shape[:2]
        hints = torch.cat([batch["mesh_global"], batch["mesh_local"]][:branches])
        predicted = controlled_noise_prediction(self.parts, noisy.flatten(0, 1), inputs["timesteps"].repeat(branches),
                                                inputs["text"].repeat(branches, 1, 1), hints)
        errors = [F.mse_loss(p.float(), n.float()) for p, n in zip(predicted.split(count), inputs["noise"])]
        if branches == 1:
            return {"loss": errors[0], "loss_global": errors[0]}
        w = self.config.local_weight
        return {"loss": (1 - w) * errors[0] + w * errors[1], "loss_global": errors[0], "loss_local": errors[1]}

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        losses = self.diffusion_losses(batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=len(batch["text"]))
        if self.last_text_attention_loss:
            self.log("train/text_attention_loss", self.last_text_attention_loss[0], batch_size=len(batch["text"]))
        return losses["loss"]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    def export_controlnet(self, folder: str | Path, overwrite: bool = False) -> Path:
        """`save_pretrained` the ControlNet into `folder` (written beside, then renamed into place)."""
        with atomic_directory(folder, overwrite) as tmp:
            self.controlnet.save_pretrained(tmp)
        return Path(folder)


class ImageLogger(pl.Callback):
    """Every `every` steps, sample from the first batch's mesh images and prompts into <folder>/step_NNNNNN.png
    (mesh | sample | photo per row) with the prompts beside it (global rank 0 only)."""

    def __init__(self, folder: str | Path, every: int, steps: int = 20, rows: int = 4) -> None:
        self.folder, self.every, self.steps, self.rows = Path(folder), every, steps, rows

    def on_train_batch_end(self, trainer: pl.Trainer, module: AttentionHandModule, outputs, batch: dict, batch_index: int) -> None:
        step = trainer.global_step
        if self.every <= 0 or step % self.every or not trainer.is_global_zero:
            return
        from hands.attentionhand.pipeline import SamplingConfig, sample_images
        from hands.io.images import encode_image

        to_uint8 = lambda t: (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype("uint8")  # noqa: E731
        size = batch["mesh_global"].shape[-1]
        config = SamplingConfig(steps=self.steps, num_samples=1, image_size=size)
        rows = []
        for i in range(min(self.rows, len(batch["text"]))):
            mesh = to_uint8(batch["mesh_global"][i])
            images, _ = sample_images(module.parts, mesh, batch["text"][i], config)
            rows.append(np.concatenate([mesh, images[0], to_uint8((batch["rgb_global"][i] + 1) / 2)], axis=1))
        name = self.folder / f"step_{step:06d}"
        atomic_write_bytes(name.with_suffix(".png"), encode_image(np.concatenate(rows, axis=0), ".png"), overwrite=True)
        atomic_write_bytes(name.with_suffix(".txt"), "".join(t + "\n" for t in batch["text"][:len(rows)]).encode(), overwrite=True)
        module.controlnet.train()


def training_callbacks(config: AttentionHandTrainConfig, output: Path) -> list[pl.Callback]:
    """The registry's callbacks: sample images every `log_images_every` steps into <run>/images."""
    return [ImageLogger(output / "images", config.log_images_every, config.log_sampling_steps)]


def export_trained(module: AttentionHandModule, output: Path, trainer: pl.Trainer) -> Path:
    """The registry's export: the trained ControlNet in `save_pretrained` format, <run>/controlnet."""
    return module.export_controlnet(output / "controlnet", overwrite=True)
