"""The distiller interface, the registry, and helpers shared by the methods.

A distiller receives the student's and the frozen teacher's outputs (logits N x K x H x W, per-stage
`features`, decoder `embedding`), the labels (255 = ignore) and the step, and returns named loss terms
(already weighted). Only the student and the distiller's own adapters receive gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lix_ros.data.classes import IGNORE_ID


@dataclass(frozen=True)
class NetInfo:
    """What a distiller needs to size its adapters."""

    feature_channels: tuple[int, ...]
    embedding_channels: int
    num_classes: int

    @classmethod
    def of(cls, model: nn.Module) -> NetInfo:
        classes = int(model.head.classifier.out_channels)
        return cls(tuple(model.feature_channels), int(model.embedding_channels), classes)


class Distiller(nn.Module):
    """Base class. Subclasses set `name` and implement `losses`."""

    name = "base"

    def __init__(self, student: NetInfo, teacher: NetInfo, weight: float = 1.0):
        super().__init__()
        self.student_info = student
        self.teacher_info = teacher
        self.weight = float(weight)

    def losses(self, student: dict, teacher: dict, label: torch.Tensor, step: int, total_steps: int
               ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, student: dict, teacher: dict, label: torch.Tensor, step: int = 0, total_steps: int = 1
                ) -> dict[str, torch.Tensor]:
        return {f"{self.name}.{k}": self.weight * v for k, v in self.losses(student, teacher, label, step,
                                                                            total_steps).items()}


REGISTRY: dict[str, type[Distiller]] = {}


def register(cls: type[Distiller]) -> type[Distiller]:
    REGISTRY[cls.name] = cls
    return cls


# ---------------------------------------------------------------------------------------------- helpers
def valid_rows(logits: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the non-ignored pixels as rows (P x K) and their labels (P)."""
    if label.shape[-2:] != logits.shape[-2:]:
        raise ValueError(f"labels {tuple(label.shape)} and logits {tuple(logits.shape)} differ in size")
    rows = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    flat = label.reshape(-1)
    keep = flat != IGNORE_ID
    return rows[keep], flat[keep]


def valid_mask(label: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """N x 1 x h x w float mask of non-ignored pixels, nearest-resized to `size`."""
    mask = (label != IGNORE_ID).float().unsqueeze(1)
    if size is not None and mask.shape[-2:] != size:
        mask = F.interpolate(mask, size=size, mode="nearest")
    return mask


def resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def adapter(cin: int, cout: int) -> nn.Module:
    """1x1 conv mapping student channels to the teacher's (a method's own trainable part).

    Identity-initialised when the widths agree, so a student equal to its teacher starts at zero loss.
    """
    conv = nn.Conv2d(cin, cout, 1)
    if cin == cout:
        with torch.no_grad():
            conv.weight.copy_(torch.eye(cin).view(cin, cin, 1, 1))
            conv.bias.zero_()
    return conv


def sample_pixels(features: list[torch.Tensor], count: int, generator: torch.Generator | None = None,
                  mask: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Sample the same `count` pixel positions per image from equally sized N x C x H x W maps.

    Returns per map a tensor N x count x C. Keeps memory of kernel matrices bounded (count^2 per image).
    Positions are drawn among `mask` > 0 when a mask (N x 1 x H x W) is given.
    """
    n, _, h, w = features[0].shape
    if h * w <= count:
        return [f.flatten(2).transpose(1, 2) for f in features]
    picks = []
    for i in range(n):
        if mask is not None and mask[i].sum() >= count:
            weights = mask[i].reshape(-1)
            picks.append(torch.multinomial(weights, count, replacement=False, generator=generator))
        else:
            picks.append(torch.randperm(h * w, generator=generator, device=features[0].device)[:count])
    index = torch.stack(picks).to(features[0].device)  # N x count
    out = []
    for f in features:
        flat = f.flatten(2)  # N x C x HW
        out.append(torch.gather(flat, 2, index.unsqueeze(1).expand(-1, flat.shape[1], -1)).transpose(1, 2))
    return out
