"""The Stable Diffusion 1.5 parts AttentionHand is built from, as diffusers modules.

`StableDiffusionParts` holds the frozen VAE, CLIP text encoder and UNet, the trainable ControlNet (AttentionHand's
visual attention stage), the tokenizer and the noise schedule. `load_parts(source)` reads them from a local
diffusers folder (vae/, text_encoder/, unet/, optionally controlnet/ and tokenizer/) or from an ldm-format
checkpoint (`sd15_ini.ckpt`, `attentionhand.ckpt`, see `ldm_checkpoint.py`), whose architecture is SD1.5's.
`tiny_parts()` builds randomly initialised models with SD1.5's layout at a fraction of its size, for tests and
benchmarks.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from hands.attentionhand.tokenizer import MAX_LENGTH, clip_tokenizer, fix_prompt
from hands.io.home import home_file

log = logging.getLogger(__name__)

# SD1.x's scaled-linear noise schedule (ldm: linear_start 0.00085, linear_end 0.012, 1000 steps).
#: The official weights (attentionhand.ckpt) and the training start (sd15_ini.ckpt), under $HANDS_HOME/attentionhand/.
DEFAULT_WEIGHTS = str(home_file("attentionhand", "attentionhand.ckpt"))
DEFAULT_BASE = str(home_file("attentionhand", "sd15_ini.ckpt"))

SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon")
SAMPLING = dict(clip_sample=False, set_alpha_to_one=False, steps_offset=1)

_CROSS = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
_CROSS_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, down_block_types=_CROSS, up_block_types=_CROSS_UP,
                 block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, attention_head_dim=8,
                 cross_attention_dim=768, norm_num_groups=32)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 max_position_embeddings=MAX_LENGTH, hidden_act="quick_gelu", projection_dim=768)

# The same layout (4 UNet levels, 2 layers each, cross-attention at 1/1, 1/2, 1/4; an f8 VAE) at ~1 % of the width.
TINY_UNET = dict(SD15_UNET, sample_size=16, block_out_channels=(16, 32, 32, 32), attention_head_dim=2,
                 cross_attention_dim=32, norm_num_groups=8)
TINY_VAE = dict(SD15_VAE, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, sample_size=128)
TINY_TEXT = dict(SD15_TEXT, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 projection_dim=32)
ARCHITECTURES = {"sd15": (SD15_UNET, SD15_VAE, SD15_TEXT), "tiny": (TINY_UNET, TINY_VAE, TINY_TEXT)}


@dataclass
class StableDiffusionParts:
    """SD1.5 modules: vae (f8 KL autoencoder), text_encoder (CLIP, last hidden state), unet (frozen), controlnet
    (trainable), tokenizer, and the DDPM training schedule."""

    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    unet: UNet2DConditionModel
    controlnet: ControlNetModel
    tokenizer: CLIPTokenizer

    @property
    def noise_scheduler(self) -> DDPMScheduler:
        return DDPMScheduler(**SCHEDULE)

    def sampling_scheduler(self) -> DDIMScheduler:
        """DDIM with SD1.x's schedule (eta 0 at sampling, as the release)."""
        return DDIMScheduler(**SCHEDULE, **SAMPLING)

    def freeze(self) -> "StableDiffusionParts":
        """Freeze everything but the ControlNet (the release's `sd_locked=True`)."""
        for module in (self.vae, self.text_encoder, self.unet):
            module.requires_grad_(False).eval()
        self.controlnet.requires_grad_(True).train()
        return self

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "StableDiffusionParts":
        """Move the frozen parts to `dtype` (when given) and all parts to `device`; the ControlNet stays float32."""
        for module in (self.vae, self.text_encoder, self.unet):
            module.to(device) if dtype is None else module.to(device=device, dtype=dtype)
        self.controlnet.to(device=device)
        return self

    @property
    def latent_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def build_architecture(name: str = "sd15", controlnet: bool = True) -> tuple[UNet2DConditionModel, AutoencoderKL,
                                                                               CLIPTextModel, ControlNetModel | None]:
    """Randomly initialised UNet, VAE, text encoder (and ControlNet copied from the UNet) of a named layout:
    'sd15' (860 M + 84 M + 123 M parameters) or 'tiny'."""
    if name not in ARCHITECTURES:
        raise ValueError(f"architecture: unknown {name!r}; choose one of {sorted(ARCHITECTURES)}")
    unet_config, vae_config, text_config = ARCHITECTURES[name]
    unet = UNet2DConditionModel(**unet_config)
    vae = AutoencoderKL(**vae_config)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    return unet, vae, text_encoder, ControlNetModel.from_unet(unet) if controlnet else None


def tiny_parts(seed: int = 0) -> StableDiffusionParts:
    """Random SD-layout models at ~1 % width (images 128² → latents 16²), with the real CLIP tokenizer."""
    torch.manual_seed(seed)
    unet, vae, text_encoder, controlnet = build_architecture("tiny")
    return StableDiffusionParts(vae, text_encoder, unet, controlnet, clip_tokenizer())


def save_parts(parts: StableDiffusionParts, folder: str | Path) -> Path:
    """Write a diffusers folder (vae/, text_encoder/, unet/, controlnet/, tokenizer/) that `load_parts` and
    `StableDiffusionControlNetPipeline` components read."""
    folder = Path(folder)
    for name in ("vae", "text_encoder", "unet", "controlnet", "tokenizer"):
        getattr(parts, name).save_pretrained(folder / name)
    return folder


def _require(folder: Path, name: str) -> Path:
    if not (folder / name).is_dir():
        raise FileNotFoundError(f"{folder} has no {name}/ folder: a Stable Diffusion 1.5 diffusers folder needs "
                                "vae/, text_encoder/ and unet/ (e.g. a local copy of stable-diffusion-v1-5)")
    return folder / name


def _pretrained(cls, path: Path, **read):
    """`cls.from_pretrained(path)`, its failures (a pickled or damaged weight file, a bad config) as one ValueError
    naming the folder."""
    try:
        return cls.from_pretrained(path, **read)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path}: not a loadable {cls.__name__} ({str(error).splitlines()[0][:300]})") from None


def load_diffusers_folder(folder: str | Path, controlnet: str | Path | None = None) -> StableDiffusionParts:
    """SD parts from a local diffusers folder. The ControlNet comes from `controlnet` (a folder written by
    `save_pretrained`), else `<folder>/controlnet`, else it is initialised from the UNet (ControlNet's recipe)."""
    folder = Path(folder)
    read = dict(local_files_only=True)
    unet = _pretrained(UNet2DConditionModel, _require(folder, "unet"), **read)
    vae = _pretrained(AutoencoderKL, _require(folder, "vae"), **read)
    text_encoder = _pretrained(CLIPTextModel, _require(folder, "text_encoder"), **read)
    control_folder = Path(controlnet) if controlnet else folder / "controlnet"
    if controlnet and not control_folder.is_dir():
        raise FileNotFoundError(f"ControlNet folder not found: {control_folder} (write one with save_pretrained)")
    if control_folder.is_dir():
        control = _pretrained(ControlNetModel, control_folder, **read)
    else:
        log.info("no controlnet/ in %s: initialising the ControlNet from the UNet", folder)
        control = ControlNetModel.from_unet(unet)
    return StableDiffusionParts(vae, text_encoder, unet, control, clip_tokenizer(folder))


def load_parts(source: str | Path, controlnet: str | Path | None = None, architecture: str = "sd15") -> StableDiffusionParts:
    """SD parts from a diffusers folder or an ldm-format checkpoint file (.ckpt/.pt/.safetensors, SD1.5 layout by
    default); `controlnet` optionally overrides the ControlNet with a saved diffusers one."""
    source = Path(source)
    if source.is_dir():
        return load_diffusers_folder(source, controlnet)
    if not source.is_file():
        raise FileNotFoundError(f"weights not found: {source}. Put the official sd15_ini.ckpt or attentionhand.ckpt "
                                "there (the release's weights/ folder), or pass a diffusers Stable Diffusion 1.5 folder")
    from hands.attentionhand.ldm_checkpoint import load_ldm_checkpoint

    if controlnet and not Path(controlnet).is_dir():
        raise FileNotFoundError(f"ControlNet folder not found: {controlnet} (write one with save_pretrained)")
    parts = load_ldm_checkpoint(source, architecture)
    if controlnet:
        parts.controlnet = _pretrained(ControlNetModel, Path(controlnet), local_files_only=True)
    return parts


@torch.no_grad()
def encode_prompts(parts: StableDiffusionParts, prompts: list[str]) -> torch.Tensor:
    """CLIP last hidden states of prompts padded to 77 tokens: (B, 77, D)."""
    prompts = [fix_prompt(prompt) for prompt in prompts]
    ids = parts.tokenizer(prompts, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt").input_ids
    return parts.text_encoder(ids.to(parts.text_encoder.device))[0]


@torch.no_grad()
def encode_images(parts: StableDiffusionParts, images: torch.Tensor) -> torch.Tensor:
    """Scaled VAE latents of images (B, 3, H, W) in [-1, 1], sampled from the posterior as the release does:
    (B, 4, H/8, W/8)."""
    dtype = next(parts.vae.parameters()).dtype
    return parts.vae.encode(images.to(dtype)).latent_dist.sample() * parts.latent_scale
