"""CWD — channel-wise distillation for dense prediction.

Shu, Liu, Gao, Yan, Shen, "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021.
Each class channel of the logits becomes a distribution over locations:
    phi(z_c) = softmax_{i in V}(z_c,i / T)
    L_CWD = T^2 / (N K) sum_{n, c} KL( phi(z_t,c) || phi(z_s,c) )
Ignored pixels are removed from every channel's support.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lix_ros.data.classes import IGNORE_ID
from lix_training.distill.base import Distiller, logit_maps, register


@register
class CWD(Distiller):
    name = "cwd"

    def __init__(self, student, teacher, weight: float = 1.0, temperature: float = 4.0):
        super().__init__(student, teacher, weight)
        self.temperature = float(temperature)

    def losses(self, student, teacher, label, step, total_steps):
        t = self.temperature
        s_map, t_map, label = logit_maps(student, teacher, label)
        s, te = s_map.flatten(2) / t, t_map.detach().flatten(2) / t  # N x K x HW
        invalid = (label == IGNORE_ID).flatten(1).unsqueeze(1)  # N x 1 x HW
        s = s.masked_fill(invalid, float("-inf"))
        te = te.masked_fill(invalid, float("-inf"))
        has_valid = ~invalid.all(dim=2).squeeze(1)
        if not has_valid.any():
            return {"cwd": student["logits"].sum() * 0}
        log_s = F.log_softmax(s[has_valid], dim=2)
        log_t = F.log_softmax(te[has_valid], dim=2)
        p_t = log_t.exp()
        kl = torch.where(p_t > 0, p_t * (log_t - log_s), torch.zeros_like(p_t)).sum(2)
        return {"cwd": kl.mean() * t**2}
