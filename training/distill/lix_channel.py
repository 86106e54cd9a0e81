"""LIX channel-wise logit side — DWC's decoupling applied to CWD's per-class spatial distributions.

This project's extension of LIX (docs/distillation.md, "LIX channel-wise"). CWD (Shu et al., ICCV 2021)
turns each class channel c of an image into a distribution over its valid pixels V,
    p_c = softmax_{i in V}(z_c,i / T),
and matches KL(p_t,c || p_s,c). In the benchmark it beats the pixel-wise logit side of LIX. The same
decoupling that DKD (Zhao et al., CVPR 2022) applies to a pixel's class distribution applies to a class's
pixel distribution, with the pixels labelled c (G, the "target" region) in place of the target class and
the other valid pixels (R = V minus G) in place of the non-target classes:

    b      = sum_{i in G} p_c,i                         mass the channel puts on its own region
    TCKD   = KL([b_t, 1 - b_t] || [b_s, 1 - b_s])       how much of the class is where the labels put it
    ICKD   = KL(p_t|G || p_s|G)                         its shape inside the region (renormalised on G)
    NCKD   = KL(p_t|R || p_s|R)                         where else the teacher thinks the class might be:
                                                        the confusable regions (renormalised on R)
    KL(p_t || p_s) = TCKD + b_t ICKD + (1 - b_t) NCKD   (exact; so CWD ties NCKD to 1 - b_t)

A present class that the teacher localises well has b_t near 1, so CWD all but drops its NCKD — the dark
knowledge about which other regions look like that class. LIX-channel decouples it and lets the dynamic
weight controller spread a fixed budget over the (image, class) channels, per channel (n, c):

    q_nc    = teacher IoU of class c in image n on V (argmax vs labels; 1 when the class is neither
              labelled nor predicted)                     how far the teacher can be trusted on this channel
    d_nc    = sg( max(0, b_t - b_s) )                     how far the student's mass on the region lags
    alpha_nc = alpha * q (1 + d) / mean_present(q (1 + d))    TCKD weight (present classes only; a teacher
                                                          that misses the class entirely, q = 0, gets none)
    beta_nc  = beta * q^gamma / mean(q^gamma)             NCKD weight (a hallucinating teacher, q -> 0,
                                                          gets none)
    L = T^2 / |channels| sum_nc  alpha_nc TCKD + b_t ICKD + beta_nc NCKD

ICKD keeps its natural weight b_t. With dynamic=False the weights are the constants alpha and beta (the
channel-wise DKD ablation); the identity above (tested) means alpha = 1, beta = 1 - b_t would be CWD itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lix_ros.data.classes import IGNORE_ID
from lix_training.distill.base import Distiller, logit_maps, register

# Finite stand-in for log 0: an empty region's logsumexp must stay finite, or its backward is NaN.
_LOG_ZERO = -1e4


def _log_mass(log_p: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """log sum_{i in region} p_i for N x K x HW log-probabilities (about _LOG_ZERO for an empty region)."""
    return log_p.masked_fill(~region, _LOG_ZERO).logsumexp(2)


def _region_kl(log_t: torch.Tensor, log_s: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """KL of the two distributions renormalised on `region`, per channel (0 for an empty region)."""
    log_t = log_t.masked_fill(~region, _LOG_ZERO)
    log_s = log_s.masked_fill(~region, _LOG_ZERO)
    log_t = log_t - log_t.logsumexp(2, keepdim=True)
    log_s = log_s - log_s.logsumexp(2, keepdim=True)
    return (log_t.exp() * (log_t - log_s)).masked_fill(~region, 0.0).sum(2)


def channel_terms(student_map: torch.Tensor, teacher_map: torch.Tensor, label: torch.Tensor, temperature: float
                  ) -> dict[str, torch.Tensor]:
    """Per-channel (N x K) TCKD, ICKD, NCKD (each times T^2), b_t, b_s, and the target-region masks.

    Images without a valid pixel are dropped (the rows of all returned tensors are the kept images).
    """
    n, k = student_map.shape[:2]
    flat_label = label.reshape(n, -1)
    valid = flat_label != IGNORE_ID
    keep = valid.any(1)
    flat_label, valid = flat_label[keep], valid[keep]
    t = temperature
    region_v = valid[:, None, :].expand(-1, k, -1)
    target = F.one_hot(flat_label.masked_fill(~valid, 0), k).transpose(1, 2).bool() & region_v  # N x K x HW
    rest = region_v & ~target
    log_s = (student_map[keep].flatten(2) / t).masked_fill(~region_v, _LOG_ZERO).log_softmax(2)
    log_t = (teacher_map[keep].flatten(2) / t).masked_fill(~region_v, _LOG_ZERO).log_softmax(2)
    log_b_t, log_b_s = _log_mass(log_t, target), _log_mass(log_s, target)
    log_r_t, log_r_s = _log_mass(log_t, rest), _log_mass(log_s, rest)
    b_t = log_b_t.exp()
    tckd = b_t * (log_b_t - log_b_s) + log_r_t.exp() * (log_r_t - log_r_s)
    return {"tckd": tckd * t**2, "ickd": _region_kl(log_t, log_s, target) * t**2,
            "nckd": _region_kl(log_t, log_s, rest) * t**2, "b_t": b_t, "b_s": log_b_s.exp(),
            "target": target, "valid": valid, "keep": keep}


def channel_dwc_weights(teacher_map: torch.Tensor, terms: dict[str, torch.Tensor], alpha: float, beta: float,
                        gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha_nc (TCKD) and beta_nc (NCKD) of the channel-wise controller, N' x K (see the module doc)."""
    with torch.no_grad():
        target, valid = terms["target"], terms["valid"]
        k = target.shape[1]
        predicted = F.one_hot(teacher_map[terms["keep"]].flatten(2).argmax(1), k).transpose(1, 2).bool()
        predicted &= valid[:, None, :]
        inter = (predicted & target).sum(2).float()
        union = (predicted | target).sum(2).float()
        q = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        present = target.any(2)
        lag = (terms["b_t"] - terms["b_s"]).clamp(min=0)
        a = present.float() * q * (1 + lag)
        # Normalised over the channels where TCKD exists, so its budget does not shrink with many absent classes.
        alpha_nc = alpha * a / a[present].mean() if bool(a.any()) else torch.zeros_like(a)
        c = q.clamp(min=1e-6).pow(gamma)
        beta_nc = beta * c / c.mean()
    return alpha_nc, beta_nc


@register
class LIXChannel(Distiller):
    name = "lix_channel"

    def __init__(self, student, teacher, weight: float = 1.0, alpha: float = 1.0, beta: float = 1.0,
                 temperature: float = 4.0, gamma: float = 1.0, dynamic: bool = True):
        super().__init__(student, teacher, weight)
        self.alpha, self.beta, self.temperature = float(alpha), float(beta), float(temperature)
        self.gamma = float(gamma)
        self.dynamic = bool(dynamic)  # off: constant alpha, beta (channel-wise DKD)

    def losses(self, student, teacher, label, step, total_steps):
        s_map, t_map, at_size = logit_maps(student, teacher, label)
        t_map = t_map.detach()
        terms = channel_terms(s_map, t_map, at_size, self.temperature)
        if not bool(terms["keep"].any()):
            return {"tckd": student["logits"].sum() * 0}
        if self.dynamic:
            alpha, beta = channel_dwc_weights(t_map, terms, self.alpha, self.beta, self.gamma)
        else:
            alpha, beta = self.alpha, self.beta
        return {"tckd": (alpha * terms["tckd"]).mean(), "ickd": (terms["b_t"] * terms["ickd"]).mean(),
                "nckd": (beta * terms["nckd"]).mean()}
