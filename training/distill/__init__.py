"""Distillation methods, one per module, selected and weighted by the training YAML
(the default student's config/training/student_channel_dkd.yaml below; LIX channel-wise with its dynamic weight
controller in student_lix_channel.yaml; pixel-wise LIX in student_lix.yaml adds `lix_feature`, LIX's feature
side, beside its `lix_logit`):

    distill:
      teacher: lix_ros/checkpoints/teacher_depth_small.pt
      methods:
        - {name: lix_channel, temperature: 4.0, weight: 3.0, dynamic: false}
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from lix_training.distill import (  # noqa: F401 - registration
    at,
    cwd,
    dkd,
    kd,
    lix_channel,
    lix_feature,
    lix_logit,
    mkat,
    pfs,
)
from lix_training.distill.base import REGISTRY, Distiller, NetInfo


class DistillerSet(nn.Module):
    """Several methods at once; returns the union of their named terms."""

    def __init__(self, methods: list[Distiller]):
        super().__init__()
        self.methods = nn.ModuleList(methods)

    def forward(self, student: dict, teacher: dict, label: torch.Tensor, step: int = 0, total_steps: int = 1
                ) -> dict[str, torch.Tensor]:
        # The teacher is frozen: nothing a method computes may send gradients into it.
        teacher = {k: ([t.detach() for t in v] if isinstance(v, list) else v.detach()) for k, v in teacher.items()}
        terms: dict[str, torch.Tensor] = {}
        for method in self.methods:
            terms.update(method(student, teacher, label, step, total_steps))
        return terms


def build_distiller(config: dict, student: nn.Module, teacher: nn.Module) -> DistillerSet:
    methods = config.get("methods") or []
    if not isinstance(methods, list):
        raise ValueError("distill.methods must be a list of {name: ..., weight: ..., <params>}")
    built = []
    s_info, t_info = NetInfo.of(student), NetInfo.of(teacher)
    if s_info.num_classes != t_info.num_classes:
        raise ValueError(f"student has {s_info.num_classes} classes, teacher {t_info.num_classes}")
    for entry in methods:
        entry = dict(entry)
        name = entry.pop("name", None)
        if name not in REGISTRY:
            raise ValueError(f"unknown distillation method {name!r}; expected one of {sorted(REGISTRY)}")
        accepted = [p for p in inspect.signature(REGISTRY[name].__init__).parameters
                    if p not in ("self", "student", "teacher")]
        unknown = sorted(set(entry) - set(accepted))
        if unknown:
            raise ValueError(f"distillation method {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                             f"it accepts: {', '.join(accepted)}")
        built.append(REGISTRY[name](s_info, t_info, **entry))
    return DistillerSet(built)


__all__ = ["REGISTRY", "Distiller", "DistillerSet", "NetInfo", "build_distiller"]
