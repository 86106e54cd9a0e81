"""LIX feature side — adaptively recalibrated feature distillation (ARFD).

LIX: "Implicitly Infusing Spatial Geometric Prior Knowledge into Visual Semantic Segmentation for
Autonomous Driving" (abstract: feature recalibration by kernel regression, feature consistency by
centered kernel alignment). The concrete formulation is this project's (docs/distillation.md).

At each distilled stage k, on P pixels sampled per image among the valid (non-ignored) ones
(memory O(P^2)):
  a_i = A_k(s_i)                             student feature through a 1x1 adapter to the teacher's width
  w_ij = softmax_j( -||t_i - t_j||_1 / h )   Laplace kernel on the (geometry-aware) teacher features,
                                             h = median pairwise L1 distance * bandwidth_factor (per image)
  r_i = sum_j w_ij a_j                       Nadaraya-Watson recalibration of the student feature: the
                                             student is averaged over what the *teacher* sees as alike
  L_rec,k = mean_i || r_i/|r_i| - t_i/|t_i| ||^2
  L_cka,k = 1 - CKA(S_k, T_k)                 linear or RBF CKA on the raw sampled features (no adapter:
                                             CKA is invariant to orthogonal maps and isotropic scaling)
Stage weights adapt to the current inconsistency: lambda_k = sg(1 - CKA_k) / mean_k sg(1 - CKA_k).
  L = sum_k lambda_k (w_rec L_rec,k + w_cka L_cka,k) / K
As h -> 0, r_i -> a_i (plain feature imitation through an adapter); a larger h asks only for agreement
of neighbourhood averages, which an RGB-only student can meet where the teacher's features come from
geometry the student cannot see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lix_training.distill.base import Distiller, adapter, register, sample_pixels, valid_mask
from lix_training.distill.kernels import cka, laplace_weights


@register
class LIXFeature(Distiller):
    name = "lix_feature"

    def __init__(self, student, teacher, weight: float = 1.0, stages: tuple[int, ...] = (2, 3),
                 use_embedding: bool = True, samples: int = 256, bandwidth_factor: float = 0.5,
                 cka_kernel: str = "linear", recalibration_weight: float = 1.0, cka_weight: float = 1.0,
                 adaptive_stage_weights: bool = True, seed: int = 0):
        super().__init__(student, teacher, weight)
        self.stages = tuple(int(s) for s in stages)
        self.use_embedding = bool(use_embedding)
        pairs = [(student.feature_channels[s], teacher.feature_channels[s]) for s in self.stages]
        if self.use_embedding:
            pairs.append((student.embedding_channels, teacher.embedding_channels))
        self.adapters = nn.ModuleList(adapter(cs, ct) for cs, ct in pairs)
        self.samples, self.bandwidth_factor, self.cka_kernel = int(samples), float(bandwidth_factor), cka_kernel
        self.w_rec, self.w_cka = float(recalibration_weight), float(cka_weight)
        self.adaptive = bool(adaptive_stage_weights)
        self.seed = int(seed)

    def _maps(self, out: dict) -> list[torch.Tensor]:
        maps = [out["features"][s] for s in self.stages]
        return maps + ([out["embedding"]] if self.use_embedding else [])

    def losses(self, student, teacher, label, step, total_steps):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        rec_terms, cka_terms = [], []
        for adapt, s, t in zip(self.adapters, self._maps(student), self._maps(teacher)):
            t = t.detach()
            a = adapt(s)
            mask = valid_mask(label, s.shape[-2:])
            sampled = sample_pixels([s, a, t], self.samples, generator, mask)
            if sampled is None:  # no image has enough valid positions at this stride
                continue
            s_p, a_p, t_p = sampled
            t_unit = F.normalize(t_p, dim=-1)
            weights = laplace_weights(t_unit, t_unit, factor=self.bandwidth_factor)  # N x P x P, no grad
            recalibrated = weights @ a_p
            rec_terms.append((F.normalize(recalibrated, dim=-1) - t_unit).pow(2).sum(-1).mean())
            cka_terms.append(1 - cka(s_p, t_p, self.cka_kernel).mean())
        if not cka_terms:
            zero = student["logits"].sum() * 0
            return {"recalibration": zero, "cka": zero}
        cka_loss = torch.stack(cka_terms)
        if self.adaptive:
            lam = cka_loss.detach().clamp(min=1e-6)
            lam = lam / lam.mean()
        else:
            lam = torch.ones_like(cka_loss)
        rec = (lam * torch.stack(rec_terms)).mean()
        consistency = (lam * cka_loss).mean()
        return {"recalibration": self.w_rec * rec, "cka": self.w_cka * consistency}
