"""The ACR network: HRNet-W32 features + coordinates -> part segmentation and per-side parameter/centre/prior maps,
with the part-attention estimate fused into every parameter map (ACR's "offset_mode concat")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hands.acr.backbone import HRNet
from hands.acr.heads import CAMERA, PARAMS, PartRegressor, SegmentationHead, SideHeads, coordinate_maps
from hands.mano.model_file import SIDES

MAP_CHANNELS = CAMERA + PARAMS  # 109: camera (s, tx, ty), 6D global orient, 15 x 6D hand pose, 10 betas


@dataclass
class ACRMaps:
    """Network outputs for a batch. part_logits (B,33,H/2,W/2); per side: params (B,109,H/8,W/8), centre
    (B,1,H/8,W/8) raw scores, prior (B,106,H/8,W/8) cross-hand prior."""

    part_logits: Tensor
    params: dict[str, Tensor]
    centre: dict[str, Tensor]
    prior: dict[str, Tensor]


@dataclass
class ACRNetConfig:
    """Layer widths; the defaults are ACR's (HRNet-W32). Smaller values make tiny models for tests."""

    backbone_width: int = 32
    head_width: int = 64
    pose_width: int = 256
    shape_width: int = 64


class ACRNet(nn.Module):
    """ACR's architecture. Input: RGB images (B,3,H,W) in [0,1], H and W multiples of 32 (512 in ACR)."""

    def __init__(self, config: ACRNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or ACRNetConfig()
        c = self.config
        self.backbone = HRNet(c.backbone_width)
        self.segmentation = SegmentationHead(c.backbone_width)
        channels = c.backbone_width + 2
        self.right_head = SideHeads(channels, c.head_width)
        self.left_head = SideHeads(channels, c.head_width)
        self.parts = PartRegressor(channels, c.pose_width, c.shape_width)
        self.fuse_right = nn.Conv2d(2 * MAP_CHANNELS, MAP_CHANNELS, 1)
        self.fuse_left = nn.Conv2d(2 * MAP_CHANNELS, MAP_CHANNELS, 1)

    def forward(self, images: Tensor) -> ACRMaps:
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] % 32 or images.shape[3] % 32:
            raise ValueError(f"ACRNet: images should be (B, 3, H, W) with H, W multiples of 32, got {tuple(images.shape)}")
        features = self.backbone(images * 2.0 - 1.0)  # ACR scales pixels to [-1, 1] without mean/std
        part_logits = self.segmentation(features)
        B, _, h, w = features.shape
        coords = coordinate_maps(h, w).to(features)
        features = torch.cat([features, coords.expand(B, -1, -1, -1)], dim=1)
        heads = {"right": self.right_head(features), "left": self.left_head(features)}
        part_estimates = self.parts(features, part_logits)
        params = {}
        for side, fuse in (("right", self.fuse_right), ("left", self.fuse_left)):
            global_map = heads[side]["params"]
            broadcast = part_estimates[side][:, :, None, None].expand(-1, -1, *global_map.shape[2:])
            part_map = torch.cat([global_map[:, :CAMERA], broadcast], dim=1)
            params[side] = fuse(torch.cat([global_map, part_map], dim=1))
        return ACRMaps(part_logits, params, {s: heads[s]["centre"] for s in SIDES}, {s: heads[s]["prior"] for s in SIDES})
