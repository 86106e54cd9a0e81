"""LIX logit side — decoupled KD with a logit-wise dynamic weight controller (DWC).

LIX: "Implicitly Infusing Spatial Geometric Prior Knowledge into Visual Semantic Segmentation for
Autonomous Driving". Only the abstract was available; the controller below is this project's formula
(derivation and reasons in docs/distillation.md).

From  KL(p_t || p_s) = TCKD + (1 - p_t,g) NCKD,  KD ties the weight of the non-target knowledge to the
teacher's *un*certainty, and DKD replaces it by one constant beta for every pixel. Per valid pixel i
(g = its label, T the temperature, sg = stop-gradient):

    c_i     = sg( softmax(z_t,i)_g )                 teacher's reliability on the ground truth (T = 1)
    d_i     = sg( | b_t,i - b_s,i | )                 target-confidence gap at T (b = p_g at T)
    beta_i  = beta  * c_i^gamma / mean_V(c^gamma)     NCKD weight
    alpha_i = alpha * (1 + d_i) / mean_V(1 + d)       TCKD weight
    L = 1/|V| sum_i  alpha_i TCKD_i + beta_i NCKD_i    (TCKD, NCKD as in DKD, times T^2)

The weights average to DKD's alpha and beta over the batch, so DWC vs fixed beta (= DKD) compares only
how a fixed budget is spread over confident, ambiguous and wrong-teacher pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.distill.base import register
from training.distill.dkd import DKD


def dwc_weights(student_rows: torch.Tensor, teacher_rows: torch.Tensor, target: torch.Tensor, temperature: float,
                alpha: float, beta: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        reliability = F.softmax(teacher_rows, dim=1).gather(1, target[:, None])[:, 0]
        b_t = F.softmax(teacher_rows / temperature, dim=1).gather(1, target[:, None])[:, 0]
        b_s = F.softmax(student_rows / temperature, dim=1).gather(1, target[:, None])[:, 0]
        c = reliability.clamp(min=1e-6).pow(gamma)
        beta_i = beta * c / c.mean()
        a = 1 + (b_t - b_s).abs()
        alpha_i = alpha * a / a.mean()
    return alpha_i, beta_i


@register
class LIXLogit(DKD):
    """DKD with per-pixel weights from the dynamic weight controller (dynamic=False is exactly DKD)."""

    name = "lix_logit"

    def __init__(self, student, teacher, weight: float = 1.0, alpha: float = 1.0, beta: float = 8.0,
                 temperature: float = 4.0, gamma: float = 1.0, dynamic: bool = True, warmup_steps: int = 0):
        super().__init__(student, teacher, weight, alpha, beta, temperature, warmup_steps)
        self.gamma = float(gamma)
        self.dynamic = bool(dynamic)  # the DWC-vs-fixed-beta ablation switch

    def pixel_weights(self, student_rows, teacher_rows, target):
        if not self.dynamic:
            return super().pixel_weights(student_rows, teacher_rows, target)
        return dwc_weights(student_rows, teacher_rows, target, self.temperature, self.alpha, self.beta, self.gamma)
