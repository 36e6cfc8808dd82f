"""MANO fitting to 2D hand keypoints (and MediaPipe's metric 3D landmarks) with priors, batched over hands.

Per hand: the global orientation starts from the rotation that best aligns the model's mean-pose joints with the
detector's metric landmarks (Umeyama), the translation from the linear least-squares solution of the projection
equations; then Adam minimises

    keypoint term    Huber distance between projected and detected keypoints, in units of the hand's pixel size
    landmark term    distance between the root-centred joints and the detector's metric landmarks (units of 10 cm)
    pose prior       sum_i (c_i / sigma_i)^2 over the articulation's PCA coefficients (sigma_i = scale * decay^i)
    joint limits     squared excess beyond `hands.mano.limits` (radians)
    shape prior      |betas|^2
    temporal term    (sequences) squared change of orientation, articulation and translation between frames
    silhouette       (when masks are given) 1 - soft IoU of the mesh's soft silhouette and the hand mask

A sequence (one hand side over video frames) shares one shape. Everything is in the OpenCV camera frame, meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import Tensor
from torchvision.ops import roi_align

from hands.eval.alignment import similarity_transform
from hands.geometry.cameras import PerspectiveCamera
from hands.geometry.pnp import solve_translation
from hands.geometry.rotations import matrix_to_axis_angle
from hands.mano.layer import ManoLayer
from hands.mano.limits import limit_excess
from hands.render.soft import soft_iou, soft_silhouette


@dataclass
class FitConfig:
    """MANO-to-keypoints fitting: optimisation schedule and loss weights."""

    solver: Literal["fast", "full"] = "full"
    """"full": start from the mean pose and run `rigid_steps` + `steps` Adam steps; "fast": start from the learned
    lifting (`hands.fit.lifting`) or, in videos, the previous frame's hand, and refine with Levenberg-Marquardt
    (`hands.fit.solver`). Sequences fitted together and silhouettes always use Adam."""
    refine_iterations: int = 12
    """Most Levenberg-Marquardt steps of the fast solver; it stops earlier once the cost falls by less than
    `refine_tolerance` in a step (tracked hands in a video: typically 2-4 steps; a lifted start on a photo: 6-10)."""
    refine_tolerance: float = 1e-3
    """Relative cost decrease below which the fast solver stops."""
    track_tolerance: float = 0.05
    """The fast solver starts a tracked hand from the previous frame's without lifting while that (moved to the
    new keypoints) reprojects within this mean distance, as a fraction of the hand's size."""
    refine_shape_weight: float = 1e-3
    """Shape prior of the fast solver. It converges to the objective's minimum, where Adam stops early near the
    mean shape; with `shape_weight` (1e-4) its root-relative error on synthetic sequences was 1 mm above Adam's
    (PA 0.3 mm below), with 1e-3 both are within 0.02 mm of Adam's or better (bench/realtime.py)."""
    rigid_steps: int = 15
    """Adam steps placing the mean-pose hand (orientation and translation) before everything is freed."""
    steps: int = 100
    """Adam steps over all parameters (all hands of a batch at once; cosine decay to 5% of `lr`). On the labelled
    photo 150 steps move the fit by 0.1 px; on exact synthetic keypoints they take 0.8 px to 0.6 px."""
    lr: float = 0.04
    focal_ratio: float = 2.0
    """Without intrinsics, focal length = focal_ratio * max(H, W) pixels, principal point at the image centre. A
    long lens (28° across) suits crops and hands small in the frame: on the labelled in-the-wild photo (true
    ratio 2.2), 1.0 bends the fingers to make up for the wrong perspective (PA-MPJPE 7.0 mm vs 5.9 at 2.0)."""
    keypoint_weight: float = 1.0
    huber: float = 0.02
    """Huber threshold of the keypoint term (fraction of the hand's pixel size)."""
    landmark_weight: float = 2.0
    """Weight of MediaPipe's metric 3D landmarks (rough depth cues; 0 ignores them)."""
    pose_prior_weight: float = 2e-4
    pca_scale: float = 0.9
    pca_decay: float = 0.8
    pca_floor: float = 0.08
    """Smallest prior standard deviation (radians) of a PCA coefficient."""
    limit_weight: float = 1.0
    shape_weight: float = 1e-4
    temporal_weight: float = 0.5
    """Sequences: weight of the frame-to-frame change (rad and 10 cm units)."""
    silhouette_weight: float = 1.0
    """Weight of the silhouette term (only when masks are given)."""
    silhouette_steps: int = 60
    """Adam steps refining the fit against the masks after the keypoint fit."""
    silhouette_size: int = 160
    """The silhouette is compared in a square window around each hand of this many pixels."""
    silhouette_sigma: float = 0.3
    """Blur of the soft silhouette (square pixels at `silhouette_size`). Its halo grows the soft silhouette by
    ~1.2 sqrt(sigma) px, which the fit pays for by shrinking the hand: keep it sharp and the window fine."""
    joints_only: bool = True
    """Skin only the five fingertip vertices at each step (the joints are all the loss needs); False poses the
    whole mesh every step (the same result). Pays off in batches: 2.8x cheaper MANO steps at 64 hands, none at 1."""
    device: str = "cpu"


def default_intrinsics(image_size: tuple[int, int], focal_ratio: float = 2.0) -> np.ndarray:
    """(3,3) pinhole intrinsics for an image (H, W) of unknown camera: f = focal_ratio * max(H, W)."""
    H, W = image_size
    f = focal_ratio * max(H, W)
    return np.array([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])


def project(points: Tensor, K: Tensor) -> Tensor:
    """Camera-frame points (B,N,3) -> pixels (B,N,2) with intrinsics (B,3,3)."""
    uv = points[..., :2] / points[..., 2:].clamp_min(1e-4)
    return uv * torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None] + K[:, None, :2, 2]


class PosePrior:
    """The articulation as PCA coefficients about the model's mean pose, with a Gaussian prior on them."""

    def __init__(self, layer: ManoLayer, config: FitConfig) -> None:
        components = layer.hand_components.double()
        # Full 45-d basis: the model's PCA rows (normalised), completed to an orthonormal basis if it has fewer.
        q, _ = torch.linalg.qr(components.T)
        self.directions = q.T.to(layer.v_template)  # (45, 45) rows
        self.mean = layer.hands_mean.to(layer.v_template)
        sigma = config.pca_scale * config.pca_decay ** torch.arange(45, dtype=torch.float64)
        self.sigma = sigma.clamp_min(config.pca_floor).to(layer.v_template)

    def pose(self, coefficients: Tensor) -> Tensor:
        return self.mean + coefficients @ self.directions

    def penalty(self, coefficients: Tensor) -> Tensor:
        return ((coefficients / self.sigma) ** 2).sum(-1)


def fit_mano(layer: ManoLayer, keypoints: Tensor, K: Tensor, landmarks: Tensor | None = None,
             config: FitConfig | None = None, sequence: bool = False, masks: Tensor | None = None) -> list[dict[str, Tensor]]:
    """Fit `layer`'s hand to B sets of keypoints (B,21,2) pixels (canonical order) seen by cameras K (B,3,3);
    `landmarks` (B,21,3) metric 3D joints about any centre (MediaPipe's world landmarks) guide orientation and
    depth; `masks` (B,H,W) of the hand in the image add the silhouette term. `sequence=True`: the B hands are
    consecutive frames of one hand (shared shape, temporal term). Returns per hand MANO parameters (flat-hand
    convention) and the posed outputs, all detached."""
    config = config or FitConfig()
    dtype, device = layer.v_template.dtype, layer.v_template.device
    keypoints, K = keypoints.to(device, dtype), K.to(device, dtype)
    B = keypoints.shape[0]
    if keypoints.shape[1:] != (21, 2) or K.shape != (B, 3, 3):
        raise ValueError(f"fit_mano: keypoints should be (B, 21, 2) and K (B, 3, 3), got {tuple(keypoints.shape)}, {tuple(K.shape)}")
    prior = PosePrior(layer, config)
    silhouette = masks is not None and config.silhouette_weight > 0
    if silhouette:
        if masks.dim() != 3 or masks.shape[0] != B:
            raise ValueError(f"fit_mano: masks should be (B, H, W) with B = {B}, got {tuple(masks.shape)}")
        goal, small_K = hand_windows(masks.to(device, dtype), keypoints, K, config.silhouette_size)
    size = (keypoints.max(1).values - keypoints.min(1).values).max(-1).values.clamp_min(1.0)  # (B,) pixels
    with torch.no_grad():
        mean_hand = layer(hand_pose=prior.mean.expand(B, 45)).joints  # wrist at the model's rest root
        if landmarks is not None:
            landmarks = landmarks.to(device, dtype)
            _, rotation, _ = similarity_transform(mean_hand - mean_hand.mean(1, keepdim=True),
                                                  landmarks - landmarks.mean(1, keepdim=True))
            orient0 = matrix_to_axis_angle(rotation)
        else:
            orient0 = keypoints.new_zeros(B, 3)
            orient0[:, 0] = torch.pi  # palm towards the camera, fingers up
        posed = layer(global_orient=orient0, hand_pose=prior.mean.expand(B, 45)).joints
        transl0 = solve_translation(posed, keypoints, K)
        transl0[:, 2] = transl0[:, 2].clamp_min(0.05 - posed[..., 2].min(1).values)
    depth0 = (transl0[:, 2:] + posed[:, 9, 2:]).clamp_min(0.05)
    orient = orient0.clone().requires_grad_(True)
    coefficients = keypoints.new_zeros(B, 45, requires_grad=True)
    betas = keypoints.new_zeros(1 if sequence else B, layer.num_betas, requires_grad=True)
    shift = keypoints.new_zeros(B, 3, requires_grad=True)  # translation change in units of the initial depth

    def objective(with_silhouette: bool = False) -> Tensor:
        hand_pose, transl = prior.pose(coefficients), transl0 + shift * depth0
        output = layer(global_orient=orient, hand_pose=hand_pose, betas=betas.expand(B, -1), transl=transl,
                       joints_only=config.joints_only and not with_silhouette)
        loss = fitting_loss(output.joints, output.full_pose[:, 3:], keypoints, K, size, landmarks, coefficients,
                            betas, prior, layer.side, config)
        if with_silhouette:
            screen = PerspectiveCamera(small_K).project(output.vertices)
            drawn = soft_silhouette(screen, layer.faces, goal.shape[1:], sigma=config.silhouette_sigma)
            loss = loss + config.silhouette_weight * (1 - soft_iou(drawn, goal)).sum()
        if sequence and B > 1:
            change = lambda x: ((x[1:] - x[:-1]) ** 2).sum(-1).sum()  # noqa: E731
            loss = loss + config.temporal_weight * (change(orient) + change(hand_pose) + change(transl * 10))
        return loss

    minimise(objective, [orient, shift], config.rigid_steps, config)  # place the mean hand first
    minimise(objective, [orient, coefficients, betas, shift], config.steps, config)
    if silhouette:  # refine against the mask once the keypoints are matched: the silhouette alone is ambiguous
        minimise(lambda: objective(True), [orient, coefficients, betas, shift], config.silhouette_steps, config,
                 config.lr * 0.5)
    with torch.no_grad():
        return posed_hands(layer, orient, prior.pose(coefficients), betas.expand(B, -1), transl0 + shift * depth0, K)


def posed_hands(layer: ManoLayer, global_orient: Tensor, hand_pose: Tensor, betas: Tensor, transl: Tensor,
                K: Tensor) -> list[dict[str, Tensor]]:
    """Per hand of a batch: its MANO parameters (detached), vertices (778,3), joints (21,3) and the joints
    projected by K (21,2) pixels."""
    output = layer(global_orient=global_orient, hand_pose=hand_pose, betas=betas, transl=transl)
    projected = project(output.joints, K)
    return [{"global_orient": global_orient[i].detach(), "hand_pose": hand_pose[i].detach(), "betas": betas[i].detach(),
             "transl": transl[i].detach(), "vertices": output.vertices[i], "joints": output.joints[i],
             "projected": projected[i]} for i in range(len(global_orient))]


def hand_windows(masks: Tensor, keypoints: Tensor, K: Tensor, size: int, margin: float = 1.8) -> tuple[Tensor, Tensor]:
    """Each hand's mask (B,H,W) resampled into a square window (B,size,size) around its keypoints (B,21,2) (side
    `margin` times their extent), and the intrinsics (B,3,3) of those windows (pixel centres at integers)."""
    centre = (keypoints.max(1).values + keypoints.min(1).values) / 2
    side = margin * (keypoints.max(1).values - keypoints.min(1).values).max(-1).values.clamp_min(8.0)
    corner = centre - side[:, None] / 2  # continuous pixel coordinates, pixel centres at integers
    boxes = torch.cat([torch.arange(len(masks), dtype=masks.dtype, device=masks.device)[:, None],
                       corner + 0.5, corner + side[:, None] + 0.5], 1)  # roi_align(aligned=True) puts centres at +0.5
    windows = roi_align(masks[:, None], boxes, (size, size), sampling_ratio=2, aligned=True)[:, 0]
    scale = size / side
    window_K = K.clone()
    window_K[:, :2] *= scale[:, None, None]
    window_K[:, :2, 2] -= corner * scale[:, None] + 0.5
    return windows, window_K


def minimise(objective, parameters: list[Tensor], steps: int, config: FitConfig, lr: float | None = None) -> None:
    """Minimise `objective()` over `parameters` in place with Adam and a cosine learning-rate decay."""
    if steps <= 0:
        return
    lr = lr or config.lr
    optimizer = torch.optim.Adam(parameters, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        objective().backward()
        optimizer.step()
        schedule.step()


def fitting_loss(joints: Tensor, hand_pose: Tensor, keypoints: Tensor, K: Tensor, size: Tensor, landmarks: Tensor | None,
                 coefficients: Tensor, betas: Tensor, prior: PosePrior, side: str, config: FitConfig) -> Tensor:
    """The summed fitting objective of a batch (see the module docstring)."""
    residual = (project(joints, K) - keypoints) / size[:, None, None]
    loss = config.keypoint_weight * nnf.huber_loss(residual, torch.zeros_like(residual), delta=config.huber,
                                                   reduction="none").sum(-1).mean(-1) / config.huber
    if landmarks is not None and config.landmark_weight > 0:
        centred = lambda x: x - x.mean(1, keepdim=True)  # noqa: E731
        loss = loss + config.landmark_weight * ((centred(joints) - centred(landmarks)) * 10).pow(2).sum(-1).mean(-1)
    loss = loss + config.pose_prior_weight * prior.penalty(coefficients)
    loss = loss + config.limit_weight * limit_excess(hand_pose, side).pow(2).sum((-1, -2))
    loss = loss.sum() + config.shape_weight * betas.pow(2).sum()
    return loss
