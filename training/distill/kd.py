"""KD — pixel-wise Hinton distillation.

Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015.

    L_KD = T^2 / |V| * sum_{i in V} KL( softmax(z_t,i / T) || softmax(z_s,i / T) )

over the set V of non-ignored pixels; the T^2 factor keeps gradient magnitudes independent of T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lix_training.distill.base import Distiller, logit_rows, register


def kd_per_pixel(student_rows: torch.Tensor, teacher_rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p_t || p_s) at temperature T for each row, times T^2."""
    log_s = F.log_softmax(student_rows / temperature, dim=1)
    log_t = F.log_softmax(teacher_rows / temperature, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(1) * temperature**2


@register
class KD(Distiller):
    name = "kd"

    def __init__(self, student, teacher, weight: float = 1.0, temperature: float = 2.0):
        super().__init__(student, teacher, weight)
        self.temperature = float(temperature)

    def losses(self, student, teacher, label, step, total_steps):
        s_rows, t_rows, _ = logit_rows(student, teacher, label)
        if len(s_rows) == 0:
            return {"kd": student["logits"].sum() * 0}
        return {"kd": kd_per_pixel(s_rows, t_rows, self.temperature).mean()}
