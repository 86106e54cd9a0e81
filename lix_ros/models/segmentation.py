"""Student (RGB) and duplex-encoder teachers (RGB + X) with intermediate or late fusion.

Every model returns a dict:
  logits    N x classes x H x W at the input resolution
  logits_coarse  the same before upsampling (stride 4): where logit distillation is computed (16x cheaper,
            and the upsampled map adds no information: it is a bilinear function of this one)
  features  list of per-stage features (strides 4, 8, 16, 32) for feature distillation
  embedding the decoder output at stride 4 (the "last-stage" map used by PFS and MKAT)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lix_ros.models.layers import ConvNormAct, Encoder, FPNDecoder


class SegmentationHead(nn.Module):
    def __init__(self, channels: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, embedding: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        coarse = self.classifier(self.dropout(embedding))
        return {"logits": F.interpolate(coarse, size=size, mode="bilinear", align_corners=False),
                "logits_coarse": coarse}


class StudentNet(nn.Module):
    """Single RGB encoder + FPN decoder."""

    def __init__(self, widths, depths, decoder_channels: int, num_classes: int, norm: str = "group",
                 dropout: float = 0.1):
        super().__init__()
        self.encoder = Encoder(3, widths, depths, norm)
        self.decoder = FPNDecoder(self.encoder.widths, decoder_channels, norm)
        self.head = SegmentationHead(decoder_channels, num_classes, dropout)
        self.feature_channels = tuple(widths)
        self.embedding_channels = decoder_channels

    def forward(self, rgb: torch.Tensor, x: torch.Tensor | None = None) -> dict:
        features = self.encoder(rgb)
        embedding = self.decoder(features)
        return {**self.head(embedding, rgb.shape[-2:]), "features": features, "embedding": embedding}


class GatedFusion(nn.Module):
    """Adds the X stream into the RGB stream through a learned per-pixel, per-channel gate."""

    def __init__(self, rgb_channels: int, x_channels: int, norm: str):
        super().__init__()
        self.project = ConvNormAct(x_channels, rgb_channels, 1, 1, norm, act=False)
        self.gate = nn.Sequential(nn.Conv2d(rgb_channels * 2, rgb_channels, 1), nn.Sigmoid())

    def forward(self, rgb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        projected = self.project(x)
        return rgb + self.gate(torch.cat([rgb, projected], 1)) * projected


class IntermediateFusionTeacher(nn.Module):
    """Duplex encoder; X features are fused into the RGB stream after every stage (the fused map feeds the
    next RGB stage), and the decoder sees the fused features."""

    def __init__(self, widths, depths, decoder_channels: int, num_classes: int, x_channels: int,
                 norm: str = "group", dropout: float = 0.1):
        super().__init__()
        self.rgb_encoder = Encoder(3, widths, depths, norm)
        self.x_encoder = Encoder(x_channels, widths, depths, norm)
        self.fusions = nn.ModuleList(GatedFusion(w, w, norm) for w in widths)
        self.decoder = FPNDecoder(tuple(widths), decoder_channels, norm)
        self.head = SegmentationHead(decoder_channels, num_classes, dropout)
        self.feature_channels = tuple(widths)
        self.embedding_channels = decoder_channels

    def forward(self, rgb: torch.Tensor, x: torch.Tensor) -> dict:
        r = self.rgb_encoder.stem(rgb)
        g = self.x_encoder.stem(x)
        fused = []
        for rgb_stage, x_stage, fusion in zip(self.rgb_encoder.stages, self.x_encoder.stages, self.fusions):
            g = x_stage(g)
            r = fusion(rgb_stage(r), g)
            fused.append(r)
        embedding = self.decoder(fused)
        return {**self.head(embedding, rgb.shape[-2:]), "features": fused, "embedding": embedding}


class LateFusionTeacher(nn.Module):
    """Two independent encoder-decoder streams fused at the decoder output, before the classifier."""

    def __init__(self, widths, depths, decoder_channels: int, num_classes: int, x_channels: int,
                 norm: str = "group", dropout: float = 0.1):
        super().__init__()
        self.rgb_encoder = Encoder(3, widths, depths, norm)
        self.x_encoder = Encoder(x_channels, widths, depths, norm)
        self.rgb_decoder = FPNDecoder(tuple(widths), decoder_channels, norm)
        self.x_decoder = FPNDecoder(tuple(widths), decoder_channels, norm)
        self.fuse = ConvNormAct(2 * decoder_channels, decoder_channels, 3, 1, norm)
        self.head = SegmentationHead(decoder_channels, num_classes, dropout)
        self.feature_channels = tuple(widths)
        self.embedding_channels = decoder_channels

    def forward(self, rgb: torch.Tensor, x: torch.Tensor) -> dict:
        rgb_features = self.rgb_encoder(rgb)
        x_features = self.x_encoder(x)
        embedding = self.fuse(torch.cat([self.rgb_decoder(rgb_features), self.x_decoder(x_features)], 1))
        # Stage features for distillation: the two streams summed (same shapes as the student's).
        features = [a + b for a, b in zip(rgb_features, x_features)]
        return {**self.head(embedding, rgb.shape[-2:]), "features": features, "embedding": embedding}
