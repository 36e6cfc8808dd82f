"""AttentionHand's text attention stage (TAS): cross-attention capture and the Attend-and-Excite latent update.

The UNet's cross-attention layers at a quarter of the latent resolution (16x16 for 512² images:
`down_blocks.2` and `up_blocks.1` of SD1.x) get a processor that computes the attention probabilities explicitly
and keeps them. Averaged over those layers and heads they give one (h, w, 77) map per prompt. The loss is
Attend-and-Excite's: softmax(100 · attention) over the text tokens (start and last position left out), a 3x3
Gaussian, the spatial maximum per hand token, and max over tokens of (1 - maximum)⁺. The noisy latent moves down
its gradient.

Two schedules: `paper` runs the release's loop (50 updates at the training timestep, step 20·√linspace(1, 0.5)),
`fast` one update, both branches in one pass. The UNet is the frozen SD UNet without control (the release used a
second, separate SD-1.4 UNet). Forward passes stop after the last captured layer: the rest of the UNet cannot
change the loss.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention


@dataclass
class TextAttentionConfig:
    """The text attention stage of training (and optional guidance at sampling time)."""

    mode: Literal["paper", "fast", "off"] = "fast"
    """paper (the release's 50 latent updates per branch), fast (one update, both branches at once) or off."""
    iterations: int = 50
    """Latent updates per branch in paper mode."""
    step_size: float = 20.0
    """Base gradient step on the latent (Attend-and-Excite's scale factor)."""
    step_range: tuple[float, float] = (1.0, 0.5)
    """The step is step_size·√s with s going linearly from the first to the second value over the iterations."""
    softmax_scale: float = 100.0
    smoothing_sigma: float = 0.5
    """σ of the 3x3 Gaussian applied to each token's map (0 turns smoothing off)."""
    level: int = 2
    """UNet level whose cross-attention is read: 2 = a quarter of the latent size (16x16 at 512²)."""
    hand_words: Literal["project", "release"] = "project"
    """Which tokens are excited: project (a hand vocabulary; no update without a hand word) or release (hand,
    hands, gesture, finger, fingers and -ing verbs in the first 75 characters, else the first word)."""


class StopForward(Exception):
    """Raised after the last captured layer to skip the rest of a UNet pass."""


class AttentionStore:
    """Cross-attention probabilities of the capturing layers of one forward pass: list of (B, heads, Q, tokens)."""

    def __init__(self) -> None:
        self.maps: list[torch.Tensor] = []

    def reset(self) -> None:
        self.maps = []

    def aggregate(self, height: int, width: int) -> torch.Tensor:
        """Mean over layers and heads, as images: (B, height, width, tokens)."""
        if not self.maps:
            raise RuntimeError("no cross-attention was captured: run the UNet inside `capture_cross_attention`")
        stacked = torch.cat(self.maps, dim=1)
        return stacked.mean(dim=1).reshape(stacked.shape[0], height, width, stacked.shape[-1])


class CapturingCrossAttention:
    """Attention processor that computes softmax(QKᵀ/√d) explicitly and hands cross-attention maps to a store."""

    def __init__(self, store: AttentionStore) -> None:
        self.store = store

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError("CapturingCrossAttention handles transformer-block attention on (B, N, C) tokens only")
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        batch = hidden_states.shape[0]
        mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key, value = attn.head_to_batch_dim(attn.to_k(context)), attn.head_to_batch_dim(attn.to_v(context))
        probabilities = attn.get_attention_scores(query, key, mask)
        if encoder_hidden_states is not None:
            self.store.maps.append(probabilities.reshape(batch, attn.heads, *probabilities.shape[1:]))
        out = attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(torch.bmm(probabilities, value))))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def capture_layer_names(unet: UNet2DConditionModel, level: int = 2) -> list[str]:
    """Names of the cross-attention processors at latent size / 2**level (down block `level`, and the up block that
    runs at the same size)."""
    up_level = len(unet.up_blocks) - 1 - level
    prefixes = (f"down_blocks.{level}.", f"up_blocks.{up_level}.")
    names = [n for n in unet.attn_processors if n.startswith(prefixes) and n.endswith("attn2.processor")]
    if not names:
        raise ValueError(f"the UNet has no cross-attention at level {level} (blocks {prefixes})")
    return names


@contextlib.contextmanager
def capture_cross_attention(unet: UNet2DConditionModel, level: int = 2, stop_after: bool = False) -> Iterator[AttentionStore]:
    """Install capturing processors on the level's cross-attention layers for the duration of the block. With
    `stop_after`, a forward pass raises `StopForward` once the last of those layers has run."""
    store = AttentionStore()
    names = capture_layer_names(unet, level)
    original = unet.attn_processors
    unet.set_attn_processor({name: CapturingCrossAttention(store) if name in names else processor
                             for name, processor in original.items()})
    hook = None
    if stop_after:
        last = unet.get_submodule(names[-1].removesuffix(".processor"))

        def stop(*_):
            raise StopForward

        hook = last.register_forward_hook(stop)
    try:
        yield store
    finally:
        if hook is not None:
            hook.remove()
        unet.set_attn_processor(original)


def gaussian_kernel(sigma: float, size: int = 3) -> torch.Tensor:
    """The (size, size) kernel Attend-and-Excite smooths with: exp(-((x - μ) / (2σ))²) per axis, normalised."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-((x / (2 * sigma)) ** 2))
    kernel = line[:, None] * line[None, :]
    return (kernel / kernel.sum()).float()


def token_attention_peaks(attention: torch.Tensor, positions: list[int], softmax_scale: float = 100.0,
                          sigma: float = 0.5) -> torch.Tensor:
    """Peak attention of the given CLIP token positions (1 = first word) for one prompt's (h, w, 77) map: the map
    over tokens 1..75 is re-normalised with softmax(scale · a), each token's image smoothed and its max taken: (T,)."""
    text = torch.softmax(attention[..., 1:-1] * softmax_scale, dim=-1)
    images = text[..., [p - 1 for p in positions]].permute(2, 0, 1)[:, None]
    if sigma > 0:
        kernel = gaussian_kernel(sigma).to(images)
        images = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="reflect"), kernel[None, None])
    return images.flatten(1).max(dim=1).values


def attend_and_excite_loss(attention: torch.Tensor, positions: list[list[int]], config: TextAttentionConfig) -> torch.Tensor:
    """Sum over prompts of max over hand tokens of (1 - peak attention)⁺; prompts without tokens add 0.
    attention: (B, h, w, 77)."""
    total = attention.new_zeros(())
    for sample, tokens in zip(attention, positions):
        if tokens:
            peaks = token_attention_peaks(sample, tokens, config.softmax_scale, config.smoothing_sigma)
            total = total + (1.0 - peaks).clamp_min(0).max()
    return total


def attention_loss_and_gradient(unet: UNet2DConditionModel, latents: torch.Tensor, timesteps: torch.Tensor,
                                text: torch.Tensor, positions: list[list[int]],
                                config: TextAttentionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss at `latents` (B, 4, h, w) and its gradient, from a UNet pass that stops after the captured layers."""
    latents = latents.detach().requires_grad_(True)
    size = (latents.shape[-2] >> config.level, latents.shape[-1] >> config.level)
    with torch.enable_grad(), capture_cross_attention(unet, config.level, stop_after=True) as store:
        try:
            unet(latents, timesteps, encoder_hidden_states=text)
        except StopForward:
            pass
        loss = attend_and_excite_loss(store.aggregate(*size), positions, config)
        if not loss.requires_grad:
            return loss.detach(), torch.zeros_like(latents)
        (gradient,) = torch.autograd.grad(loss, latents)
    return loss.detach(), gradient


def step_sizes(config: TextAttentionConfig, iterations: int) -> list[float]:
    """step_size·√s for s linear from step_range[0] to step_range[1] over the iterations."""
    start, end = config.step_range
    if iterations == 1:
        return [config.step_size * math.sqrt(start)]
    return [config.step_size * math.sqrt(start + (end - start) * k / (iterations - 1)) for k in range(iterations)]


def text_attention_update(unet: UNet2DConditionModel, latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
                          positions: list[list[int]], config: TextAttentionConfig,
                          iterations: int | None = None) -> tuple[torch.Tensor, list[float]]:
    """Move noisy latents (B, 4, h, w) along the negative gradient of the attention loss, `iterations` times (paper
    mode: config.iterations, fast: 1); the release skips an update whose loss is exactly 0. Returns the updated
    latents (detached) and the loss before each update."""
    iterations = iterations or (config.iterations if config.mode == "paper" else 1)
    losses = []
    for step in step_sizes(config, iterations):
        loss, gradient = attention_loss_and_gradient(unet, latents, timesteps, text, positions, config)
        losses.append(float(loss))
        if float(loss) == 0.0:
            continue
        latents = latents.detach() - step * gradient
    return latents.detach(), losses
