"""OHTA's appearance: the multi-resolution anchor texture field, the identity-specific albedo and the
identity-shared, pose-dependent shadow.

Anchors are points fixed on the MANO-HD surface (a face and barycentric weights each), at 256, 512, 1024, 2048 and
4096 per level, so they follow the posed mesh. Each carries a learned 128-d feature; a 3D point reads every level
as the inverse-distance mean of its 4 nearest anchors. Albedo: one MLP per colour level (512...4096) on
[feature ‖ identity code (33)], their 16-d outputs and the identity fused to RGB by a small sigmoid MLP, then an
optional per-channel colour calibration (scale, shift; one-shot creation). Shadow: an MLP on the 256-level
feature and the 21 joints of the pose without global rotation (63 values), fused to one sigmoid factor.
Colour = albedo × shadow. Names follow the release's modules so its prior loads through a short key map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from scipy.spatial import cKDTree


@dataclass
class AppearanceConfig:
    """Sizes of the texture field and networks (release values)."""

    shadow_levels: tuple[int, ...] = (256,)
    colour_levels: tuple[int, ...] = (512, 1024, 2048, 4096)
    feature_dim: int = 128
    identity_dim: int = 33
    identities: int = 30
    """Rows of the identity table (one per InterHand2.6M capture number in the release)."""
    hidden: int = 256
    layers: int = 4
    level_out: int = 16
    neighbours: int = 4
    joints: int = 21


def sample_anchors(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted random surface points as (face vertex ids (count, 3), barycentric weights (count, 3))."""
    corners = vertices[faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    chosen = rng.choice(len(faces), size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    root = np.sqrt(u)
    return faces[chosen], np.stack([1 - root, root * (1 - v), root * v], axis=1)


class FeatureMLP(nn.Module):
    """Weight-normalised ReLU MLP (IDR's rendering network in 'feat' mode, no output activation): lin0..lin{n}."""

    def __init__(self, d_in: int, hidden: int, layers: int, d_out: int) -> None:
        super().__init__()
        dims = [d_in] + [hidden] * layers + [d_out]
        self.count = len(dims) - 1
        for i in range(self.count):
            setattr(self, f"lin{i}", nn.utils.parametrizations.weight_norm(nn.Linear(dims[i], dims[i + 1])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.count):
            x = getattr(self, f"lin{i}")(x)
            if i < self.count - 1:
                x = torch.relu(x)
        return x


def fusion_mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """Linear-ReLU-Linear-ReLU-Linear-Sigmoid (the release's `simple_mlp` with 3 layers)."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out),
                         nn.Sigmoid())


class AnchorField(nn.Module):
    """Anchors on the template surface and their learned features, per level (shadow levels first)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, config: AppearanceConfig, seed: int = 0) -> None:
        super().__init__()
        self.levels = tuple(config.shadow_levels) + tuple(config.colour_levels)
        self.k = config.neighbours
        rng = np.random.default_rng(seed)
        self.features = nn.ParameterList()
        for count in self.levels:
            ids, weights = sample_anchors(vertices, faces, count, rng)
            self.register_buffer(f"faces_{count}", torch.as_tensor(ids, dtype=torch.long))
            self.register_buffer(f"weights_{count}", torch.as_tensor(weights, dtype=torch.float32))
            self.features.append(nn.Parameter(torch.randn(count, config.feature_dim)))

    def positions(self, vertices: torch.Tensor) -> list[torch.Tensor]:
        """Anchor positions on posed vertices (B, V, 3): one (B, N, 3) per level."""
        out = []
        for count in self.levels:
            corners = vertices[:, getattr(self, f"faces_{count}")]  # (B, N, 3, 3)
            out.append((getattr(self, f"weights_{count}").to(vertices)[None, :, :, None] * corners).sum(dim=2))
        return out

    def neighbours(self, points: torch.Tensor, positions: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level, the nearest anchors of points (B, T, 3) (a k-d tree) and their inverse-distance weights
        (distances ≥ 1e-4, normalised): (index (B, T, k), weights (B, T, k)); the weights stay differentiable."""
        out = []
        for anchors in positions:
            indices, weights = [], []
            for b in range(points.shape[0]):
                _, index = cKDTree(anchors[b].detach().cpu().numpy()).query(points[b].detach().cpu().numpy(), k=self.k)
                index = torch.as_tensor(index, device=points.device).reshape(points.shape[1], self.k)
                inverse = 1.0 / (points[b][:, None] - anchors[b][index]).norm(dim=-1).clamp_min(1e-4)
                indices.append(index)
                weights.append(inverse / inverse.sum(dim=-1, keepdim=True))
            out.append((torch.stack(indices), torch.stack(weights)))
        return out

    def gather(self, neighbours: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        """Per level, the weighted mean of the neighbours' features: (B, T, C)."""
        return [(self.features[level][index] * weights[..., None]).sum(dim=-2) for level, (index, weights) in enumerate(neighbours)]

    def lookup(self, points: torch.Tensor, positions: list[torch.Tensor]) -> list[torch.Tensor]:
        """Features of points (B, T, 3) per level: (B, T, C)."""
        return self.gather(self.neighbours(points, positions))


class Appearance(nn.Module):
    """Albedo, shadow and colour of points from their anchor features, an identity code and the pose's joints."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, config: AppearanceConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config = config or AppearanceConfig()
        self.anchors = AnchorField(vertices, faces, config, seed)
        colour_in = config.feature_dim + config.identity_dim
        self.id_net_list = nn.ModuleList(FeatureMLP(colour_in, config.hidden, config.layers, config.level_out)
                                         for _ in config.colour_levels)
        fused = config.level_out * len(config.colour_levels)
        self.dict_fusion = fusion_mlp(fused + config.identity_dim, fused, 3)
        shadow_in = config.feature_dim + 3 * config.joints
        self.shadow_net_list = nn.ModuleList(FeatureMLP(shadow_in, config.hidden, config.layers, config.level_out)
                                             for _ in config.shadow_levels)
        shadows = config.level_out * len(config.shadow_levels)
        self.shadow_dict_fusion = fusion_mlp(shadows, shadows, 1)
        self.id_code = nn.Parameter(nn.init.trunc_normal_(torch.zeros(config.identities, config.identity_dim), std=0.02))
        # one-shot creation: a free identity and a colour calibration (identity at creation start: zeros, 1, 0)
        self.id_feature = nn.Parameter(torch.zeros(config.identity_dim))
        self.color_scale = nn.Parameter(torch.ones(1, 3))
        self.color_shift = nn.Parameter(torch.zeros(1, 3))

    def forward(self, features: list[torch.Tensor], identity: torch.Tensor, joints_unrotated: torch.Tensor,
                calibrate: bool = False) -> dict[str, torch.Tensor]:
        """features: per level (B, T, C) (shadow levels first); identity (B, 33); joints_unrotated (B, 21, 3) in
        OHTA's frame. Returns albedo (B, T, 3), shadow (B, T, 1) and colour (B, T, 3) in [0, 1]."""
        shadow_count = len(self.config.shadow_levels)
        albedo = self.albedo(features[shadow_count:], identity, calibrate)
        shadow = self.shadow(features[:shadow_count], joints_unrotated)
        return {"albedo": albedo, "shadow": shadow, "colour": albedo * shadow}

    def shadow(self, shadow_features: list[torch.Tensor], joints_unrotated: torch.Tensor) -> torch.Tensor:
        """Shadow (B, T, 1) in [0, 1] from the shadow levels' features (B, T, C) each and the pose's joints (B, 21, 3)."""
        B, T = shadow_features[0].shape[:2]
        pose = joints_unrotated.reshape(B, 1, -1).expand(B, T, -1)
        levels = [net(torch.cat([f, pose], -1)) for net, f in zip(self.shadow_net_list, shadow_features)]
        return self.shadow_dict_fusion(torch.cat(levels, dim=-1))

    def albedo(self, colour_features: list[torch.Tensor], identity: torch.Tensor, calibrate: bool = False) -> torch.Tensor:
        """Albedo (B, T, 3) in [0, 1] from the colour levels' features (B, T, C) each and identity codes (B, 33)."""
        B, T = colour_features[0].shape[:2]
        id_feat = identity[:, None].expand(B, T, -1)
        levels = [net(torch.cat([f, id_feat], -1)) for net, f in zip(self.id_net_list, colour_features)]
        albedo = self.dict_fusion(torch.cat(levels + [id_feat], dim=-1))
        if calibrate:
            albedo = (albedo * self.color_scale + self.color_shift).clamp(0, 1)
        return albedo
