"""Building blocks: conv-norm-act, residual blocks, a ResNet-like encoder and an FPN decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "group")


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        # Batch-independent: identical statistics for any batch split (DDP, batch 1 at inference).
        return nn.GroupNorm(group_count(channels), channels)
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


def group_count(channels: int) -> int:
    """Up to 8 groups of at least 4 channels, and a divisor of `channels` (a width multiplier such as 1.25
    gives 60 channels, which 8 groups cannot split)."""
    upper = max(1, min(8, channels // 4))
    return next(g for g in range(upper, 0, -1) if channels % g == 0)


class ConvNormAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, norm: str = "group", act: bool = True):
        conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        layers: list[nn.Module] = [conv, norm_layer(norm, cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 3, stride, norm)
        self.conv2 = ConvNormAct(cout, cout, 3, 1, norm, act=False)
        self.shortcut = (
            nn.Identity() if stride == 1 and cin == cout else ConvNormAct(cin, cout, 1, stride, norm, act=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class Encoder(nn.Module):
    """ResNet-like: a stride-4 stem, then four stages at strides 4, 8, 16, 32."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], depths: tuple[int, ...], norm: str):
        super().__init__()
        self.stem = nn.Sequential(
            ConvNormAct(in_channels, widths[0] // 2, 3, 2, norm),
            ConvNormAct(widths[0] // 2, widths[0], 3, 2, norm),
        )
        stages = []
        cin = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths)):
            blocks = [BasicBlock(cin, width, 1 if i == 0 else 2, norm)]
            blocks += [BasicBlock(width, width, 1, norm) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.widths = tuple(widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class FPNDecoder(nn.Module):
    """Top-down FPN; all levels upsampled to stride 4 and summed into one embedding."""

    def __init__(self, in_widths: tuple[int, ...], channels: int, norm: str):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(w, channels, 1) for w in in_widths)
        self.smooth = nn.ModuleList(ConvNormAct(channels, channels, 3, 1, norm) for _ in in_widths)
        self.fuse = ConvNormAct(channels, channels, 3, 1, norm)
        self.channels = channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        laterals = [lat(f) for lat, f in zip(self.lateral, features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="bilinear", align_corners=False
            )
        size = laterals[0].shape[-2:]
        out = 0
        for smooth, lat in zip(self.smooth, laterals):
            level = smooth(lat)
            out = out + (level if level.shape[-2:] == size else F.interpolate(level, size=size, mode="bilinear",
                                                                             align_corners=False))
        return self.fuse(out)
