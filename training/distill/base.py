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


def resize_label(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an N x H x W label map (ignore ids stay ignore ids)."""
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    return F.interpolate(label[:, None].float(), size=size, mode="nearest")[:, 0].long()


def logit_maps(student: dict, teacher: dict, label: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student and teacher logits where logit distillation is computed, and the labels at that size.

    The models' stride-4 logits (`logits_coarse`) when both have them at the same size: the full-size
    logits are their bilinear upsampling, so matching them adds no information and costs 16x more.
    """
    s, t = student.get("logits_coarse"), teacher.get("logits_coarse")
    if s is None or t is None or s.shape[-2:] != t.shape[-2:]:
        return student["logits"], teacher["logits"], label
    return s, t, resize_label(label, tuple(s.shape[-2:]))


def logit_rows(student: dict, teacher: dict, label: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student and teacher logits of the same non-ignored pixels as rows (P x K each), and their labels (P).

    Taken where `logit_maps` says logit distillation is computed.
    """
    s_map, t_map, at_size = logit_maps(student, teacher, label)
    s_rows, target = valid_rows(s_map, at_size)
    t_rows, _ = valid_rows(t_map, at_size)
    return s_rows, t_rows, target


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


MIN_SAMPLED_PIXELS = 4  # fewer valid positions than this: the image is left out (no kernel/CKA estimate)


def sample_pixels(features: list[torch.Tensor], count: int, generator: torch.Generator | None = None,
                  mask: torch.Tensor | None = None) -> list[torch.Tensor] | None:
    """Sample the same pixel positions from equally sized N x C x H x W maps, only where `mask` > 0.

    Returns per map a tensor N' x P x C with P = min(count, fewest valid positions of a kept image):
    every image contributes the same number of positions, all of them valid (an ignored pixel is never
    sampled, also when the map has fewer positions than `count`). Images with fewer than
    MIN_SAMPLED_PIXELS valid positions are left out; None when none is left. Memory O(P^2) per image.
    Positions are drawn on the CPU generator and moved to the maps' device.
    """
    n, _, h, w = features[0].shape
    device = features[0].device
    if mask is None:
        valid = torch.ones(n, h * w, dtype=torch.bool)
    else:
        valid = (mask.reshape(n, -1) > 0).cpu()
    per_image = valid.sum(1)
    kept = (per_image >= MIN_SAMPLED_PIXELS).nonzero()[:, 0]
    if len(kept) == 0:
        return None
    take = min(int(count), int(per_image[kept].min()))
    # A uniform sample without replacement among the valid positions: the top `take` of random scores.
    scores = torch.rand(len(kept), h * w, generator=generator).masked_fill(~valid[kept], -1.0)
    index = scores.topk(take, dim=1).indices.to(device)  # N' x P
    kept = kept.to(device)
    out = []
    for f in features:
        flat = f[kept].flatten(2)  # N' x C x HW
        out.append(torch.gather(flat, 2, index.unsqueeze(1).expand(-1, flat.shape[1], -1)).transpose(1, 2))
    return out
