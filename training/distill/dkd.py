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

from lix_training.distill.base import Distiller, logit_rows, register

_MASK = 1000.0  # logit offset that removes the target class from the non-target softmax (as mdistiller)


def _binary_log_probs(scaled: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """[log p_g, log(1 - p_g)] per row of temperature-scaled logits, without forming 1 - p_g."""
    log_all = torch.logsumexp(scaled, dim=1)
    log_target = (scaled * gt).sum(1) - log_all
    log_rest = torch.logsumexp(scaled - _MASK * gt, dim=1) - log_all
    return torch.stack([log_target, log_rest], 1)


def decoupled_terms(student_rows: torch.Tensor, teacher_rows: torch.Tensor, target: torch.Tensor,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row TCKD, NCKD (both times T^2), and the teacher's and student's target probabilities at T."""
    t = temperature
    gt = F.one_hot(target, student_rows.shape[1]).to(student_rows.dtype)
    # Binary distributions in log space: log p_g and log(1 - p_g) = logsumexp_{j != g} - logsumexp_all.
    # (1 - p_g with p_g rounded to 1.0 in float32 would give log 0 = -inf and a NaN TCKD.)
    scaled_s, scaled_t = student_rows / t, teacher_rows / t
    log_b_s = _binary_log_probs(scaled_s, gt)
    log_b_t = _binary_log_probs(scaled_t, gt)
    tckd = (log_b_t.exp() * (log_b_t - log_b_s)).sum(1)
    target_t, target_s = log_b_t[:, 0].exp(), log_b_s[:, 0].exp()
    log_hat_s = F.log_softmax(scaled_s - _MASK * gt, dim=1)
    log_hat_t = F.log_softmax(scaled_t - _MASK * gt, dim=1)
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
        s_rows, t_rows, target = logit_rows(student, teacher, label)
        if len(s_rows) == 0:
            return {"tckd": student["logits"].sum() * 0}
        tckd, nckd, _, _ = decoupled_terms(s_rows, t_rows, target, self.temperature)
        alpha, beta = self.pixel_weights(s_rows, t_rows, target)
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return {"tckd": warm * (alpha * tckd).mean(), "nckd": warm * (beta * nckd).mean()}

    def pixel_weights(self, student_rows: torch.Tensor, teacher_rows: torch.Tensor, target: torch.Tensor):
        """TCKD and NCKD weights: DKD's two constants (LIX's controller overrides this)."""
        return self.alpha, self.beta
