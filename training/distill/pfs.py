"""PFS — pixel-wise feature similarities + knowledge-gap-weighted pixel imitation.

Baseline named in the LIX paper's comparison; formulated here as:
  F = adaptive-avg-pooled decoder embedding (at most `pool` = (h, w) positions), f_i = F_i / |F_i|
  S = f^T f  (P x P cosine similarity of every location to all others), for student and teacher
  L_sim = mean (S_s - S_t)^2                      (channel counts may differ: S is P x P for both)
  g_i   = sg( 1/2 || p_t,i - p_s,i ||_1 )         knowledge gap (total variation, T = 1) per valid pixel
  L_pix = T^2 / |V| sum_i (g_i / mean_V g) KL(p_t,i^T || p_s,i^T)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lix_training.distill.base import Distiller, logit_rows, register
from lix_training.distill.kd import kd_per_pixel


def similarity_map(embedding: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
    pooled = F.adaptive_avg_pool2d(embedding, pool) if embedding.shape[-2:] != pool else embedding
    unit = F.normalize(pooled.flatten(2), dim=1)  # N x C x P
    return unit.transpose(1, 2) @ unit


@register
class PFS(Distiller):
    name = "pfs"

    def __init__(self, student, teacher, weight: float = 1.0, pool: tuple[int, int] = (16, 32),
                 similarity_weight: float = 1.0, pixel_weight: float = 1.0, temperature: float = 2.0):
        super().__init__(student, teacher, weight)
        self.pool = tuple(pool)
        self.w_sim, self.w_pix, self.temperature = float(similarity_weight), float(pixel_weight), float(temperature)

    def losses(self, student, teacher, label, step, total_steps):
        pool = (min(self.pool[0], student["embedding"].shape[-2]), min(self.pool[1], student["embedding"].shape[-1]))
        sim = (similarity_map(student["embedding"], pool) - similarity_map(teacher["embedding"].detach(), pool))
        terms = {"similarity": self.w_sim * sim.pow(2).mean()}
        s_rows, t_rows, _ = logit_rows(student, teacher, label)
        if len(s_rows):
            with torch.no_grad():
                gap = 0.5 * (F.softmax(t_rows, 1) - F.softmax(s_rows, 1)).abs().sum(1)
                weights = gap / gap.mean().clamp(min=1e-8)
            terms["pixel"] = self.w_pix * (weights * kd_per_pixel(s_rows, t_rows, self.temperature)).mean()
        return terms
