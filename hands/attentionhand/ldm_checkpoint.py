"""Official ldm-format checkpoints (ControlNet/AttentionHand `.ckpt`) to and from the diffusers modules.

The release stores one flat state dict: `model.diffusion_model.*` (UNet, openaimodel layout), the ControlNet under
`control_model.*` (ControlNet's name) or `VAS.*` (AttentionHand's module name), `first_stage_model.*` (VAE) and
`cond_stage_model.transformer.*` (CLIP text model). The name map is derived from the diffusers modules' own
layout, so it holds for any SD1.x-shaped configuration; loading checks that every module key is filled and every
checkpoint key is used (schedule buffers and EMA copies aside).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel

from hands.attentionhand.components import StableDiffusionParts, build_architecture
from hands.attentionhand.tokenizer import clip_tokenizer

log = logging.getLogger(__name__)

UNET_PREFIX = "model.diffusion_model."
CONTROL_PREFIXES = ("control_model.", "VAS.")
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."
# DDPM schedule buffers and bookkeeping the diffusers modules recompute or do not need.
IGNORED = re.compile(r"^(betas|alphas_cumprod(_prev)?|sqrt_.*|log_one_minus_alphas_cumprod|posterior_.*|lvlb_weights|"
                     r"logvar|scale_factor|model_ema\..*|cond_stage_model\.transformer\.text_model\.embeddings\.position_ids)$")


class CheckpointError(ValueError):
    """A checkpoint that does not match the model; the message names the file and the keys."""


_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
           "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str) -> str:
    name, _, tail = rest.partition(".")
    return f"{_RESNET[name]}.{tail}"


def _unet_name(key: str, layers: int, up_attention: list[bool]) -> str:
    """ldm (openaimodel / cldm ControlNet) name of a diffusers UNet or ControlNet parameter."""
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2", "conv_in": "input_blocks.0.0",
             "conv_norm_out": "out.0", "conv_out": "out.2", "controlnet_mid_block": "middle_block_out.0",
             "controlnet_cond_embedding.conv_in": "input_hint_block.0"}
    for name, ldm in fixed.items():
        if key.startswith(name + "."):
            return ldm + key[len(name):]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * (layers + 1) + j
        return f"input_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{index}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * (layers + 1)}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[2])}.{_resnet(m[3])}" if m[1] == "resnets" else f"middle_block.1.{m[3]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        index = int(m[1]) * (layers + 1) + int(m[3])
        return f"output_blocks.{index}.0.{_resnet(m[4])}" if m[2] == "resnets" else f"output_blocks.{index}.1.{m[4]}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        block = int(m[1])
        return f"output_blocks.{block * (layers + 1) + layers}.{2 if up_attention[block] else 1}.conv.{m[2]}"
    if m := re.match(r"controlnet_down_blocks\.(\d+)\.(.*)", key):
        return f"zero_convs.{m[1]}.0.{m[2]}"
    if m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.*)", key):
        return f"input_hint_block.{2 * int(m[1]) + 2}.{m[2]}"
    raise KeyError(key)


def unet_name_map(model: UNet2DConditionModel | ControlNetModel) -> dict[str, str]:
    """diffusers key -> ldm key (without prefix) for a UNet or a ControlNet of SD1.x layout."""
    config = model.config
    layers = config.layers_per_block
    if not isinstance(layers, int):
        raise CheckpointError("ldm conversion needs the same number of layers in every UNet block")
    up_attention = ["CrossAttn" in name for name in getattr(config, "up_block_types", ())]
    keys = list(model.state_dict())
    names = {}
    hint_out = None
    if isinstance(model, ControlNetModel):
        hint_out = 2 * len(model.controlnet_cond_embedding.blocks) + 2
    for key in keys:
        if key.startswith("controlnet_cond_embedding.conv_out."):
            names[key] = f"input_hint_block.{hint_out}." + key.rsplit(".", 1)[1]
        else:
            names[key] = _unet_name(key, layers, up_attention)
    return names


def vae_name_map(vae: AutoencoderKL) -> dict[str, str]:
    """diffusers key -> ldm key (without prefix) for the KL autoencoder (decoder blocks run in reverse order)."""
    levels = len(vae.config.block_out_channels)
    names = {}
    for key in vae.state_dict():
        name = key.replace(".conv_norm_out.", ".norm_out.")
        if m := re.match(r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets\.(\d+)|downsamplers\.0|upsamplers\.0)\.(.*)", name):
            part, direction, block, inner, layer, rest = m.groups()
            level = int(block) if direction == "down" else levels - 1 - int(block)
            if layer is not None:
                rest = rest.replace("conv_shortcut", "nin_shortcut")
                name = f"{part}.{direction}.{level}.block.{layer}.{rest}"
            else:
                name = f"{part}.{direction}.{level}.{'downsample' if direction == 'down' else 'upsample'}.{rest}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", name):
            name = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.*)", name):
            name = f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
        names[key] = name
    return names


def _component_maps(parts: StableDiffusionParts, control_prefix: str) -> list[tuple[str, torch.nn.Module, dict[str, str]]]:
    text_keys = {key: key for key in parts.text_encoder.state_dict() if not key.endswith("position_ids")}
    return [("unet", parts.unet, {k: UNET_PREFIX + v for k, v in unet_name_map(parts.unet).items()}),
            ("controlnet", parts.controlnet, {k: control_prefix + v for k, v in unet_name_map(parts.controlnet).items()}),
            ("vae", parts.vae, {k: VAE_PREFIX + v for k, v in vae_name_map(parts.vae).items()}),
            ("text_encoder", parts.text_encoder, {k: TEXT_PREFIX + v for k, v in text_keys.items()})]


def to_ldm_state_dict(parts: StableDiffusionParts, control_prefix: str = "control_model.") -> dict[str, torch.Tensor]:
    """One ldm-format state dict of all four modules (VAE attention projections as 1x1 convolutions)."""
    state = {}
    for _, module, names in _component_maps(parts, control_prefix):
        own = module.state_dict()
        for key, ldm_key in names.items():
            value = own[key].detach().clone()
            if ldm_key.startswith(VAE_PREFIX) and ".attn_1." in ldm_key and value.ndim == 2:
                value = value[:, :, None, None]
            state[ldm_key] = value
    return state


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat tensor state dict of a .ckpt/.pt (under 'state_dict' when present) or .safetensors file; pickles
    are read with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError/RuntimeError for refused or damaged files
        raise CheckpointError(f"{path}: cannot be read as a tensor checkpoint with weights_only=True ({error}). "
                              "Re-save its state_dict with torch.save or as .safetensors") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (optionally under 'state_dict')")
    return data


def load_ldm_state_dict(parts: StableDiffusionParts, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Fill `parts` from an ldm-format state dict. Every module key must be present (a checkpoint without any
    ControlNet keys initialises the ControlNet from its UNet, ControlNet's recipe); a key that belongs to no module
    is an error."""
    present = [p for p in CONTROL_PREFIXES if any(k.startswith(p) for k in state)]
    if len(present) > 1:
        raise CheckpointError(f"{source}: holds both {present[0]}* and {present[1]}* ControlNet weights")
    control_prefix = present[0] if present else CONTROL_PREFIXES[0]
    used = set()
    for name, module, names in _component_maps(parts, control_prefix):
        if name == "controlnet" and not present:
            continue
        own = module.state_dict()
        missing = [ldm for ldm in names.values() if ldm not in state]
        if missing:
            raise CheckpointError(f"{source}: {len(missing)} {name} weight(s) missing, e.g. {missing[:3]}")
        loaded = {}
        for key, ldm_key in names.items():
            value = state[ldm_key]
            if value.shape != own[key].shape:
                if value.squeeze().shape != own[key].squeeze().shape:
                    raise CheckpointError(f"{source}: {ldm_key} has shape {tuple(value.shape)}, the {name} expects "
                                          f"{tuple(own[key].shape)}")
                value = value.reshape(own[key].shape)
            loaded[key] = value
            used.add(ldm_key)
        module.load_state_dict(loaded, strict=False)
    if not present:
        log.info("%s has no ControlNet weights: initialising the ControlNet from the UNet", source)
        parts.controlnet = ControlNetModel.from_unet(parts.unet)
    unexpected = [k for k in state if k not in used and not IGNORED.match(k)]
    if unexpected:
        raise CheckpointError(f"{source}: {len(unexpected)} key(s) belong to no module, e.g. {unexpected[:3]}")


def load_ldm_checkpoint(path: str | Path, architecture: str = "sd15") -> StableDiffusionParts:
    """SD parts (VAE, CLIP, UNet, ControlNet) from an official ldm-format checkpoint such as `sd15_ini.ckpt` or
    `attentionhand.ckpt`; `architecture` names the layout ('sd15', or 'tiny' for the test models)."""
    state = read_checkpoint(path)
    unet, vae, text_encoder, _ = build_architecture(architecture, controlnet=False)
    parts = StableDiffusionParts(vae, text_encoder, unet, ControlNetModel.from_unet(unet), clip_tokenizer())
    load_ldm_state_dict(parts, state, str(path))
    log.info("loaded %s (%d tensors)", path, len(state))
    return parts
