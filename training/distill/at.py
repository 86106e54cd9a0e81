"""AT — attention transfer.

Zagoruyko, Komodakis, "Paying More Attention to Attention", ICLR 2017.
    Q = vec( mean_c |F_c|^p ) / || vec( mean_c |F_c|^p ) ||_2         (p = 2)
    L_AT = sum_{k in stages} mean_n || Q_s,k - Q_t,k ||_2^2
Spatial attention is channel-count free, so no adapter is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lix_training.distill.base import Distiller, register, resize_like


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    return F.normalize(feature.abs().pow(p).mean(1).flatten(1), dim=1)


@register
class AT(Distiller):
    name = "at"

    def __init__(self, student, teacher, weight: float = 1.0, stages: tuple[int, ...] = (0, 1, 2, 3), p: float = 2.0):
        super().__init__(student, teacher, weight)
        self.stages, self.p = tuple(int(s) for s in stages), float(p)

    def losses(self, student, teacher, label, step, total_steps):
        total = 0
        for k in self.stages:
            s = student["features"][k]
            t = resize_like(teacher["features"][k].detach(), s)
            total = total + (attention_map(s, self.p) - attention_map(t, self.p)).pow(2).sum(1).mean()
        return {"at": total if isinstance(total, torch.Tensor) else student["logits"].sum() * 0}
