"""MKAT — multiple knowledge transforms, an auxiliary teacher branch and mutual label calibration.

Baseline named in the LIX paper's comparison; formulated here as follows. F_s, F_t are the decoder
embeddings (student adapted to the teacher's width), average-pooled to at most `pool` positions.
Parameter-free transforms tau of a map F (C x P), each compared after its *own* student-side encoder
E_tau (1x1 conv, identity-initialised residual):
  attention      a = normalize(mean_c F^2)                       (P)
  channel_norm   softmax over P of F_c / T for each channel c     (C x P), KL
  dual_affinity  spatial f^T f (P x P) and channel g g^T (C x C) of unit vectors
  pos_channel    position attention F softmax(F^T F / sqrt C)^T plus channel attention softmax(F F^T) F
  gram           F F^T / P, Frobenius-normalised                (C x C)
  L_transfer = mean_tau  D_tau( tau(E_tau(F_s)), tau(F_t) )
Auxiliary branch: a small head on the (frozen) teacher embedding, trained with cross-entropy, gives a
second set of soft labels. Mutual label calibration: a pixel imitates the teacher where the teacher's
argmax equals the label, else the auxiliary branch where *its* argmax does, else nothing:
  L_imitate = T^2 / |V| sum_i [m_t,i KL(p_t^T || p_s^T) + (1 - m_t,i) m_a,i KL(p_a^T || p_s^T)]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lix_ros.data.classes import IGNORE_ID
from training.distill.base import Distiller, adapter, register, valid_rows
from training.distill.kd import kd_per_pixel

TRANSFORMS = ("attention", "channel_norm", "dual_affinity", "pos_channel", "gram")


def _transform(name: str, f: torch.Tensor, temperature: float) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """f: N x C x P."""
    if name == "attention":
        return F.normalize(f.pow(2).mean(1), dim=1)
    if name == "channel_norm":
        return F.log_softmax(f / temperature, dim=2)
    if name == "dual_affinity":
        spatial = F.normalize(f, dim=1)
        channel = F.normalize(f, dim=2)
        return spatial.transpose(1, 2) @ spatial, channel @ channel.transpose(1, 2)
    if name == "pos_channel":
        c = f.shape[1]
        position = f @ torch.softmax(f.transpose(1, 2) @ f / c**0.5, dim=-1).transpose(1, 2)
        channel = torch.softmax(f @ f.transpose(1, 2) / f.shape[2] ** 0.5, dim=-1) @ f
        return F.normalize((position + channel).flatten(1), dim=1)
    if name == "gram":
        gram = f @ f.transpose(1, 2) / f.shape[2]
        return F.normalize(gram.flatten(1), dim=1)
    raise ValueError(f"unknown MKAT transform {name!r}; expected one of {TRANSFORMS}")


def _distance(name: str, s, t) -> torch.Tensor:
    if name == "channel_norm":  # KL between per-channel spatial distributions
        return (t.exp() * (t - s)).sum(2).mean()
    if name == "dual_affinity":
        return (s[0] - t[0]).pow(2).mean() + (s[1] - t[1]).pow(2).mean()
    return (s - t).pow(2).sum(1).mean()


class ResidualEncoder(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


@register
class MKAT(Distiller):
    name = "mkat"

    def __init__(self, student, teacher, weight: float = 1.0, transforms: tuple[str, ...] = TRANSFORMS,
                 pool: tuple[int, int] = (16, 32), temperature: float = 4.0, transfer_weight: float = 1.0,
                 imitation_weight: float = 1.0, aux_weight: float = 1.0):
        super().__init__(student, teacher, weight)
        for name in transforms:
            if name not in TRANSFORMS:
                raise ValueError(f"unknown MKAT transform {name!r}; expected one of {TRANSFORMS}")
        self.transforms = tuple(transforms)
        channels = teacher.embedding_channels
        self.adapter = adapter(student.embedding_channels, channels)
        self.encoders = nn.ModuleDict({name: ResidualEncoder(channels) for name in self.transforms})
        self.aux_head = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(channels, teacher.num_classes, 1))
        self.pool, self.temperature = tuple(pool), float(temperature)
        self.w_transfer, self.w_imitate, self.w_aux = float(transfer_weight), float(imitation_weight), float(aux_weight)

    def losses(self, student, teacher, label, step, total_steps):
        embedding_t = teacher["embedding"].detach()
        pool = (min(self.pool[0], embedding_t.shape[-2]), min(self.pool[1], embedding_t.shape[-1]))
        adapted = self.adapter(student["embedding"])
        f_t = F.adaptive_avg_pool2d(embedding_t, pool).flatten(2)
        transfer = []
        for name in self.transforms:
            f_s = F.adaptive_avg_pool2d(self.encoders[name](adapted), pool).flatten(2)
            transfer.append(_distance(name, _transform(name, f_s, self.temperature),
                                      _transform(name, f_t, self.temperature)))
        terms = {"transfer": self.w_transfer * torch.stack(transfer).mean()}

        aux_logits = F.interpolate(self.aux_head(embedding_t), size=label.shape[-2:], mode="bilinear",
                                   align_corners=False)
        terms["aux_ce"] = self.w_aux * F.cross_entropy(aux_logits, label, ignore_index=IGNORE_ID)
        s_rows, target = valid_rows(student["logits"], label)
        t_rows, _ = valid_rows(teacher["logits"].detach(), label)
        a_rows, _ = valid_rows(aux_logits.detach(), label)
        if len(s_rows):
            teacher_right = (t_rows.argmax(1) == target).float()
            aux_right = (a_rows.argmax(1) == target).float() * (1 - teacher_right)
            from_teacher = teacher_right * kd_per_pixel(s_rows, t_rows, self.temperature)
            from_aux = aux_right * kd_per_pixel(s_rows, a_rows, self.temperature)
            terms["imitation"] = self.w_imitate * from_teacher.mean()
            terms["aux_imitation"] = self.w_imitate * from_aux.mean()
        return terms
