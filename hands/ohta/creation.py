"""One-shot avatar creation (OHTA): texture inversion on the input view, reference views, texture fitting.

As released (create.py, core/utils/create_util.py): (1) invert the identity code and the colour calibration on the
input image at 0.8 scale (int(256·0.8) = 204 px, K's first two rows ×0.8; the image multiplied by its soft mask and
resized bilinearly, the mask resized and cut at 150/255) with a robust power-0.3 penalty that leaves the fingertips
out; (2) render the avatar in 7 more views (the fingers at rest, the hand turned about standard MANO's
wrist→middle-MCP axis by k·45°), kept as 8-bit images and reloaded multiplied by their 8-bit opacity, whose pixels
above 150/255 are the targets' masks; (3) fine-tune the albedo networks, identity and calibration on 2 patches of
110² per view and step, centred on the hand with probability 0.8, else where the rays meet the hand's 3D box but
not the hand: (10·L1 + LPIPS-VGG per patch) ×4 on the input view plus 30·fingertip L1, ×1 on the others; one
Adam step per view. `--edit` skips (1) and fits the painted region of the input (×15, fingertip term kept)
against the unedited avatar's views (the opposite view ×4). Every view's hand pose gets the release's +0.01.

Geometry (MANO-HD, PairOF) is frozen during creation and each view's pose is fixed, so `CachedView` bakes a view's
samples and compositing weights once (occupancy evaluated front to back, stopping once a ray is opaque), keeping per
ray only the heaviest samples that carry all but `weight_tolerance`
of its weight (so a pixel's colour moves by at most that much), their anchor features and their shadow (anchor
features, shadow networks and pose are all frozen during creation); every step then only runs the albedo networks.
This replaces the release's stochastic re-sampling of every ray at every step (docs/deviations.md).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hands.config import check_fields
from hands.geometry.cameras import scale_intrinsics
from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hands.mano.layer import ManoLayer
from hands.ohta.avatar import HandAvatar
from hands.ohta.oneshot import DECIMETERS
from hands.ohta.volume import (
    RAY_BOX_MARGIN,
    VolumeConfig,
    box_ray_intervals,
    compositing_weights,
    endpoint_depths,
    front_depth,
    pixel_rays,
    sample_depths,
)

log = logging.getLogger(__name__)

RELEASE_POSE_OFFSET = 0.01
"""The release adds 0.01 to all 45 hand-pose values of every view it builds from an annotation or a reference pose
(create_util.py get_data) and in prior learning, so its prior was trained on offset poses."""
REFERENCE_BOX_MARGIN = 0.5
"""Reference views bound their rays by the posed standard-MANO vertices ± 0.5 dm (create_util.py skeleton_to_bbox)."""


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
    """Fingertip L1 on the input view, added after the view weight (the release's 30, also when editing)."""
    subject_ratio: float = 0.8
    """A patch is centred on the hand with this probability, else on a pixel whose ray meets the hand's 3D box
    outside the hand (the release's patch.sample_subject_ratio)."""
    alpha_threshold: int = 150
    """Masks keep the pixels above this of 255: the input's mask and the 8-bit opacity of the reference renders."""
    reference_round_trip: bool = True
    """Reference targets as the release reloads its PNGs: 8-bit, multiplied by their 8-bit opacity; off: the float
    renders with opacity > alpha_threshold/255 (docs/deviations.md)."""
    pose_offset: float = RELEASE_POSE_OFFSET
    """Added to every hand-pose value of the reference views (the input's comes with its reading); 0: none."""
    edit_steps: int = 200
    edit_input_weight: float = 15.0
    edit_opposite_weight: float = 4.0
    weight_tolerance: float = 0.01
    """Per ray, the samples dropped from the baked views carry at most this fraction of its weight (|Δcolour| ≤ it)."""
    volume: VolumeConfig = field(default_factory=lambda: VolumeConfig(perturb=False))
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, at_least={"views": 1, "inversion_steps": 0, "finetune_steps": 0, "edit_steps": 0, "patches": 1,
                                     "inversion_lr": 0, "finetune_lr": 0, "inversion_scale": 1e-3, "patch_fraction": 1e-3},
                     finite=("input_weight", "reference_weight", "tip_weight", "pose_offset"))


@dataclass
class ViewGeometry:
    """A camera and a pose: K (3, 3) for an image of `size` (H, W); transl (3,) meters, where the camera sees the
    origin of the hand's frame; pose (48,) flat-hand axis-angle with the global orient in camera axes (as rendered:
    any pose offset included), betas (10,); `box` (2, 3): the min and max corners of the hand's 3D box in OHTA's
    internal frame (decimetres, like the release's annotation bbox) that bounds the rays (None: the posed mesh's)."""

    K: torch.Tensor
    transl: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    size: tuple[int, int]
    box: torch.Tensor | None = None

    @property
    def Th(self) -> torch.Tensor:
        """`transl` in decimetres: OHTA's internal frame and the release's annotation `Th`."""
        return self.transl * DECIMETERS


def scaled_view(view: ViewGeometry, scale: float, pixel_centres: bool = True) -> ViewGeometry:
    """The same view for an image resized by `scale`: with `pixel_centres` the side is rounded and pixel centres
    stay at integers; without, K's first two rows are multiplied by the scale and the side is truncated, as the
    release sizes its inversion input (int(256·0.8) = 204)."""
    H, W = view.size
    if pixel_centres:
        return replace(view, K=scale_intrinsics(view.K, scale), size=(round(H * scale), round(W * scale)))
    K = view.K.clone()
    K[:2] *= scale
    return replace(view, K=K, size=(int(H * scale), int(W * scale)))


def standard_mano(avatar: HandAvatar) -> ManoLayer:
    """The MANO layer (778 vertices, flat-hand poses) of the model the avatar's MANO-HD was made from."""
    return ManoLayer(avatar.mano.base, pose_convention="flat")


def reference_views(avatar: HandAvatar, view: ViewGeometry, count: int,
                    pose_offset: float = RELEASE_POSE_OFFSET) -> list[ViewGeometry]:
    """The release's reference views 1..count-1, same camera: the global rotation turned by 360°·k/count about
    the wrist→middle-MCP axis of standard MANO in the view's finger pose without global rotation, the fingers at
    rest plus `pose_offset`, and the rays bounded by standard MANO in the turned view's own finger pose ± 0.5 dm.
    `view.pose` carries the input's offset, which is taken off for the axis and the boxes, as the release does."""
    mano = standard_mano(avatar)
    fingers, betas = (view.pose[None, 3:].cpu() - pose_offset).float(), view.betas[None].cpu().float()
    with torch.no_grad():
        joints = mano(torch.zeros(1, 3), fingers, betas).kinematic_joints[0]
    axis = joints[4] - joints[0]
    axis = axis / axis.norm()
    orient = axis_angle_to_matrix(view.pose[None, :3].cpu().float())[0]
    views = []
    for k in range(1, count):
        turn = axis_angle_to_matrix((axis * 2 * math.pi * k / count)[None])[0]
        global_orient = matrix_to_axis_angle((orient @ turn)[None])
        with torch.no_grad():
            out = mano(global_orient, fingers, betas)
        vertices = (out.vertices[0] - out.kinematic_joints[0, 4]) * 10.0  # OHTA frame: dm about the middle MCP
        box = torch.stack([vertices.amin(0) - REFERENCE_BOX_MARGIN, vertices.amax(0) + REFERENCE_BOX_MARGIN])
        pose = torch.cat([global_orient[0], torch.full((45,), pose_offset)])
        views.append(ViewGeometry(view.K, view.transl, pose, view.betas, view.size, box))
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
    compositing weights, anchor features and shadow, the opacity and fingertip maps, and which pixels' rays meet
    the hand's box. Samples: a band about the rasterized surface (`volume.sampling="band"`), or the release's
    `dense_samples` depths through the ray box (`"dense"`, without the release's per-step jitter)."""

    def __init__(self, avatar: HandAvatar, view: ViewGeometry, config: CreationConfig) -> None:
        self.view, self.size = view, view.size
        H, W = view.size
        self.device = device = avatar.appearance.id_feature.device
        K, Th = view.K[None].float().to(device), view.Th[None].float().to(device)
        appearance = avatar.appearance
        with torch.no_grad():
            posed = avatar.pose(view.pose[None, :3].to(K), view.pose[None, 3:].to(K), view.betas[None].to(K),
                                torch.Generator(device).manual_seed(config.seed))
            box = view.box
            if box is None:  # the posed mesh ± 0.01 dm stands in for the annotation's box (its vertices ± 0.01)
                corners = posed.vertices[0].detach().cpu()
                box = torch.stack([corners.amin(0) - RAY_BOX_MARGIN, corners.amax(0) + RAY_BOX_MARGIN])
            entry, exit_ = box_ray_intervals(view.K.cpu(), view.Th.cpu(), box.cpu(), (H, W))
            self.box_rays = (exit_ > entry).numpy()
            if config.volume.sampling == "dense":  # the release: 64 depths from entry to exit of the ray box
                rows, cols = torch.nonzero(exit_ > entry, as_tuple=True)
                active = torch.stack([rows, cols], dim=1).to(device)
                directions = pixel_rays(K, active[:, [1, 0]][None])[0]
                z = endpoint_depths(entry[rows, cols].to(K), exit_[rows, cols].to(K), config.volume.dense_samples,
                                    perturb=False)
            else:
                depth = front_depth(posed, K, Th, (H, W), config.volume.dilate_pixels)[0]
                active = torch.nonzero(depth > 0)  # (R, 2) rows (v, u)
                directions = pixel_rays(K, active[:, [1, 0]][None])[0]
                surface = depth[active[:, 0], active[:, 1]]
                z = sample_depths(surface - config.volume.band_front, surface + config.volume.band_back,
                                  config.volume.band_samples, perturb=False)
            points = -Th[0] + directions[:, None] * z[..., None]  # (R, S, 3)
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


def robust_inversion_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean over every pixel and channel of (|prediction - target| + 1e-5)^0.3 (the release; callers zero both
    outside the pixels that count)."""
    return ((prediction - target).abs() + 1e-5).pow(0.3).mean()


def input_target(image: np.ndarray, matte: np.ndarray, size: tuple[int, int], threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The release's target of the input at `size` (H, W): the image (H0, W0, 3) uint8 multiplied by its mask
    (H0, W0) uint8 as a soft matte, both resized bilinearly when the size differs, the resized mask cut at
    `threshold`: (target (H, W, 3) float in [0, 1], zero outside the mask; mask (H, W) bool)."""
    soft = image.astype(np.float64) * (matte.astype(np.float64)[..., None] / 255.0)
    if soft.shape[:2] != tuple(size):
        soft = cv2.resize(soft, size[::-1])
        matte = cv2.resize(matte, size[::-1])
    mask = matte > threshold
    return (soft / 255.0 * mask[..., None]).astype(np.float32), mask


def reference_target(rgb: torch.Tensor, opacity: torch.Tensor, threshold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference render as the release uses it after its PNG round trip: rgb (H, W, 3) and opacity (H, W)
    truncated to 8 bits, the image multiplied by the 8-bit opacity, the mask where it exceeds `threshold`;
    the target is zero outside the mask."""
    rgb8 = (rgb * 255).clamp(0, 255).to(torch.uint8).float()
    alpha8 = (opacity * 255).clamp(0, 255).to(torch.uint8).float()
    mask = alpha8 > threshold
    return rgb8 / 255 * (alpha8 / 255)[..., None] * mask[..., None], mask


def random_patches(size: tuple[int, int], side: int, count: int, rng: np.random.Generator, subject: np.ndarray | None = None,
                   box: np.ndarray | None = None, subject_ratio: float = 1.0) -> list[tuple[int, int]]:
    """Top-left corners (row, col) of `count` square patches of `side` pixels inside an image of `size` (H, W).
    Each is centred, with probability `subject_ratio`, on a random pixel of `subject` (H, W) bool, else on one of
    `box` (H, W) bool outside the subject (the release's rule); where a set is empty the other is used, and with
    neither the centre is anywhere."""
    H, W = size
    on_subject = np.argwhere(subject) if subject is not None else np.zeros((0, 2), int)
    around = np.argwhere(box & ~subject) if box is not None and subject is not None else np.zeros((0, 2), int)
    corners = []
    for _ in range(count):
        candidates = on_subject if rng.random() < subject_ratio else around
        candidates = candidates if len(candidates) else (on_subject if len(on_subject) else around)
        cy, cx = candidates[rng.integers(len(candidates))] if len(candidates) else (rng.integers(H), rng.integers(W))
        corners.append((int(np.clip(cy - side // 2, 0, max(H - side, 0))), int(np.clip(cx - side // 2, 0, max(W - side, 0)))))
    return corners


def patch_region(size: tuple[int, int], corners: list[tuple[int, int]], side: int) -> torch.Tensor:
    """(H, W) bool: the union of the patches."""
    region = torch.zeros(size, dtype=torch.bool)
    for top, left in corners:
        region[top:top + side, left:left + side] = True
    return region


def stack_patches(image: torch.Tensor, corners: list[tuple[int, int]], side: int) -> torch.Tensor:
    """The patches of an image (H, W, C) as (P, side, side, C), overlapping ones each in full (as the release)."""
    return torch.stack([image[top:top + side, left:left + side] for top, left in corners])


def patch_loss(prediction: torch.Tensor, truth: torch.Tensor, weight: float, config: CreationConfig, perceptual=None,
               tips: torch.Tensor | None = None) -> torch.Tensor:
    """A view's texture-fitting loss on its patches (P, s, s, 3), both zero outside the view's mask: weight ·
    (l1_weight · mean L1 + mean per-patch LPIPS) plus, with the fingertip map `tips` (P, s, s, 1) of the input
    view, tip_weight · mean |truth·tips - prediction·tips| (added after the weight, as the release does)."""
    loss = config.l1_weight * (prediction - truth).abs().mean()
    if perceptual is not None:
        to_net = lambda x: x.permute(0, 3, 1, 2) * 2 - 1  # noqa: E731
        loss = loss + perceptual(to_net(prediction), to_net(truth)).mean()
    loss = weight * loss
    if tips is not None:
        loss = loss + config.tip_weight * (truth * tips - prediction * tips).abs().mean()
    return loss


@dataclass
class CreationResult:
    """The views used (input first), their targets (H, W, 3) and masks, and the loss history per stage."""

    views: list[ViewGeometry]
    targets: list[torch.Tensor]
    masks: list[torch.Tensor]
    history: dict[str, list[float]]


def create_avatar(avatar: HandAvatar, image: np.ndarray, mask: np.ndarray, view: ViewGeometry, config: CreationConfig,
                  edit: bool = False, perceptual=None, progress: bool = True) -> CreationResult:
    """Personalise `avatar`'s appearance (in place) from one image (H, W, 3) uint8 RGB and its hand mask (H, W),
    seen from `view`: a uint8 matte (the mask PNG as it is; the release multiplies the image by it) or bool.
    `perceptual(a, b)` is an LPIPS-like distance of (P, 3, h, w) images in [-1, 1], one value per patch."""
    avatar.requires_grad_(False)
    appearance = avatar.appearance
    device = appearance.id_feature.device
    matte = mask.astype(np.uint8) * 255 if mask.dtype == bool else np.asarray(mask, dtype=np.uint8)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    history: dict[str, list[float]] = {"inversion": [], "finetune": []}
    if not edit and config.inversion_steps > 0:
        small = scaled_view(view, config.inversion_scale, pixel_centres=False)
        small_target, small_mask = (as_tensor(a) for a in input_target(image, matte, small.size, config.alpha_threshold))
        cached = CachedView(avatar, small, config)
        keep = (small_mask ^ (cached.tips >= 0.5))[..., None]  # the release: hand pixels that are not fingertips (XOR)
        parameters = [appearance.id_feature, appearance.color_scale, appearance.color_shift]
        for p in parameters:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(parameters, lr=config.inversion_lr)
        for _ in tqdm(range(config.inversion_steps), desc="inversion", disable=not progress):
            prediction = cached.render(avatar, appearance.id_feature) * small_mask[..., None]
            loss = robust_inversion_loss(prediction * keep, small_target * keep)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["inversion"].append(float(loss.detach()))
    views = [view] + reference_views(avatar, view, config.views, config.pose_offset)
    cached_views = [CachedView(avatar, v, config) for v in views]
    target, input_mask = (as_tensor(a) for a in input_target(image, matte, view.size, config.alpha_threshold))
    targets, masks = [target], [input_mask]
    with torch.no_grad():
        for cached in cached_views[1:]:
            rendered = cached.render(avatar, appearance.id_feature)
            if config.reference_round_trip:
                goal, hand = reference_target(rendered, cached.opacity, config.alpha_threshold)
            else:
                hand = cached.opacity > config.alpha_threshold / 255
                goal = rendered * hand[..., None]
            targets.append(goal)
            masks.append(hand)
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
            corners = random_patches(cached.size, side, config.patches, rng, hand.cpu().numpy(), cached.box_rays,
                                     config.subject_ratio)
            region = patch_region(cached.size, corners, side).to(device)
            prediction = stack_patches(cached.render(avatar, appearance.id_feature, region=region) * hand[..., None],
                                       corners, side)
            tips = stack_patches(cached.tips[..., None], corners, side) if index == 0 else None
            loss = patch_loss(prediction, stack_patches(goal, corners, side), weight, config, perceptual, tips)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["finetune"].append(float(loss.detach()))
    avatar.requires_grad_(False)
    return CreationResult(views, targets, masks, history)
