"""LIX logit side — decoupled KD with a logit-wise dynamic weight controller (DWC).

LIX: "Implicitly Infusing Spatial Geometric Prior Knowledge into Visual Semantic Segmentation for
Autonomous Driving". Only the abstract was available; the controller below is this project's formula
(derivation and reasons in docs/distillation.md).

From  KL(p_t || p_s) = TCKD + (1 - p_t,g) NCKD,  KD ties the weight of the non-target knowledge to the
teacher's *un*certainty, and DKD replaces it by one constant beta for every pixel. Per valid pixel i
(g = its label, T the temperature, sg = stop-gradient):

    c_i     = sg( softmax(z_t,i)_g )                 teacher's reliability on the ground truth (T = 1)
    r_i     = [ argmax z_t,i = g ]                    the teacher is right on the label
    d_i     = sg( max(0, b_t,i - b_s,i) )             how far the student's target confidence lags the
                                                      teacher's, at T (b = p_g at T)
    beta_i  = beta  * c_i^gamma / mean_V(c^gamma)     NCKD weight
    alpha_i = alpha * r_i (1 + d_i) / mean_V(r (1 + d))   TCKD weight
    L = 1/|V| sum_i  alpha_i TCKD_i + beta_i NCKD_i    (TCKD, NCKD as in DKD, times T^2)

TCKD pulls the student's target probability toward the teacher's. Where the teacher is wrong that pull
is toward the wrong answer, so those pixels get no TCKD weight (their NCKD weight is ~c_i, small too);
where the teacher is right, the weight grows with how far the student lags it. A symmetric |b_t - b_s|
would give the largest TCKD weight to a wrong teacher over a right student.

The weights average to DKD's alpha and beta over the batch, so DWC vs fixed beta (= DKD) compares only
how a fixed budget is spread over confident, ambiguous and wrong-teacher pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lix_training.distill.base import register
from lix_training.distill.dkd import DKD


def dwc_weights(student_rows: torch.Tensor, teacher_rows: torch.Tensor, target: torch.Tensor, temperature: float,
                alpha: float, beta: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        reliability = F.softmax(teacher_rows, dim=1).gather(1, target[:, None])[:, 0]
        b_t = F.softmax(teacher_rows / temperature, dim=1).gather(1, target[:, None])[:, 0]
        b_s = F.softmax(student_rows / temperature, dim=1).gather(1, target[:, None])[:, 0]
        c = reliability.clamp(min=1e-6).pow(gamma)
        beta_i = beta * c / c.mean()
        teacher_right = (teacher_rows.argmax(1) == target).to(b_t.dtype)
        a = teacher_right * (1 + (b_t - b_s).clamp(min=0))
        # A batch where the teacher is wrong everywhere transfers no target-class knowledge.
        alpha_i = alpha * a / a.mean() if bool(a.any()) else torch.zeros_like(a)
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
