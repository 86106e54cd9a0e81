"""Privileged multi-task baseline: an RGB student with an auxiliary depth head, no teacher.

The obvious competitor to distillation for "infusing geometry": during training the student's decoder
embedding (stride 4) also regresses the ground-truth inverse depth (1/m, 0 for sky) through a small head
that is dropped at inference, so the deployed network is the plain RGB student.

    L = CE + w * mean_pixels | upsample(head(embedding)) - inverse_depth |

(Multi-task depth + semantics from RGB: e.g. Kendall, Gal, Cipolla, CVPR 2018; here with a fixed weight,
tuned on validation like every distillation weight.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AuxDepthHead(nn.Module):
    def __init__(self, embedding_channels: int, weight: float = 1.0):
        super().__init__()
        if weight < 0:
            raise ValueError(f"aux_depth.weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.head = nn.Sequential(nn.Conv2d(embedding_channels, embedding_channels, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(embedding_channels, 1, 1))

    def forward(self, embedding: torch.Tensor, inverse_depth: torch.Tensor) -> dict[str, torch.Tensor]:
        """inverse_depth: N x 1 x H x W target (the `depth` modality encoding)."""
        prediction = F.interpolate(self.head(embedding), size=inverse_depth.shape[-2:], mode="bilinear",
                                   align_corners=False)
        return {"aux_depth.l1": self.weight * (prediction - inverse_depth).abs().mean()}
