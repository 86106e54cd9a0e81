"""MKAT — multi-knowledge aggregation and transfer, with mutual label calibration.

Baseline of the LIX paper's comparison. Formulas from the authors' public code (FLHonker/MKAT-code:
`network/mkat.py`, `utils/loss.py` `mutual_calibration`, `MKAT_seg.py`), re-implemented here.

Knowledge forms of a feature map F (N x C x H x W, the backbone's last stage), all feature-shaped:
  AT  attention       normalize_HW( mean_c F^2 )                                   (N x 1 x H x W)
  AF  feature norm    F_c / (||F_c||_2 over H, W + eps), per channel
  CM  dual affinity   f = F row-normalised over W; k(S) = sum_{p<=2} e^{-2g} (2g)^p / p! S^p (g = 0.4)
                      CM = k(f^T f f^T)^T + k(f f^T f)                              (Taylor-expanded kernel)
  SA  spatial attn    A = softmax_j( F_i . F_j ) over positions (no 1/sqrt(C)),  SA = F A^T
  CA  channel attn    E = F F^T (C x C),  CA = softmax( rowmax(E) - E ) F
  GM  Gram            G = F_n F_n^T with F_n = F row-normalised over positions,  GM = G F
Encoders, separate for student and teacher: per form a 1x1 conv -> nz (256) + BN + ReLU; the forms'
codes concatenated and aggregated by 1x1 conv -> 512 + BN + ReLU:  feat_s, feat_t.
  L_transfer = L1( feat_s, sg(feat_t) )                          (student side: student encoders)
Auxiliary branch: an ASPP head (DeepLab v3) on the aggregated *teacher* knowledge feat_t gives logits a.
Mutual label calibration (m_r = [student correct] == [aux correct], m_c = 1 - m_r, per pixel):
  L_kl  = alpha T^2 / (N K H W) sum_i m_c,i KL( softmax(z_t,i / T) || softmax(z_s,i) )   the student imitates
          the *teacher* where student and aux disagree on correctness (student logits not divided by T)
  L_aux = CE(a, y) + alpha T^2 / (N K H W) sum_i m_r,i KL( softmax(z_t,i / T) || softmax(a_i) )
T = 6 (fixed in the authors' KL), alpha = 0.5. The aux loss trains the aux head and the teacher-side
encoders (its input is the frozen teacher's feature); nothing of it reaches the student.

Adaptations to this harness, documented: the loss terms are computed where the other logit methods
compute theirs (the models' stride-4 logits with nearest-resized labels); ignored pixels are in neither
mask (the authors' masks put them in m_r, which only affects the aux imitation); one optimiser trains
student, encoders and aux head (the authors step the aux head with a separate SGD, the same gradients);
the student-side encoders start as copies of the teacher-side ones when the widths agree (so a student
equal to its teacher starts with zero transfer loss); the ASPP width is a parameter (256 as published).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lix_ros.data.classes import IGNORE_ID
from lix_training.distill.base import Distiller, logit_maps, register

FORMS = ("at", "af", "cm", "sa", "ca", "gm")
TEMPERATURE = 6.0


# ---------------------------------------------------------------------------------------------- knowledge forms
def attention_form(f: torch.Tensor) -> torch.Tensor:
    n, _, h, w = f.shape
    return F.normalize(f.pow(2).mean(1).reshape(n, -1), dim=1).reshape(n, 1, h, w)


def feature_norm_form(f: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return f / (torch.linalg.vector_norm(f, dim=(2, 3), keepdim=True) + eps)


def _taylor_kernel(s: torch.Tensor, order: int = 2, gamma: float = 0.4) -> torch.Tensor:
    return sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * s.pow(p) for p in range(order + 1))


def dual_affinity_form(f: torch.Tensor, order: int = 2, gamma: float = 0.4) -> torch.Tensor:
    f = F.normalize(f, dim=-1)
    ft = f.transpose(2, 3)
    first = _taylor_kernel(ft @ (f @ ft), order, gamma).transpose(2, 3)  # W x H -> H x W
    second = _taylor_kernel(f @ (ft @ f), order, gamma)
    return first + second


def spatial_attention_form(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    attention = torch.softmax(flat.transpose(1, 2) @ flat, dim=-1)  # positions x positions
    return (flat @ attention.transpose(1, 2)).reshape(n, c, h, w)


def channel_attention_form(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    energy = flat @ flat.transpose(1, 2)  # C x C
    attention = torch.softmax(energy.max(-1, keepdim=True).values - energy, dim=-1)
    return (attention @ flat).reshape(n, c, h, w)


def gram_form(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    unit = F.normalize(flat, dim=2)
    return ((unit @ unit.transpose(1, 2)) @ flat).reshape(n, c, h, w)


FORM_FUNCTIONS = {"at": attention_form, "af": feature_norm_form, "cm": dual_affinity_form,
                  "sa": spatial_attention_form, "ca": channel_attention_form, "gm": gram_form}


# ---------------------------------------------------------------------------------------------- modules
def _code(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class KnowledgeEncoder(nn.Module):
    """Per-form 1x1 codes, concatenated and aggregated into one feature map."""

    def __init__(self, channels: int, forms: tuple[str, ...], code_channels: int, aggregate_channels: int):
        super().__init__()
        self.forms = forms
        self.codes = nn.ModuleDict({f: _code(1 if f == "at" else channels, code_channels) for f in forms})
        self.aggregate = nn.Sequential(nn.Conv2d(code_channels * len(forms), aggregate_channels, 1),
                                       nn.BatchNorm2d(aggregate_channels), nn.ReLU())
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.aggregate(torch.cat([self.codes[name](FORM_FUNCTIONS[name](f)) for name in self.forms], 1))


class ASPPHead(nn.Module):
    """DeepLab v3 ASPP (1x1, three atrous 3x3, image pooling) + 3x3 conv + classifier."""

    def __init__(self, cin: int, num_classes: int, width: int = 256, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        branches = [_code(cin, width)]
        branches += [nn.Sequential(nn.Conv2d(cin, width, 3, padding=r, dilation=r, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU()) for r in rates]
        self.branches = nn.ModuleList(branches)
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, width, 1, bias=False), nn.ReLU())
        self.project = nn.Sequential(_code(width * (len(rates) + 2), width), nn.Dropout(0.1))
        self.head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, num_classes, 1))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        pooled = F.interpolate(self.pooling(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))
        return F.interpolate(self.head(out), size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------------- losses
def masked_kl_sum(logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """T^2 / (N K H W) sum_i mask_i KL(softmax(z_t,i / T) || softmax(z_i)) — the authors' KL with
    F.kl_div(..., reduction='mean'), restricted to the mask."""
    log_p = F.log_softmax(logits, dim=1)
    log_q = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_q.exp() * (log_q - log_p)).sum(1)  # N x H x W
    return (kl * mask).sum() / logits.numel() * temperature**2


def calibration_masks(student_logits: torch.Tensor, aux_logits: torch.Tensor, label: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(m_r, m_c): student and aux equally right (or equally wrong) vs not; ignored pixels in neither."""
    valid = (label != IGNORE_ID).float()
    student_right = student_logits.argmax(1) == label
    aux_right = aux_logits.argmax(1) == label
    agree = (student_right == aux_right).float()
    return agree * valid, (1 - agree) * valid


@register
class MKAT(Distiller):
    name = "mkat"

    def __init__(self, student, teacher, weight: float = 1.0, forms: tuple[str, ...] = FORMS, stage: int = 3,
                 code_channels: int = 256, aggregate_channels: int = 512, aspp_channels: int = 256,
                 transfer_weight: float = 1.0, alpha: float = 0.5, temperature: float = TEMPERATURE):
        super().__init__(student, teacher, weight)
        unknown = [f for f in forms if f not in FORMS]
        if unknown or not forms:
            raise ValueError(f"unknown MKAT forms {unknown}; expected a non-empty subset of {FORMS}")
        self.forms, self.stage = tuple(forms), int(stage)
        s_ch, t_ch = student.feature_channels[self.stage], teacher.feature_channels[self.stage]
        self.student_encoder = KnowledgeEncoder(s_ch, self.forms, code_channels, aggregate_channels)
        self.teacher_encoder = KnowledgeEncoder(t_ch, self.forms, code_channels, aggregate_channels)
        if s_ch == t_ch:
            self.student_encoder.load_state_dict(self.teacher_encoder.state_dict())
        self.aux_head = ASPPHead(aggregate_channels, teacher.num_classes, aspp_channels)
        self.transfer_weight, self.alpha, self.temperature = float(transfer_weight), float(alpha), float(temperature)

    def losses(self, student, teacher, label, step, total_steps):
        f_s, f_t = student["features"][self.stage], teacher["features"][self.stage].detach()
        if f_s.shape[-2:] != f_t.shape[-2:]:
            f_s = F.adaptive_avg_pool2d(f_s, f_t.shape[-2:])
        feat_s, feat_t = self.student_encoder(f_s), self.teacher_encoder(f_t)
        s_map, t_map, at_size = logit_maps(student, teacher, label)
        t_map = t_map.detach()
        aux = self.aux_head(feat_t, tuple(s_map.shape[-2:]))
        m_r, m_c = calibration_masks(s_map.detach(), aux.detach(), at_size)
        return {
            "kl": self.alpha * masked_kl_sum(s_map, t_map, m_c, self.temperature),
            "transfer": self.transfer_weight * F.l1_loss(feat_s, feat_t.detach()),
            "aux_ce": F.cross_entropy(aux, at_size, ignore_index=IGNORE_ID) if bool((at_size != IGNORE_ID).any())
            else aux.sum() * 0,
            "aux_kl": self.alpha * masked_kl_sum(aux, t_map, m_r, self.temperature),
        }
