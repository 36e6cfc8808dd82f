"""Text-to-avatar (OHTA's README recipe, with AttentionHand instead of a depth ControlNet): render the hand mesh
in a pose and camera, generate a photo of it from a prompt with AttentionHand, and use the render's silhouette as
the mask and the pose and camera as the annotation. Chains two methods, so it lives in the CLI layer."""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal

import cv2
import numpy as np
import torch

from hands.attentionhand.components import DEFAULT_WEIGHTS, load_parts
from hands.attentionhand.pipeline import SamplingConfig, sample_images
from hands.ohta.avatar import HandAvatar
from hands.ohta.creation import ViewGeometry
from hands.ohta.text_input import render_condition

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TextInputConfig:
    """How the input image of a text-to-avatar run is made."""

    weights: str = DEFAULT_WEIGHTS
    """AttentionHand: the official ldm checkpoint or a diffusers SD1.5 folder."""
    controlnet: str | None = None
    """A ControlNet folder (save_pretrained) replacing the one in `weights`."""
    architecture: Literal["sd15", "tiny"] = "sd15"
    sampling: SamplingConfig = dataclasses.field(default_factory=lambda: SamplingConfig(num_samples=1))
    pose: Literal["rest", "relaxed", "fist", "point", "spread"] = "relaxed"
    """Named finger pose when no --input annotation gives one (rest, relaxed, fist, point, spread)."""


def generate_input(avatar: HandAvatar, view: ViewGeometry, prompt: str, config: TextInputConfig,
                   device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8 at the view's size, mask (H, W) bool, the mesh image AttentionHand was given)."""
    parts = load_parts(config.weights, config.controlnet, config.architecture).to(device)
    mesh_image, mask = render_condition(avatar, view, config.sampling.image_size)
    log.info("generating the input image with AttentionHand: %r", prompt)
    images, _ = sample_images(parts, mesh_image, prompt, dataclasses.replace(config.sampling, num_samples=1))
    image = cv2.resize(images[0], view.size[::-1], interpolation=cv2.INTER_AREA)
    return image, mask, mesh_image
