"""One-shot avatar creation (OHTA): texture inversion on the input view, reference views, texture fitting.

As released: (1) invert the identity code and the colour calibration on the input image at 0.8 scale with a
robust power-0.3 penalty that leaves the fingertips out; (2) render the avatar in 7 more views (the flat hand
turned about the wrist→middle-MCP axis by k·45°) as pseudo ground truth; (3) fine-tune the albedo networks,
identity and calibration on 2 patches per view and step (10·L1 + LPIPS when its weights are present, input view
×4, fingertip term ×30), one Adam step per view. `--edit` skips (1) and fits the painted region of the input (×15)
against the unedited avatar's views (the opposite view ×4).

Geometry (MANO-HD, PairOF) is frozen during creation and each view's pose is fixed, so `CachedView` bakes a view's
samples and compositing weights once (occupancy evaluated front to back, stopping once a ray is opaque), keeping per
ray only the heaviest samples that carry all but `weight_tolerance`
of its weight (so a pixel's colour moves by at most that much), their anchor features and their shadow (anchor
features, shadow networks and pose are all frozen during creation); every step then only runs the albedo networks.
This replaces the release's stochastic re-sampling of every ray at every step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hands.geometry.cameras import scale_intrinsics
from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hands.ohta.avatar import HandAvatar
from hands.ohta.volume import VolumeConfig, compositing_weights, front_depth, pixel_rays, sample_depths

log = logging.getLogger(__name__)


@dataclass
class CreationConfig:
    """One-shot creation schedule (release values) and the CPU-side sampling."""

    inversion_scale: float = 0.8
    views: int = 8
    """The input view plus views-1 reference views."""
    inversion_steps: int = 50
    finetune_steps: int = 100
    inversion_lr: float = 0.01
    finetune_lr: float = 1e-3
    patch_fraction: float = 110 / 256
    """Patch side as a fraction of the image side (110 px at 256²)."""
    patches: int = 2
    input_weight: float = 4.0
    reference_weight: float = 1.0
    l1_weight: float = 10.0
    tip_weight: float = 30.0
    edit_steps: int = 200
    edit_input_weight: float = 15.0
    edit_opposite_weight: float = 4.0
    weight_tolerance: float = 0.01
    """Per ray, the samples dropped from the baked views carry at most this fraction of its weight (|Δcolour| ≤ it)."""
    volume: VolumeConfig = field(default_factory=lambda: VolumeConfig(perturb=False))
    seed: int = 0


@dataclass
class ViewGeometry:
    """A camera and a pose: K (3, 3) for an image of `size` (H, W), Th (3,) decimetres, pose (48,) flat-hand
    axis-angle with the global orient in camera axes, betas (10,)."""

    K: torch.Tensor
    Th: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    size: tuple[int, int]


def scaled_view(view: ViewGeometry, scale: float) -> ViewGeometry:
    """The same view for an image resized by `scale` (pixel centres at integers)."""
    size = (round(view.size[0] * scale), round(view.size[1] * scale))
    return ViewGeometry(scale_intrinsics(view.K, scale), view.Th, view.pose, view.betas, size)


def reference_views(avatar: HandAvatar, view: ViewGeometry, count: int) -> list[ViewGeometry]:
    """The release's reference views 1..count-1: flat fingers, the global rotation turned by 360°·k/count about
    the wrist→middle-MCP axis (of the posed hand without global rotation), same camera."""
    with torch.no_grad():
        joints = avatar.mano(torch.zeros(1, 3), view.pose[None, 3:], view.betas[None]).joints[0]
    axis = joints[4] - joints[0]
    axis = axis / axis.norm()
    orient = axis_angle_to_matrix(view.pose[None, :3].float())[0]
    views = []
    for k in range(1, count):
        turn = axis_angle_to_matrix((axis * 2 * math.pi * k / count)[None])[0]
        pose = torch.cat([matrix_to_axis_angle((orient @ turn)[None])[0], torch.zeros(45)])
        views.append(ViewGeometry(view.K, view.Th, pose, view.betas, view.size))
    return views


def heaviest_samples(weights: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(R, S) bool: per ray the fewest samples, heaviest first, whose weights sum to ≥ (1 - tolerance) of the ray's."""
    ordered, order = weights.sort(dim=1, descending=True)
    before = ordered.cumsum(dim=1) - ordered  # weight already kept when each sample is considered
    needed = before < (1 - tolerance) * weights.sum(dim=1, keepdim=True)
    return torch.zeros_like(needed).scatter(1, order, needed & (ordered > 0))


def front_to_back_occupancy(avatar: HandAvatar, posed, points: torch.Tensor,
                            transmittance_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Occupancy (R, S) and distal-phalanx flags (R, S) of ray samples (R, S, 3) ordered front to back, evaluated one
    depth slice at a time and only for rays whose transmittance is still above the floor (the rest get 0: their
    samples could change a pixel by at most the floor)."""
    R, S = points.shape[:2]
    alpha, tip = points.new_zeros(R, S), points.new_zeros(R, S)
    transmittance = points.new_ones(R)
    for s in range(S):
        live = torch.nonzero(transmittance > transmittance_floor)[:, 0]
        if len(live) == 0:
            break
        occupancy = avatar.occupancy(points[live, s][None], posed)
        alpha[live, s] = occupancy.occupancy[0]
        part = occupancy.part_index[0]
        tip[live, s] = ((part % 3 == 0) & (part > 0)).to(tip)
        transmittance[live] *= 1 - alpha[live, s]
    return alpha, tip


class CachedView:
    """One view's geometry baked for appearance-only optimisation: the kept samples of every active pixel, their
    compositing weights, anchor features and shadow, and the opacity and fingertip maps."""

    def __init__(self, avatar: HandAvatar, view: ViewGeometry, config: CreationConfig) -> None:
        self.view, self.size = view, view.size
        H, W = view.size
        self.device = device = avatar.appearance.id_feature.device
        K, Th = view.K[None].float().to(device), view.Th[None].float().to(device)
        appearance = avatar.appearance
        with torch.no_grad():
            posed = avatar.pose(view.pose[None, :3].to(K), view.pose[None, 3:].to(K), view.betas[None].to(K),
                                torch.Generator(device).manual_seed(config.seed))
            depth = front_depth(posed, K, Th, (H, W), config.volume.dilate_pixels)[0]
            active = torch.nonzero(depth > 0)  # (R, 2) rows (v, u)
            pixels = active[:, [1, 0]][None]
            surface = depth[active[:, 0], active[:, 1]]
            z = sample_depths(surface - config.volume.band_front, surface + config.volume.band_back,
                              config.volume.band_samples, perturb=False)
            points = -Th[0] + pixel_rays(K, pixels)[0][:, None] * z[..., None]  # (R, S, 3)
            alpha, tip = front_to_back_occupancy(avatar, posed, points, config.weight_tolerance * 0.1)
            weights = compositing_weights(alpha)
            opacity, tips = weights.sum(dim=1), (weights * tip).sum(dim=1)
            keep = heaviest_samples(weights, config.weight_tolerance)
            self.ray, sample = torch.nonzero(keep, as_tuple=True)
            self.weight = weights[keep]
            features = appearance.anchors.lookup(points[self.ray, sample][None], posed.anchors)
            shadows = appearance.config.shadow_levels
            self.colour_features = [f[0] for f in features[len(shadows):]]
            self.shadow = appearance.shadow(features[:len(shadows)], posed.joints_unrotated)[0]
        self.pixel_rows, self.pixel_cols = active[:, 0], active[:, 1]
        self.opacity = K.new_zeros(H, W).index_put((self.pixel_rows, self.pixel_cols), opacity)
        self.tips = K.new_zeros(H, W).index_put((self.pixel_rows, self.pixel_cols), tips)

    def render(self, avatar: HandAvatar, identity: torch.Tensor, calibrate: bool = True,
               region: torch.Tensor | None = None) -> torch.Tensor:
        """The image (H, W, 3) on black, differentiable in the albedo networks, identity and calibration; `region`
        (H, W) bool limits the work to those pixels (the rest stays black)."""
        H, W = self.size
        samples = slice(None)
        if region is not None:
            samples = region.to(self.device)[self.pixel_rows, self.pixel_cols][self.ray]
        albedo = avatar.appearance.albedo([f[samples][None] for f in self.colour_features], identity[None], calibrate)[0]
        colour = albedo * self.shadow[samples]
        per_ray = colour.new_zeros(len(self.pixel_rows), 3).index_add(0, self.ray[samples], colour * self.weight[samples, None])
        return colour.new_zeros(H, W, 3).index_put((self.pixel_rows, self.pixel_cols), per_ray)


def robust_inversion_loss(prediction: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """mean over the region of (|prediction - target| + 1e-5)^0.3."""
    return ((prediction - target).abs() + 1e-5).pow(0.3)[region].mean()


def random_patches(size: tuple[int, int], side: int, count: int, rng: np.random.Generator,
                   mask: np.ndarray | None = None) -> torch.Tensor:
    """A (H, W) bool map of `count` square patches of `side` pixels, centred on the mask when one is given."""
    H, W = size
    region = torch.zeros(H, W, dtype=torch.bool)
    candidates = np.argwhere(mask) if mask is not None and mask.any() else None
    for _ in range(count):
        if candidates is not None:
            cy, cx = candidates[rng.integers(len(candidates))]
        else:
            cy, cx = rng.integers(H), rng.integers(W)
        top, left = int(np.clip(cy - side // 2, 0, max(H - side, 0))), int(np.clip(cx - side // 2, 0, max(W - side, 0)))
        region[top:top + side, left:left + side] = True
    return region


@dataclass
class CreationResult:
    """The views used (input first), their targets (H, W, 3) and masks, and the loss history per stage."""

    views: list[ViewGeometry]
    targets: list[torch.Tensor]
    masks: list[torch.Tensor]
    history: dict[str, list[float]]


def create_avatar(avatar: HandAvatar, image: np.ndarray, mask: np.ndarray, view: ViewGeometry, config: CreationConfig,
                  edit: bool = False, perceptual=None, progress: bool = True) -> CreationResult:
    """Personalise `avatar`'s appearance (in place) from one image (H, W, 3) uint8 RGB and its hand mask (H, W)
    bool seen from `view`. `perceptual(a, b)` is an LPIPS-like distance of (1, 3, h, w) images in [-1, 1]."""
    avatar.requires_grad_(False)
    appearance = avatar.appearance
    device = appearance.id_feature.device
    as_image = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float().to(device) / 255.0  # noqa: E731
    as_mask = lambda a: torch.from_numpy(np.ascontiguousarray(a) > 0).to(device)  # noqa: E731
    target = as_image(image) * as_mask(mask)[..., None]
    history: dict[str, list[float]] = {"inversion": [], "finetune": []}
    if not edit and config.inversion_steps > 0:
        small = scaled_view(view, config.inversion_scale)
        small_target = as_image(cv2.resize(image, small.size[::-1], interpolation=cv2.INTER_AREA))
        small_mask = as_mask(cv2.resize(mask.astype(np.uint8), small.size[::-1], interpolation=cv2.INTER_NEAREST))
        cached = CachedView(avatar, small, config)
        region = small_mask ^ (cached.tips >= 0.5)  # the release: hand pixels that are not fingertips (XOR)
        parameters = [appearance.id_feature, appearance.color_scale, appearance.color_shift]
        for p in parameters:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(parameters, lr=config.inversion_lr)
        for _ in tqdm(range(config.inversion_steps), desc="inversion", disable=not progress):
            prediction = cached.render(avatar, appearance.id_feature) * small_mask[..., None]
            loss = robust_inversion_loss(prediction, small_target * small_mask[..., None], region)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["inversion"].append(float(loss.detach()))
    views = [view] + reference_views(avatar, view, config.views)
    cached_views = [CachedView(avatar, v, config) for v in views]
    targets, masks = [target], [as_mask(mask)]
    with torch.no_grad():
        for cached in cached_views[1:]:
            targets.append(cached.render(avatar, appearance.id_feature))
            masks.append(cached.opacity > 0.5)
    weights = [config.input_weight] + [config.reference_weight] * (len(views) - 1)
    steps = config.finetune_steps
    trainable = list(appearance.id_net_list.parameters()) + list(appearance.dict_fusion.parameters())
    if edit:
        weights[0], steps = config.edit_input_weight, config.edit_steps
        weights[len(views) // 2] = config.edit_opposite_weight
    else:
        trainable += [appearance.id_feature, appearance.color_scale, appearance.color_shift]
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(trainable, lr=config.finetune_lr)
    rng = np.random.default_rng(config.seed)
    side = max(8, round(config.patch_fraction * min(view.size)))
    for _ in tqdm(range(steps), desc="texture fitting", disable=not progress):
        for index, (cached, goal, hand, weight) in enumerate(zip(cached_views, targets, masks, weights)):
            region = random_patches(cached.size, side, config.patches, rng, hand.cpu().numpy()).to(device)
            prediction = cached.render(avatar, appearance.id_feature, region=region) * hand[..., None]
            difference = (prediction - goal * hand[..., None]).abs()[region]
            loss = config.l1_weight * difference.mean()
            if perceptual is not None:
                rows, cols = torch.nonzero(region, as_tuple=True)
                box = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
                to_net = lambda x: x[box].permute(2, 0, 1)[None] * 2 - 1  # noqa: E731
                loss = loss + perceptual(to_net(prediction), to_net(goal * hand[..., None])).mean()
            if index == 0 and not edit:
                tips = cached.tips[..., None]
                loss = loss + config.tip_weight * ((goal * tips - prediction * tips).abs()[region]).mean()
            loss = weight * loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["finetune"].append(float(loss.detach()))
    avatar.requires_grad_(False)
    return CreationResult(views, targets, masks, history)
