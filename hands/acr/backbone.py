"""HRNet (W32 is ACR's backbone, as in ROMP): four stages of parallel branches at 1/4 ... 1/32 resolution,
returning the 1/4-resolution branch (B, width, H/4, W/4).

Parameter names follow the standard HRNet layout (conv1, layer1, transition1, stage2.0.branches...,
fuse_layers...) so that ACR's official weights map onto it by prefix alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

BN_MOMENTUM = 0.1


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU), padding keeping the size at stride 1."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 convolutions (channels x4 out) with a residual connection."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(channels, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


def residual_stack(block, in_channels: int, channels: int, count: int) -> nn.Sequential:
    """`count` blocks; the first one adapts the channels with a 1x1 projection when needed."""
    downsample = None
    if in_channels != channels * block.expansion:
        downsample = nn.Sequential(nn.Conv2d(in_channels, channels * block.expansion, 1, bias=False),
                                   nn.BatchNorm2d(channels * block.expansion, momentum=BN_MOMENTUM))
    layers = [block(in_channels, channels, 1, downsample)]
    layers += [block(channels * block.expansion, channels) for _ in range(count - 1)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every output resolution sums all branches (resampled)."""

    def __init__(self, channels: list[int], blocks: int = 4, all_outputs: bool = True) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList([residual_stack(BasicBlock, c, c, blocks) for c in channels])
        fuse = []
        for i in range(n if all_outputs else 1):
            row = []
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv to the channels of i, then nearest upsampling
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False), nn.BatchNorm2d(channels[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:  # higher resolution: strided 3x3 convs, the last one changing the channels
                    steps = [conv_bn(channels[j], channels[j], 3, 2) for _ in range(i - j - 1)]
                    steps.append(conv_bn(channels[j], channels[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse)
        self.relu = nn.ReLU(True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        outputs = []
        for i, row in enumerate(self.fuse_layers):
            total = xs[i]
            for j, layer in enumerate(row):
                if j != i:
                    total = total + layer(xs[j])
            outputs.append(self.relu(total))
        return outputs


def transition(previous: list[int], current: list[int]) -> nn.ModuleList:
    """Adapters from one stage's branches to the next's: a 3x3 conv when channels change, a new strided branch
    from the lowest-resolution one, or nothing."""
    layers = []
    for i, c in enumerate(current):
        if i < len(previous):
            layers.append(conv_bn(previous[i], c, 3) if previous[i] != c else None)
        else:
            layers.append(nn.Sequential(conv_bn(previous[-1], c, 3, 2)))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNet on images (B,3,H,W) already normalised -> features (B,width,H/4,W/4); width 32 is HRNet-W32."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.out_channels = width
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = residual_stack(Bottleneck, 64, 64, 4)
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.transition1 = transition([256], widths[:2])
        self.stage2 = nn.Sequential(HighResolutionModule(widths[:2]))
        self.transition2 = transition(widths[:2], widths[:3])
        self.stage3 = nn.Sequential(*[HighResolutionModule(widths[:3]) for _ in range(4)])
        self.transition3 = transition(widths[:3], widths)
        self.stage4 = nn.Sequential(HighResolutionModule(widths), HighResolutionModule(widths),
                                    HighResolutionModule(widths, all_outputs=False))

    @staticmethod
    def _enter(adapters: nn.ModuleList, outputs: list[Tensor]) -> list[Tensor]:
        return [outputs[i] if layer is None else layer(outputs[min(i, len(outputs) - 1)]) for i, layer in enumerate(adapters)]

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]
        xs = self.stage2(self._enter(self.transition1, xs))
        xs = self.stage3(self._enter(self.transition2, xs))
        xs = self.stage4(self._enter(self.transition3, xs))
        return xs[0]


def normalise_image(image_uint8_range: torch.Tensor) -> torch.Tensor:
    """ACR's input scaling: pixel values 0..255 -> [-1, 1] (no mean/std)."""
    return image_uint8_range / 255.0 * 2.0 - 1.0
