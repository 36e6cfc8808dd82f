"""Text-to-avatar inputs (OHTA's README recipe, with AttentionHand instead of a depth ControlNet): render the hand
mesh in a pose and camera, generate a photo of it from a prompt with AttentionHand, and use the render's silhouette
as the mask and the pose and camera as the annotation."""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import torch

from hands.attentionhand.components import load_parts
from hands.attentionhand.pipeline import SamplingConfig, sample_images
from hands.ohta.avatar import HandAvatar
from hands.ohta.creation import ViewGeometry, scaled_view
from hands.render import Meshes, PerspectiveCamera, Renderer
from hands.render.draw import to_uint8_image

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TextInputConfig:
    """How the input image of a text-to-avatar run is made."""

    weights: str = "checkpoints/attentionhand/attentionhand.ckpt"
    """AttentionHand: the official ldm checkpoint or a diffusers SD1.5 folder."""
    controlnet: str | None = None
    """A ControlNet folder (save_pretrained) replacing the one in `weights`."""
    architecture: str = "sd15"
    sampling: SamplingConfig = dataclasses.field(default_factory=lambda: SamplingConfig(num_samples=1))
    pose: str = "relaxed"
    """Named finger pose when no --input annotation gives one (rest, relaxed, fist, point, spread)."""


def render_condition(avatar: HandAvatar, view: ViewGeometry, size: int) -> tuple[np.ndarray, np.ndarray]:
    """AttentionHand's mesh image (size², uint8 RGB) of the MANO-HD hand in `view` and its silhouette at the view's
    own size (H, W) bool."""
    big = scaled_view(view, size / view.size[0])
    with torch.no_grad():
        out = avatar.mano(view.pose[None, :3], view.pose[None, 3:], view.betas[None])
    vertices = (out.vertices + view.Th[None, None]) / 10.0  # OHTA frame (dm) -> camera (m)
    meshes = Meshes(vertices.float(), out.faces_sealed)
    mesh_image = Renderer(size).render(meshes, PerspectiveCamera(big.K[None]), ["mesh_image"]).mesh_image[0]
    mask = Renderer(view.size).render(meshes, PerspectiveCamera(view.K[None]), ["mask"]).mask[0]
    return to_uint8_image(mesh_image), mask.cpu().numpy()


def generate_input(avatar: HandAvatar, view: ViewGeometry, prompt: str, config: TextInputConfig,
                   device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8 at the view's size, mask (H, W) bool, the mesh image AttentionHand was given)."""
    parts = load_parts(config.weights, config.controlnet, config.architecture).to(device)
    mesh_image, mask = render_condition(avatar, view, config.sampling.image_size)
    log.info("generating the input image with AttentionHand: %r", prompt)
    images, _ = sample_images(parts, mesh_image, prompt, dataclasses.replace(config.sampling, num_samples=1))
    image = cv2.resize(images[0], view.size[::-1], interpolation=cv2.INTER_AREA)
    return image, mask, mesh_image
