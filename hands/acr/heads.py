"""ACR's heads on top of the backbone: part segmentation, per-side map heads and part-attention regression.

Shapes for a 512 x 512 input (features 32 x 128 x 128, +2 coordinate channels = 34): part logits 33 x 256 x 256;
per side a parameter map (106 = 6D global orient + 15 x 6D + 10 betas), a centre map (1), a camera map (3) and a
cross-hand prior map (106), all 64 x 64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from hands.acr.backbone import BN_MOMENTUM, BasicBlock

NUM_PARTS = 16
NUM_PART_CLASSES = 1 + 2 * NUM_PARTS
POSE_6D = 16 * 6
PARAMS = POSE_6D + 10  # 6D rotations of 16 joints + 10 betas
CAMERA = 3


def coordinate_maps(height: int, width: int) -> Tensor:
    """(1,2,H,W) x and y coordinates, each spaced linearly from -1 to 1 across the map (CoordConv)."""
    xs, ys = torch.linspace(-1.0, 1.0, width), torch.linspace(-1.0, 1.0, height)
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])[None]


class SegmentationHead(nn.Module):
    """Features (B,32,h,w) -> part logits (B,33,2h,2w): bilinear x2, two conv blocks, then conv-BN-ReLU-conv."""

    def __init__(self, in_channels: int = 32, hidden: int = 16, width: int = 64) -> None:
        super().__init__()
        self.upsample_convs = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(
            nn.Conv2d(width, NUM_PART_CLASSES, 3, padding=1), nn.BatchNorm2d(NUM_PART_CLASSES), nn.ReLU(inplace=True),
            nn.Conv2d(NUM_PART_CLASSES, NUM_PART_CLASSES, 3, padding=1))

    def forward(self, features: Tensor) -> Tensor:
        up = nnf.interpolate(features, scale_factor=2, mode="bilinear", align_corners=True)
        return self.classifier(self.upsample_convs(up))


def map_head(in_channels: int, out_channels: int, width: int = 64, blocks: int = 2) -> nn.Sequential:
    """Strided 3x3 conv-BN-ReLU (halving the size), `blocks` BasicBlocks, then a 1x1 conv to `out_channels`."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1), nn.BatchNorm2d(width, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)),
        nn.Sequential(*[nn.Sequential(BasicBlock(width, width)) for _ in range(blocks)]),
        nn.Conv2d(width, out_channels, 1))


class SideHeads(nn.Module):
    """The four map heads of one hand side."""

    def __init__(self, in_channels: int, width: int = 64) -> None:
        super().__init__()
        self.params = map_head(in_channels, PARAMS, width)
        self.centre = map_head(in_channels, 1, width)
        self.camera = map_head(in_channels, CAMERA, width)
        self.prior = map_head(in_channels, PARAMS, width)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        camera = self.camera(features)
        camera = torch.cat([torch.pow(1.1, camera[:, :1]), camera[:, 1:]], dim=1)  # scale stays positive
        return {"params": torch.cat([camera, self.params(features)], dim=1), "centre": self.centre(features),
                "prior": self.prior(features)}


class LocallyConnected(nn.Module):
    """Per-part linear maps (PARE): features (B,C,P) -> (B,P,out), with a separate (out x C) weight per part.

    The weight keeps the official layout (1, out, C, P, 1, 1)."""

    def __init__(self, in_channels: int, out_channels: int, parts: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, parts, 1, 1) * 0.01)

    def forward(self, features: Tensor) -> Tensor:
        return torch.einsum("bcp,ocp->bpo", features, self.weight[0, :, :, :, 0, 0])


def attention_pool(features: Tensor, attention: Tensor) -> Tensor:
    """Softmax-weighted spatial averages: features (B,C,H,W), attention logits (B,P,H,W) -> (B,C,P)."""
    weights = torch.softmax(attention.flatten(2), dim=-1)  # (B,P,HW)
    return torch.einsum("bph,bch->bcp", weights, features.flatten(2))


class PartRegressor(nn.Module):
    """Part-attention branch: pool pose (256-d) and shape (64-d) features with each part's segmentation map and
    regress, per side, 16 x 6D rotations (part k -> MANO joint k) and 10 betas."""

    def __init__(self, in_channels: int, pose_width: int = 256, shape_width: int = 64) -> None:
        super().__init__()
        self.pose_features = nn.Sequential(nn.Conv2d(in_channels, pose_width, 3, 1, 1),
                                           nn.BatchNorm2d(pose_width, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
        self.shape_features = nn.Sequential(nn.Conv2d(pose_width, shape_width, 1))
        self.left_pose = LocallyConnected(pose_width, 6, NUM_PARTS)
        self.right_pose = LocallyConnected(pose_width, 6, NUM_PARTS)
        self.left_shape = nn.Linear(shape_width * NUM_PARTS, 10)
        self.right_shape = nn.Linear(shape_width * NUM_PARTS, 10)

    def forward(self, features: Tensor, part_logits: Tensor) -> dict[str, Tensor]:
        attention = nnf.interpolate(part_logits, scale_factor=0.5, mode="nearest")[:, 1:]  # drop background
        pose_features = self.pose_features(features)
        pose = attention_pool(pose_features, attention)  # (B,256,32): right parts 0-15, left 16-31
        shape = attention_pool(self.shape_features(pose_features), attention)  # (B,64,32)
        B = features.shape[0]
        out = {}
        for side, parts, pose_layer, shape_layer in (("right", slice(0, 16), self.right_pose, self.right_shape),
                                                     ("left", slice(16, 32), self.left_pose, self.left_shape)):
            rotations = pose_layer(pose[:, :, parts]).reshape(B, POSE_6D)
            betas = shape_layer(shape[:, :, parts].flatten(1))
            out[side] = torch.cat([rotations, betas], dim=1)
        return out
