"""Fitted photos as inputs of the other methods: OHTA's one-shot layout and AttentionHand's modalities."""

from __future__ import annotations

import numpy as np
import torch

from hands.attentionhand.prompts import describe_pose, hand_prompt
from hands.data.crops import CropParams, expand_bbox, warp_image
from hands.mano.layer import ManoLayer
from hands.ohta.oneshot import OneShotAnnotation, oneshot_annotation
from hands.prediction.smoothing import project_points
from hands.prediction.types import HandPrediction
from hands.render import Meshes, PerspectiveCamera, Renderer, join_meshes
from hands.render.draw import to_uint8_image


def crop_around(points: np.ndarray, size: int, scale: float = 1.3) -> CropParams:
    """A square crop (size x size output) centred on pixels (N, 2), `scale` times their larger extent."""
    lo, hi = points.min(0), points.max(0)
    x, y, w, h = expand_bbox(np.concatenate([lo, hi - lo]), 1.0, scale)
    return CropParams(centre=np.array([x + w / 2, y + h / 2]), width=float(w), rotation=0.0, out_size=(size, size))


def projected_vertices(fit: HandPrediction) -> np.ndarray:
    return project_points(fit.vertices, fit.K)


def render_fits(fits: list[HandPrediction], faces: dict[str, torch.Tensor], K: np.ndarray, size: int):
    """Mesh image and mask of the fitted hands through intrinsics K at size x size (AttentionHand's mesh style)."""
    meshes = join_meshes([Meshes(torch.as_tensor(f.vertices).float()[None], faces[f.side].cpu()) for f in fits])
    return Renderer(size).render(meshes, PerspectiveCamera(torch.as_tensor(K).float()), ["mesh_image", "mask"])


def oneshot_input(fit: HandPrediction, layer: ManoLayer, image: np.ndarray, size: int = 256,
                  scale: float = 1.3) -> tuple[np.ndarray, np.ndarray, OneShotAnnotation]:
    """OHTA's input from a fitted right hand: the square crop (size, size, 3) around it, the hand's mask rendered
    from the fit, and the annotation (crop camera; the fit stands in for the ground-truth joints)."""
    if fit.side != "right":
        raise ValueError("OHTA avatars are right hands: fit the mirrored image (`hands prepare ohta_input` does)")
    crop = crop_around(projected_vertices(fit), size, scale)
    K = crop.intrinsics(fit.K)
    mask = render_fits([fit], {"right": layer.faces}, K, size).mask[0].cpu().numpy()
    as_t = lambda a: torch.as_tensor(a, dtype=layer.v_template.dtype)[None]  # noqa: E731
    with torch.no_grad():
        rest = layer(betas=as_t(fit.betas)).joints[0].double().numpy()
    x, y = crop.centre - crop.width / 2
    annotation = oneshot_annotation(np.concatenate([fit.global_orient, fit.hand_pose]), fit.betas, fit.joints, rest,
                                    fit.vertices, fit.joints, np.ones(21), K, np.array([x, y, crop.width, crop.width]))
    return warp_image(image, crop), mask, annotation


def modality_sample(fits: list[HandPrediction], faces: dict[str, torch.Tensor], image: np.ndarray, size: int = 512,
                    scale: float = 1.3) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """AttentionHand's modalities from fitted hands: the square crop around all of them (size, size, 3), their
    mesh image and mask in the crop, and the prompt describing each hand's pose."""
    crop = crop_around(np.concatenate([projected_vertices(f) for f in fits]), size, scale)
    rendered = render_fits(fits, faces, crop.intrinsics(fits[0].K), size)
    prompt = hand_prompt({f.side: describe_pose(f.hand_pose, f.side, f.joints) for f in fits})
    return warp_image(image, crop), to_uint8_image(rendered.mesh_image[0]), rendered.mask[0].cpu().numpy(), prompt
