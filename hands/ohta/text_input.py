"""Text-to-avatar inputs, OHTA's side: the mesh image AttentionHand is given for a view of the avatar's hand, and
the silhouette that becomes the input's mask (the CLI chains it with AttentionHand: `hands.cli.text_to_avatar`)."""

from __future__ import annotations

import numpy as np
import torch

from hands.ohta.avatar import HandAvatar
from hands.ohta.creation import ViewGeometry, scaled_view
from hands.ohta.oneshot import DECIMETERS
from hands.render import Meshes, PerspectiveCamera, Renderer
from hands.render.draw import to_uint8_image


def render_condition(avatar: HandAvatar, view: ViewGeometry, size: int) -> tuple[np.ndarray, np.ndarray]:
    """AttentionHand's mesh image (size², uint8 RGB) of the MANO-HD hand in `view` and its silhouette at the view's
    own size (H, W) bool."""
    big = scaled_view(view, size / view.size[0])
    with torch.no_grad():
        out = avatar.mano(view.pose[None, :3], view.pose[None, 3:], view.betas[None])
    vertices = out.vertices / DECIMETERS + view.transl[None, None]  # OHTA frame (dm) -> camera (m)
    meshes = Meshes(vertices.float(), out.faces_sealed)
    mesh_image = Renderer(size).render(meshes, PerspectiveCamera(big.K[None]), ["mesh_image"]).mesh_image[0]
    mask = Renderer(view.size).render(meshes, PerspectiveCamera(view.K[None]), ["mask"]).mask[0]
    return to_uint8_image(mesh_image), mask.cpu().numpy()
