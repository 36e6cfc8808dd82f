"""Volume rendering of an OHTA avatar: rays, samples along them, occupancy compositing.

Occupancy is used as alpha (UNISURF-style): w_i = α_i Π_{j<i} (1 - α_j + 1e-10); a pixel's colour is Σ w_i c_i
plus (1 - Σ w_i) times the background. Two ways to place the samples:
- `band` (ours): the posed mesh is rasterized first and each ray is sampled only in a thin band around the mesh's
  front surface (pixels within a few pixels of the silhouette take the nearest covered depth; others are
  background). PairOF's surface follows the mesh, so the band holds the rendering at a fraction of the samples.
- `dense` (the release): every ray that meets the posed mesh's box (± margin) gets `dense_samples` depths from
  its entry to its exit, both ends included (the release's linspace); with `perturb` each is jittered between the
  midpoints around it (the release's stratified sampling).
The band's samples sit at bin centres, or uniformly within their bins with `perturb`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from hands.geometry.cameras import PerspectiveCamera
from hands.ohta.avatar import HandAvatar, PosedAvatar
from hands.render.rasterizer import rasterize

RAY_BOX_MARGIN = 0.01
"""Every ray box is widened by 0.01 dm when rays are cut with it (the release's camera_util.py rays_intersect_3d_bbox)."""


@dataclass
class VolumeConfig:
    """Sample placement and compositing (OHTA frame units: decimetres)."""

    sampling: Literal["band", "dense"] = "band"
    """band (around the rasterized surface) or dense (the release: the whole box)."""
    band_samples: int = 12
    band_front: float = 0.1
    """Band start in front of the mesh surface (1 cm)."""
    band_back: float = 0.25
    """Band end behind the mesh surface (2.5 cm)."""
    dilate_pixels: int = 2
    """Rays this close to the silhouette also get a band (PairOF's surface may reach past the mesh)."""
    dense_samples: int = 64
    box_margin: float = 0.02
    """Margin of the dense mode's box around the posed vertices when no box is given (the release's annotation
    boxes are the vertices ±0.01, widened by another 0.01 when the rays are cut)."""
    perturb: bool = True
    chunk: int = 32768
    """Points evaluated at once."""


def pixel_rays(K: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Camera-space directions with unit depth (z = 1) through pixel centres (B, P, 2) for intrinsics (B, 3, 3)."""
    u, v = pixels[..., 0].to(K), pixels[..., 1].to(K)
    x = (u - K[:, None, 0, 2] - K[:, None, 0, 1] * (v - K[:, None, 1, 2]) / K[:, None, 1, 1]) / K[:, None, 0, 0]
    y = (v - K[:, None, 1, 2]) / K[:, None, 1, 1]
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)


def front_depth(posed: PosedAvatar, K: torch.Tensor, Th: torch.Tensor, size: tuple[int, int], dilate: int) -> torch.Tensor:
    """Camera depth of the mesh's nearest surface per pixel (B, H, W), 0 where no band is needed; pixels within
    `dilate` of the silhouette take the nearest depth around them."""
    screen = PerspectiveCamera(K).project(posed.vertices.detach() + Th[:, None])
    depth = rasterize(screen, posed.faces, size).depth
    if dilate <= 0:
        return depth
    far = torch.where(depth > 0, depth, torch.full_like(depth, float("inf")))
    nearest = -F.max_pool2d(-far[:, None], 2 * dilate + 1, stride=1, padding=dilate)[:, 0]
    return torch.where(depth > 0, depth, torch.where(torch.isfinite(nearest), nearest, torch.zeros_like(depth)))


def sample_depths(near: torch.Tensor, far: torch.Tensor, count: int, perturb: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """count depths per ray between near and far (R,): bin centres, or uniform within each bin with `perturb`."""
    steps = torch.linspace(0.0, 1.0, count + 1, device=near.device, dtype=near.dtype)
    lower, upper = steps[:-1], steps[1:]
    offset = torch.rand(near.shape[0], count, generator=generator).to(near) if perturb else torch.full((1, count), 0.5).to(near)
    fraction = lower + (upper - lower) * offset
    return near[:, None] + (far - near)[:, None] * fraction


def endpoint_depths(near: torch.Tensor, far: torch.Tensor, count: int, perturb: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """count depths per ray (R, count) from near to far (R,) with both ends included (the release's linspace);
    with `perturb`, each uniform between the midpoints to its neighbours (the ends between themselves and them)."""
    t = torch.linspace(0.0, 1.0, count, device=near.device, dtype=near.dtype)
    z = near[:, None] * (1 - t) + far[:, None] * t
    if not perturb:
        return z
    mids = 0.5 * (z[:, 1:] + z[:, :-1])
    upper, lower = torch.cat([mids, z[:, -1:]], dim=1), torch.cat([z[:, :1], mids], dim=1)
    return lower + (upper - lower) * torch.rand(z.shape, generator=generator).to(z)


def box_interval(origins: torch.Tensor, directions: torch.Tensor, low: torch.Tensor,
                 high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit ray parameters (R,) of rays (R, 3) through an axis-aligned box; exit < entry when missed."""
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (low - origins) / safe, (high - origins) / safe
    return torch.minimum(t0, t1).amax(dim=-1).clamp_min(0), torch.maximum(t0, t1).amin(dim=-1)


def box_ray_intervals(K: torch.Tensor, Th: torch.Tensor, box: torch.Tensor,
                      size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit (H, W) of every pixel's ray (release convention: through integer pixel coordinates, unit
    depth) through the 3D box (2, 3) widened by RAY_BOX_MARGIN; K (3, 3), Th (3,) dm. A ray misses where exit <=
    entry."""
    H, W = size
    v, u = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    directions = pixel_rays(K[None].float(), torch.stack([u, v], -1).reshape(1, -1, 2))[0]
    origins = -Th.float().reshape(1, 3).expand_as(directions)
    low, high = (box.float().to(directions) + torch.tensor([[-RAY_BOX_MARGIN], [RAY_BOX_MARGIN]])).unbind(0)
    near, far = box_interval(origins, directions, low.expand_as(directions), high.expand_as(directions))
    return near.reshape(H, W), far.reshape(H, W)


def box_ray_mask(K: torch.Tensor, Th: torch.Tensor, box: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool: the pixels whose rays meet the 3D box (see `box_ray_intervals`)."""
    near, far = box_ray_intervals(K, Th, box, size)
    return far > near


def compositing_weights(alpha: torch.Tensor) -> torch.Tensor:
    """Per-sample weights (R, S) of alphas (R, S) ordered front to back: α_i Π_{j<i} (1 - α_j + 1e-10)."""
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], dim=1), dim=1)[:, :-1]
    return alpha * transmittance


def composite(alpha: torch.Tensor, values: torch.Tensor, background: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Accumulate (R, S) alphas over (R, S, C) values front to back -> (R, C) and the opacity (R,)."""
    weights = compositing_weights(alpha)
    opacity = weights.sum(dim=1)
    out = (weights[..., None] * values).sum(dim=1)
    if background is not None:
        out = out + (1 - opacity)[:, None] * background
    return out, opacity


def render_pixels(avatar: HandAvatar, posed: PosedAvatar, K: torch.Tensor, Th: torch.Tensor, pixels: torch.Tensor,
                  identity: torch.Tensor, config: VolumeConfig, size: tuple[int, int], background: torch.Tensor | None = None,
                  calibrate: bool = False, generator: torch.Generator | None = None, keep_samples: bool = False,
                  box: torch.Tensor | None = None) -> dict:
    """Render the given pixels (B, P, 2) integer (u, v) of one posed batch (B = 1 per call is typical).

    K (B, 3, 3) and Th (B, 3) (decimetres) place the avatar; identity (B, 33); `box` (2, 3): the 3D box that bounds
    the dense mode's rays, widened by RAY_BOX_MARGIN (a view's `box`; None: the posed vertices ± box_margin).
    Returns rgb (B, P, 3), albedo,
    shadow (B, P, 1), opacity (B, P) and tips (B, P): how much of the pixel the distal phalanges cover; with
    `keep_samples`, also `samples`: per batch element the sample points (N, 3), their occupancy (N,) and whether
    they lie outside every part box (N,)."""
    B, P = pixels.shape[:2]
    directions = pixel_rays(K, pixels)  # camera frame, z = 1
    origins = -Th[:, None].expand(B, P, 3)  # the camera centre in OHTA's frame
    if config.sampling == "band":
        depth = front_depth(posed, K, Th, size, config.dilate_pixels)
        surface = depth[torch.arange(B)[:, None], pixels[..., 1].long(), pixels[..., 0].long()]
        active = surface > 0
        near, far = surface - config.band_front, surface + config.band_back
        count = config.band_samples
    elif config.sampling == "dense":
        if box is None:
            low = posed.vertices.detach().amin(dim=1) - config.box_margin
            high = posed.vertices.detach().amax(dim=1) + config.box_margin
        else:
            low = (box[0].to(K) - RAY_BOX_MARGIN).expand(B, 3)
            high = (box[1].to(K) + RAY_BOX_MARGIN).expand(B, 3)
        near, far = box_interval(origins.reshape(-1, 3), directions.reshape(-1, 3),
                                 low[:, None].expand(B, P, 3).reshape(-1, 3), high[:, None].expand(B, P, 3).reshape(-1, 3))
        near, far = near.reshape(B, P), far.reshape(B, P)
        active = far > near
        count = config.dense_samples
    else:
        raise ValueError(f"sampling: expected band or dense, got {config.sampling!r}")
    zeros = lambda c: pixels.new_zeros((B, P, c), dtype=K.dtype)  # noqa: E731
    result = {"rgb": zeros(3), "albedo": zeros(3), "shadow": zeros(1), "opacity": zeros(1)[..., 0], "tips": zeros(1)[..., 0]}
    if background is not None:
        result["rgb"] = result["rgb"] + background.to(K)
    samples = []
    for b in range(B):
        rays = torch.nonzero(active[b])[:, 0]
        if len(rays) == 0:
            samples.append({"points": K.new_zeros(0, 3), "alpha": K.new_zeros(0), "outside": torch.zeros(0, dtype=torch.bool)})
            continue
        place = sample_depths if config.sampling == "band" else endpoint_depths
        z = place(near[b, rays], far[b, rays], count, config.perturb, generator)  # (R, S)
        points = origins[b, rays, None] + directions[b, rays, None] * z[..., None]  # (R, S, 3)
        flat = points.reshape(1, -1, 3)
        pieces = {"alpha": [], "tip": [], "colour": [], "albedo": [], "shadow": [], "outside": []}
        single = _select(posed, b)
        for start in range(0, flat.shape[1], config.chunk):
            chunk = flat[:, start:start + config.chunk]
            occupancy = avatar.occupancy(chunk, single)
            shaded = avatar.shade(chunk, single, identity[b:b + 1], calibrate)
            pieces["alpha"].append(occupancy.occupancy[0])
            pieces["outside"].append(occupancy.outside[0])
            pieces["tip"].append((occupancy.part_index[0] % 3 == 0) & (occupancy.part_index[0] > 0))
            for key in ("colour", "albedo", "shadow"):
                pieces[key].append(shaded[key][0])
        R, S = z.shape
        alpha = torch.cat(pieces["alpha"]).reshape(R, S)
        bg = background.to(K) if background is not None else None
        rgb, opacity = composite(alpha, torch.cat(pieces["colour"]).reshape(R, S, 3), bg)
        albedo, _ = composite(alpha, torch.cat(pieces["albedo"]).reshape(R, S, 3))
        shadow, _ = composite(alpha, torch.cat(pieces["shadow"]).reshape(R, S, 1))
        tips, _ = composite(alpha, torch.cat(pieces["tip"]).reshape(R, S, 1).to(alpha))
        for key, value in (("rgb", rgb), ("albedo", albedo), ("shadow", shadow)):
            result[key] = result[key].index_put((torch.tensor([b]), rays[None]), value[None])
        result["opacity"] = result["opacity"].index_put((torch.tensor([b]), rays[None]), opacity[None])
        result["tips"] = result["tips"].index_put((torch.tensor([b]), rays[None]), tips[None, :, 0])
        samples.append({"points": flat[0], "alpha": alpha.reshape(-1), "outside": torch.cat(pieces["outside"])})
    if keep_samples:
        result["samples"] = samples
    return result


def _select(posed: PosedAvatar, b: int) -> PosedAvatar:
    """Batch element b of a posed batch, kept as a batch of one."""
    if posed.vertices.shape[0] == 1:
        return posed
    pick = lambda t: t[b:b + 1]  # noqa: E731
    code = type(posed.code)(pick(posed.code.pair_codes), pick(posed.code.to_bone), pick(posed.code.box_centre),
                            pick(posed.code.box_size))
    return PosedAvatar(pick(posed.vertices), posed.faces, code, [pick(a) for a in posed.anchors], pick(posed.joints_unrotated))


def render_image(avatar: HandAvatar, posed: PosedAvatar, K: torch.Tensor, Th: torch.Tensor, size: tuple[int, int],
                 identity: torch.Tensor, config: VolumeConfig, background: torch.Tensor | None = None,
                 calibrate: bool = False, box: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every pixel of an H x W image: rgb (B, H, W, 3) etc. (see `render_pixels`)."""
    H, W = size
    v, u = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    pixels = torch.stack([u, v], dim=-1).reshape(1, -1, 2).expand(K.shape[0], -1, -1)
    out = render_pixels(avatar, posed, K, Th, pixels, identity, config, size, background, calibrate, box=box)
    return {key: value.reshape(K.shape[0], H, W, *value.shape[2:]) for key, value in out.items()}
