"""DKD — decoupled knowledge distillation, per pixel.

Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022.

For a pixel with target class g, teacher/student probabilities p = softmax(z / T):
    b   = [p_g, 1 - p_g]                          (binary: target vs all non-target)
    p^  = softmax over the non-target classes      (p_j / (1 - p_g), j != g)
    TCKD = KL(b_t || b_s),   NCKD = KL(p^_t || p^_s)
and the identity  KL(p_t || p_s) = TCKD + (1 - p_t,g) * NCKD  (KD couples NCKD to the teacher's
confidence). DKD decouples them:
    L_DKD = T^2 / |V| * sum_{i in V} ( alpha * TCKD_i + beta * NCKD_i )
with a linear warm-up of the whole term over `warmup_steps` (mdistiller warms up over 20 epochs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.distill.base import Distiller, register, valid_rows

_MASK = 1000.0  # logit offset that removes the target class from the non-target softmax (as mdistiller)


def decoupled_terms(student_rows: torch.Tensor, teacher_rows: torch.Tensor, target: torch.Tensor,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row TCKD, NCKD (both times T^2), and the teacher's and student's target probabilities at T."""
    t = temperature
    gt = F.one_hot(target, student_rows.shape[1]).to(student_rows.dtype)
    p_s = F.softmax(student_rows / t, dim=1)
    p_t = F.softmax(teacher_rows / t, dim=1)
    target_s = (p_s * gt).sum(1).clamp(1e-8, 1 - 1e-8)
    target_t = (p_t * gt).sum(1).clamp(1e-8, 1 - 1e-8)
    b_s = torch.stack([target_s, 1 - target_s], 1)
    b_t = torch.stack([target_t, 1 - target_t], 1)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(1)
    log_hat_s = F.log_softmax(student_rows / t - _MASK * gt, dim=1)
    log_hat_t = F.log_softmax(teacher_rows / t - _MASK * gt, dim=1)
    nckd = (log_hat_t.exp() * (log_hat_t - log_hat_s)).sum(1)
    return tckd * t**2, nckd * t**2, target_t, target_s


@register
class DKD(Distiller):
    name = "dkd"

    def __init__(self, student, teacher, weight: float = 1.0, alpha: float = 1.0, beta: float = 8.0,
                 temperature: float = 4.0, warmup_steps: int = 0):
        super().__init__(student, teacher, weight)
        self.alpha, self.beta, self.temperature = float(alpha), float(beta), float(temperature)
        self.warmup_steps = int(warmup_steps)

    def losses(self, student, teacher, label, step, total_steps):
        s_rows, target = valid_rows(student["logits"], label)
        t_rows, _ = valid_rows(teacher["logits"], label)
        if len(s_rows) == 0:
            return {"dkd": student["logits"].sum() * 0}
        tckd, nckd, _, _ = decoupled_terms(s_rows, t_rows, target, self.temperature)
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return {"tckd": warm * self.alpha * tckd.mean(), "nckd": warm * self.beta * nckd.mean()}
