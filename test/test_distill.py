"""The mathematics of the distillation methods, not only their shapes."""

import math

import pytest
import torch
import torch.nn.functional as F

from lix_ros.models import build_model
from lix_training.distill import REGISTRY, build_distiller
from lix_training.distill.base import NetInfo
from lix_training.distill.dkd import decoupled_terms
from lix_training.distill.kd import kd_per_pixel
from lix_training.distill.kernels import cka, nadaraya_watson
from lix_training.distill.lix_channel import channel_dwc_weights, channel_terms
from lix_training.distill.lix_logit import dwc_weights

torch.manual_seed(0)
K = 6


def mdistiller_dkd_reference(logits_student, logits_teacher, target, alpha, beta, temperature):
    """dkd_loss of mdistiller (rows = samples), re-derived here in float64 from its published formula."""
    s, t = logits_student.double(), logits_teacher.double()
    gt = F.one_hot(target, s.shape[1]).bool()
    p_s, p_t = F.softmax(s / temperature, 1), F.softmax(t / temperature, 1)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], 1)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], 1)
    tckd = F.kl_div(torch.log(b_s), b_t, reduction="sum") * temperature**2 / len(target)
    p_t2 = F.softmax(t / temperature - 1000.0 * gt, 1)
    log_p_s2 = F.log_softmax(s / temperature - 1000.0 * gt, 1)
    nckd = F.kl_div(log_p_s2, p_t2, reduction="sum") * temperature**2 / len(target)
    return alpha * tckd + beta * nckd


def dense(n=2, h=6, w=8, ignore=True):
    student = torch.randn(n, K, h, w) * 3
    teacher = torch.randn(n, K, h, w) * 3
    label = torch.randint(0, K, (n, h, w))
    if ignore:
        label[:, :2, :3] = 255
    return student, teacher, label


def info(channels=(8, 16, 24, 32), embedding=16):
    return NetInfo(channels, embedding, K)


def outputs(logits, seed=0, channels=(8, 16, 24, 32), embedding=16):
    g = torch.Generator().manual_seed(seed)
    n, _, h, w = logits.shape
    features = [torch.randn(n, c, max(1, h // 2**i), max(1, w // 2**i), generator=g) for i, c in enumerate(channels)]
    return {"logits": logits, "features": features, "embedding": torch.randn(n, embedding, h, w, generator=g)}


def test_kd_equals_tckd_plus_one_minus_pt_times_nckd():
    s, t = torch.randn(500, K, dtype=torch.float64) * 4, torch.randn(500, K, dtype=torch.float64) * 4
    target = torch.randint(0, K, (500,))
    for temperature in (1.0, 4.0):
        tckd, nckd, p_target_t, _ = decoupled_terms(s, t, target, temperature)
        torch.testing.assert_close(tckd + (1 - p_target_t) * nckd, kd_per_pixel(s, t, temperature), rtol=1e-6,
                                   atol=1e-8)


def test_dkd_matches_mdistiller_reference_on_valid_pixels():
    student, teacher, label = dense()
    dkd = REGISTRY["dkd"](info(), info(), alpha=1.0, beta=8.0, temperature=4.0)
    terms = dkd(outputs(student), outputs(teacher), label)
    ours = sum(terms.values())
    rows = lambda z: z.permute(0, 2, 3, 1).reshape(-1, K)  # noqa: E731
    keep = label.reshape(-1) != 255
    reference = mdistiller_dkd_reference(rows(student)[keep], rows(teacher)[keep], label.reshape(-1)[keep], 1.0, 8.0,
                                         4.0)
    assert float(ours) == pytest.approx(float(reference), rel=1e-4)


def test_lix_logit_fixed_weights_is_dkd_and_dynamic_keeps_the_mean_weight():
    student, teacher, label = dense()
    fixed = REGISTRY["lix_logit"](info(), info(), dynamic=False)(outputs(student), outputs(teacher), label)
    dkd = REGISTRY["dkd"](info(), info())(outputs(student), outputs(teacher), label)
    assert float(sum(fixed.values())) == pytest.approx(float(sum(dkd.values())), rel=1e-6)
    s, t = torch.randn(300, K) * 3, torch.randn(300, K) * 3
    target = torch.randint(0, K, (300,))
    alpha_i, beta_i = dwc_weights(s, t, target, 4.0, alpha=1.0, beta=8.0, gamma=1.0)
    assert float(beta_i.mean()) == pytest.approx(8.0, rel=1e-5) and float(alpha_i.mean()) == pytest.approx(1.0)
    # A pixel the teacher gets right with confidence gets more NCKD weight than one it gets wrong.
    t_conf = torch.full((2, K), -5.0)
    t_conf[0, 0] = 5.0  # right (target 0)
    t_conf[1, 1] = 5.0  # wrong
    _, beta_pair = dwc_weights(torch.zeros(2, K), t_conf, torch.tensor([0, 0]), 4.0, 1.0, 8.0, 1.0)
    assert beta_pair[0] > 10 * beta_pair[1]


def test_cka_invariances():
    x = torch.randn(2, 64, 10, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(10, 10, dtype=torch.float64))
    for kernel in ("linear", "rbf"):
        torch.testing.assert_close(cka(x, x @ q, kernel), torch.ones(2, dtype=torch.float64))
        torch.testing.assert_close(cka(x, 3.7 * x, kernel), torch.ones(2, dtype=torch.float64))
        assert float(cka(x, torch.randn(2, 64, 7, dtype=torch.float64), kernel).max()) < 0.9
    # Different widths are fine and CKA is symmetric.
    y = torch.randn(2, 64, 5, dtype=torch.float64)
    torch.testing.assert_close(cka(x, y), cka(y, x))


def test_kernel_regression_tends_to_nearest_neighbour():
    keys = torch.randn(50, 4, dtype=torch.float64)
    values = torch.randn(50, 3, dtype=torch.float64)
    queries = keys[[3, 17, 42]] + 1e-3 * torch.randn(3, 4, dtype=torch.float64)
    estimate = nadaraya_watson(queries, keys, values, bandwidth=1e-4)
    torch.testing.assert_close(estimate, values[[3, 17, 42]])
    # A large bandwidth averages everything.
    torch.testing.assert_close(nadaraya_watson(queries, keys, values, bandwidth=1e6),
                               values.mean(0).expand(3, 3), atol=1e-4, rtol=0)


METHOD_PARAMS = {
    "kd": {}, "dkd": {}, "lix_logit": {}, "cwd": {}, "at": {}, "pfs": {"pool": (4, 4)},
    "mkat": {"code_channels": 8, "aggregate_channels": 16, "aspp_channels": 8},
    "lix_feature": {"samples": 16, "bandwidth_factor": 1e-3}, "lix_channel": {},
}
# Terms that are not zero at student = teacher by the published definition: MKAT's auxiliary branch
# (aux_ce, aux_kl: the aux head's own training) and its KL, which compares the teacher at T = 6 with the
# student at T = 1.
OWN_BRANCH_TERMS = {"mkat.aux_ce", "mkat.aux_kl", "mkat.kl"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_is_zero_when_student_equals_teacher(name):
    logits = torch.randn(2, K, 8, 16) * 3
    label = torch.randint(0, K, (2, 8, 16))
    method = build_distiller({"methods": [{"name": name, **METHOD_PARAMS[name]}]}, _Net(), _Net())
    student = outputs(logits.clone().requires_grad_(True), seed=1)
    teacher = outputs(logits.clone(), seed=1)
    terms = method(student, teacher, label)
    assert terms
    for key, value in terms.items():
        if key not in OWN_BRANCH_TERMS:
            assert abs(float(value.detach())) < 1e-4, f"{key} = {float(value.detach())} at student = teacher"


def _garbage_at_ignored(out: dict, label: torch.Tensor, value: float) -> dict:
    """Overwrite logits, features and embedding wherever the (resized) label is ignored."""
    def spoil(x):
        mask = F.interpolate((label == 255).float().unsqueeze(1), size=x.shape[-2:], mode="nearest") > 0
        return x.masked_fill(mask.expand_as(x), value)

    return {"logits": spoil(out["logits"]), "features": [spoil(f) for f in out["features"]],
            "embedding": spoil(out["embedding"])}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_ignored_pixels_contribute_nothing(name):
    if name == "at":
        pytest.skip("AT matches whole-image attention maps by definition; it reads no labels")
    student_logits, teacher_logits, label = dense(h=8, w=16)
    label[:, :, :4] = 255  # whole columns, so the mask survives down to the stride-32 features
    params = dict(METHOD_PARAMS[name], **({"stages": (0, 1)} if name == "lix_feature" else {}))
    if name == "pfs":
        params["pool"] = (8, 16)  # no pooling across the ignore boundary
    method = build_distiller({"methods": [{"name": name, **params}]}, _Net(), _Net())
    student, teacher = outputs(student_logits, seed=2), outputs(teacher_logits, seed=3)
    torch.manual_seed(0)  # MKAT's ASPP has dropout
    base = {k: float(v.detach()) for k, v in method(student, teacher, label).items()}
    if name in ("pfs", "mkat"):  # their feature terms are label-free maps: spoil only the logits
        spoiled_s = dict(student, logits=_garbage_at_ignored(student, label, 100.0)["logits"])
        spoiled_t = dict(teacher, logits=_garbage_at_ignored(teacher, label, -50.0)["logits"])
    else:
        spoiled_s, spoiled_t = _garbage_at_ignored(student, label, 100.0), _garbage_at_ignored(teacher, label, -50.0)
    torch.manual_seed(0)
    again = {k: float(v.detach()) for k, v in method(spoiled_s, spoiled_t, label).items()}
    for key in base:
        assert again[key] == pytest.approx(base[key], rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_gradients_reach_only_the_student(name):
    student = build_model({"kind": "student", "preset": "tiny"})
    teacher = build_model({"kind": "teacher", "preset": "tiny", "modality": "depth"})
    method = build_distiller({"methods": [{"name": name, **METHOD_PARAMS[name]}]}, student, teacher)
    rgb, depth = torch.randn(2, 3, 32, 64), torch.rand(2, 1, 32, 64)
    label = torch.randint(0, 19, (2, 32, 64))
    label[:, :4] = 255
    terms = method(student(rgb), teacher(rgb, depth), label)  # teacher outputs *with* a graph, on purpose
    sum(terms.values()).backward()
    assert all(p.grad is None for p in teacher.parameters()), "a gradient reached the teacher"
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    assert all(math.isfinite(float(v.detach())) for v in terms.values())


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown distillation method"):
        build_distiller({"methods": [{"name": "magic"}]}, _Net(), _Net())
    with pytest.raises(ValueError, match="'kd'"):
        build_distiller({"methods": [{"name": "kd", "temprature": 3}]}, _Net(), _Net())


class _Net(torch.nn.Module):
    """Stand-in carrying only the sizes a distiller reads (feature widths, embedding, classes)."""

    feature_channels = (8, 16, 24, 32)
    embedding_channels = 16

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Module()
        self.head.classifier = torch.nn.Conv2d(16, K, 1)


def test_decoupled_terms_stay_finite_for_confident_pixels():
    """Teacher almost sure of the target at T = 1: p_g rounds to 1.0 in float32; TCKD must stay finite."""
    teacher = torch.full((4, K), -20.0)
    teacher[:, 0] = 20.0
    student = torch.randn(4, K)
    target = torch.zeros(4, dtype=torch.long)
    tckd, nckd, p_t, _ = decoupled_terms(student, teacher, target, 1.0)
    assert torch.isfinite(tckd).all() and torch.isfinite(nckd).all() and (tckd >= 0).all()
    assert float(p_t.min()) > 0.999
    # The identity still holds there (in float64, away from rounding).
    tckd64, nckd64, p64, _ = decoupled_terms(student.double(), teacher.double(), target, 1.0)
    torch.testing.assert_close(tckd64 + (1 - p64) * nckd64, kd_per_pixel(student.double(), teacher.double(), 1.0))


# ------------------------------------------------------------------ tests that fail on the wrong variant
def test_dwc_gives_no_tckd_weight_where_the_teacher_is_wrong():
    """Pixel 0: teacher wrong, student right. Pixel 1: teacher right, student wrong. TCKD must lean on 1.

    A symmetric weight 1 + |b_t - b_s| gives both pixels the same (large) gap and so the same weight, and
    weighting by the gap alone would favour pixel 0 as much: only the teacher-right rule separates them.
    """
    target = torch.tensor([0, 0, 0])
    teacher = torch.full((3, K), -4.0)
    student = torch.full((3, K), -4.0)
    teacher[0, 1], student[0, 0] = 4.0, 4.0  # teacher says class 1 (wrong), student class 0 (right)
    teacher[1, 0], student[1, 1] = 4.0, 4.0  # teacher right, student wrong
    teacher[2, 0], student[2, 0] = 4.0, 4.0  # both right, equally sure
    alpha_i, _ = dwc_weights(student, teacher, target, 1.0, alpha=1.0, beta=1.0, gamma=1.0)
    assert float(alpha_i[0]) == 0.0
    assert float(alpha_i[1]) > float(alpha_i[2]) > 0
    assert float(alpha_i.mean()) == pytest.approx(1.0)
    # A teacher wrong everywhere gets no TCKD weight at all (not a division by zero).
    alpha_wrong, _ = dwc_weights(student[:1], teacher[:1], target[:1], 1.0, 1.0, 1.0, 1.0)
    assert float(alpha_wrong.sum()) == 0.0


def test_lix_feature_ignores_pixels_at_the_default_setting():
    """Default stages (2, 3), 256 samples, 128 x 256 crop: the stride-16/32 maps have <= 256 positions,
    so sampling must still skip ignored positions (it used to take every position)."""
    h, w = 128, 256
    student_logits, teacher_logits = torch.randn(2, K, h, w), torch.randn(2, K, h, w)
    label = torch.randint(0, K, (2, h, w))
    label[:, :, :96] = 255  # whole columns: ignored at every stride
    method = build_distiller({"methods": [{"name": "lix_feature"}]}, _Net(), _Net())
    student, teacher = outputs(student_logits, seed=2), outputs(teacher_logits, seed=3)
    student["embedding"] = student["embedding"][..., ::4, ::4]  # stride 4, as the models' decoder
    teacher["embedding"] = teacher["embedding"][..., ::4, ::4]
    for out in (student, teacher):
        out["features"] = [F.interpolate(f, size=(h // s, w // s)) for f, s in zip(out["features"], (4, 8, 16, 32))]
    base = {k: float(v.detach()) for k, v in method(student, teacher, label).items()}
    again = {k: float(v.detach()) for k, v in method(_garbage_at_ignored(student, label, 100.0),
                                                     _garbage_at_ignored(teacher, label, -50.0), label).items()}
    for key in base:
        assert again[key] == pytest.approx(base[key], rel=1e-5, abs=1e-7), key


def test_sample_pixels_takes_only_valid_positions_and_equal_counts():
    from lix_training.distill.base import sample_pixels

    feature = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, 0, :2] = 1  # 8 valid positions
    mask[1, 0, 0, :3] = 1  # 5 valid ... 3 here, below: 3 < MIN_SAMPLED_PIXELS, left out
    mask[1, 0, 3, 0] = 1
    mask[1, 0, 3, 1] = 1  # image 1: 5 valid positions
    (picked,) = sample_pixels([feature], 256, torch.Generator().manual_seed(0), mask)
    assert picked.shape == (2, 5, 1)  # P = fewest valid positions of a kept image
    valid_values = [set(feature[i, 0][mask[i, 0] > 0].tolist()) for i in range(2)]
    for i in range(2):
        assert set(picked[i, :, 0].tolist()) <= valid_values[i] and len(set(picked[i, :, 0].tolist())) == 5
    assert sample_pixels([feature], 8, None, torch.zeros(2, 1, 4, 4)) is None


def test_pfs_weights_pixels_by_the_knowledge_gap():
    """Reference value on two pixels: the one where student and teacher differ more weighs more."""
    teacher = torch.tensor([[4.0, 0, 0, 0, 0, 0], [4.0, 0, 0, 0, 0, 0]]).view(1, 2, K).permute(0, 2, 1)[..., None]
    student = torch.tensor([[0.0, 4, 0, 0, 0, 0], [3.0, 0, 0, 0, 0, 0]]).view(1, 2, K).permute(0, 2, 1)[..., None]
    teacher, student = teacher.transpose(2, 3), student.transpose(2, 3)  # 1 x K x 1 x 2
    label = torch.zeros(1, 1, 2, dtype=torch.long)
    method = REGISTRY["pfs"](info(), info(), pool=(1, 2), similarity_weight=0.0, temperature=2.0)
    emb = torch.randn(1, 16, 1, 2)
    got = float(method.losses({"logits": student, "embedding": emb}, {"logits": teacher, "embedding": emb},
                              label, 0, 1)["pixel"])
    s_rows, t_rows = student[0, :, 0].T.double(), teacher[0, :, 0].T.double()
    gap = 0.5 * (t_rows.softmax(1) - s_rows.softmax(1)).abs().sum(1)
    kl = kd_per_pixel(s_rows, t_rows, 2.0)
    expected = float((gap / gap.mean() * kl).mean())
    inverted = float((gap.mean() / gap * kl).mean())
    assert got == pytest.approx(expected, rel=1e-5)
    assert abs(expected - inverted) > 0.1 * expected  # the test can tell the two apart


def test_linear_cka_is_centered_and_matches_a_reference():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 4, generator=g, dtype=torch.float64) + 0.5 * torch.randn(40, 4, generator=g,
                                                                                    dtype=torch.float64)
    # Reference: HSIC with linear Gram matrices and the centering matrix H, written out (Kornblith et al.).
    n = 40
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l_ = x @ x.T, y @ y.T

    def hsic_ref(a, b):
        return torch.trace(a @ h @ b @ h)

    reference = hsic_ref(k, l_) / torch.sqrt(hsic_ref(k, k) * hsic_ref(l_, l_))
    assert float(cka(x[None], y[None])[0]) == pytest.approx(float(reference), rel=1e-10)
    # Centered: a constant offset per feature changes nothing (uncentered CKA would drop here).
    offset = y + torch.tensor([50.0, -20.0, 30.0, 10.0], dtype=torch.float64)
    assert float(cka(x[None], offset[None])[0]) == pytest.approx(float(reference), rel=1e-10)
    # Relative eps: the same value for features at 1e-4 scale.
    assert float(cka(1e-4 * x[None], 1e-4 * y[None])[0]) == pytest.approx(float(reference), rel=1e-8)
    assert float(cka(x[None].float() * 1e-4, y[None].float() * 1e-4)[0]) == pytest.approx(float(reference), rel=1e-3)


def test_median_bandwidth_rule():
    from lix_training.distill.kernels import laplace_weights, median_bandwidth

    d = torch.tensor([[0.0, 1, 2], [1, 0, 3], [2, 3, 0]])
    assert float(median_bandwidth(d)) == 2.0  # off-diagonal values 1,1,2,2,3,3 (lower median); not 1 with zeros
    assert float(median_bandwidth(d, factor=0.5)) == 1.0
    rect = torch.tensor([[1.0, 4.0], [2.0, 8.0], [3.0, 9.0]])  # queries != keys: every entry counts
    assert float(median_bandwidth(rect)) == 3.0
    # lix_feature's weights are a softmax of -L1 distance / (factor x median), per image.
    q = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]])
    expected = torch.softmax(-torch.cdist(q, q, p=1) / (0.5 * 2.0), dim=-1)  # median off-diagonal L1 = 2
    torch.testing.assert_close(laplace_weights(q, q, factor=0.5), expected)
    assert laplace_weights(q, q[:, :2], factor=1.0).shape == (1, 3, 2)


def test_logit_distillation_runs_at_stride_four_with_nearest_labels():
    from lix_training.distill.base import logit_maps

    coarse_s, coarse_t = torch.randn(1, K, 4, 8), torch.randn(1, K, 4, 8)
    label = torch.randint(0, K, (1, 16, 32))
    label[:, :, :8] = 255
    student = {"logits": F.interpolate(coarse_s, size=(16, 32)), "logits_coarse": coarse_s}
    teacher = {"logits": F.interpolate(coarse_t, size=(16, 32)), "logits_coarse": coarse_t}
    s, t, small = logit_maps(student, teacher, label)
    assert s is coarse_s and t is coarse_t and small.shape == (1, 4, 8)
    assert (small[:, :, :2] == 255).all() and (small[:, :, 2:] != 255).all()
    kd = REGISTRY["kd"](info(), info(), temperature=1.0)
    rows = valid_rows_for_test(coarse_s, small), valid_rows_for_test(coarse_t, small)
    assert float(kd.losses(student, teacher, label, 0, 1)["kd"]) == pytest.approx(
        float(kd_per_pixel(rows[0], rows[1], 1.0).mean()), rel=1e-6)


def valid_rows_for_test(logits, label):
    rows = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    return rows[label.reshape(-1) != 255]


# ------------------------------------------------------------------ MKAT pieces against hand-computed values
def test_mkat_forms_by_hand():
    from lix_training.distill import mkat

    f = torch.tensor([[3.0, 0.0], [4.0, 1.0]]).view(1, 1, 2, 2)  # one channel, 2 x 2
    # AF: each channel divided by its spatial L2 norm (sqrt(9 + 16 + 1) = sqrt(26)).
    torch.testing.assert_close(mkat.feature_norm_form(f, eps=0.0), f / math.sqrt(26.0))
    # AT: mean_c F^2 = F^2 here, L2-normalised over positions.
    sq = torch.tensor([9.0, 0.0, 16.0, 1.0])
    torch.testing.assert_close(mkat.attention_form(f).flatten(), sq / sq.norm())
    # SA: A = softmax_j(F_i F_j) over positions (no 1/sqrt(C)); SA_i = sum_j A_ij F_j.
    v = torch.tensor([3.0, 0.0, 4.0, 1.0])
    a = torch.softmax(v[:, None] * v[None, :], dim=1)
    torch.testing.assert_close(mkat.spatial_attention_form(f).flatten(), a @ v)
    # CA and GM with two channels over two positions.
    g = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    e = torch.tensor([[5.0, 2.0], [2.0, 1.0]])  # F F^T
    att = torch.softmax(e.max(1, keepdim=True).values - e, dim=1)  # rows [0, 3] and [0, 1]
    torch.testing.assert_close(mkat.channel_attention_form(g).view(2, 2), att @ torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    unit = torch.tensor([[1.0, 2.0], [0.0, 1.0]]) / torch.tensor([[math.sqrt(5.0)], [1.0]])
    torch.testing.assert_close(mkat.gram_form(g).view(2, 2), (unit @ unit.T) @ torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    # CM: Taylor kernel k(s) = e^{-0.8} (1 + 0.8 s + 0.32 s^2), on a 1 x 1 map f = 1 (row-normalised: 1).
    one = torch.ones(1, 1, 1, 1)
    k1 = math.exp(-0.8) * (1 + 0.8 + 0.32)
    assert float(mkat.dual_affinity_form(one)) == pytest.approx(2 * k1, rel=1e-6)
    for form in mkat.FORMS:  # all feature-shaped (AT: one channel)
        out = mkat.FORM_FUNCTIONS[form](torch.randn(2, 5, 3, 4))
        assert out.shape == ((2, 1, 3, 4) if form == "at" else (2, 5, 3, 4)), form


def test_mkat_mutual_calibration_by_hand():
    from lix_training.distill import mkat

    label = torch.tensor([[[0, 0, 0, 0, 255]]])  # 1 x 1 x 5
    student = torch.zeros(1, K, 1, 5)
    aux = torch.zeros(1, K, 1, 5)
    # pixel: 0 both right, 1 student right/aux wrong, 2 student wrong/aux right, 3 both wrong, 4 ignored
    student[0, 0, 0, [0, 1, 4]] = 5.0
    student[0, 1, 0, [2, 3]] = 5.0
    aux[0, 0, 0, [0, 2, 4]] = 5.0
    aux[0, 1, 0, [1, 3]] = 5.0
    m_r, m_c = mkat.calibration_masks(student, aux, label)
    assert m_r.flatten().tolist() == [1, 0, 0, 1, 0] and m_c.flatten().tolist() == [0, 1, 1, 0, 0]
    # The student imitates the *teacher* on m_c: KL(softmax(z_t / 6) || softmax(z_s)) * 36 / (N K H W).
    teacher = torch.randn(1, K, 1, 5)
    log_q = F.log_softmax(teacher / 6.0, 1)
    kl = (log_q.exp() * (log_q - F.log_softmax(student, 1))).sum(1).flatten()
    expected = float((kl[1] + kl[2]) * 36.0 / (K * 5))
    assert float(mkat.masked_kl_sum(student, teacher, m_c, 6.0)) == pytest.approx(expected, rel=1e-5)


def test_mkat_transfer_is_l1_of_aggregated_codes_and_aux_trains_on_teacher_knowledge():
    from lix_training.distill import mkat

    student = build_model({"kind": "student", "preset": "tiny"})
    teacher = build_model({"kind": "teacher", "preset": "tiny", "modality": "depth"})
    method = REGISTRY["mkat"](NetInfo.of(student), NetInfo.of(teacher), code_channels=8, aggregate_channels=16,
                              aspp_channels=8)
    assert method.temperature == mkat.TEMPERATURE == 6.0
    rgb, depth = torch.randn(2, 3, 64, 128), torch.rand(2, 1, 64, 128)
    label = torch.randint(0, 19, (2, 64, 128))
    s_out, t_out = student(rgb), teacher(rgb, depth)
    terms = method.losses(s_out, {k: (v.detach() if torch.is_tensor(v) else [x.detach() for x in v])
                                  for k, v in t_out.items()}, label, 0, 1)
    torch.manual_seed(0)
    expected = F.l1_loss(method.student_encoder(s_out["features"][3]), method.teacher_encoder(t_out["features"][3]))
    assert float(terms["transfer"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    # The aux terms reach the aux head and the teacher-side encoder, never the student.
    student.zero_grad()
    (terms["aux_ce"] + terms["aux_kl"]).backward(retain_graph=True)
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in student.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in method.aux_head.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in method.teacher_encoder.parameters())


def test_lix_channel_terms_recombine_into_cwd():
    """TCKD + b_t ICKD + (1 - b_t) NCKD per (image, class) channel is exactly CWD's KL (absent classes,
    ignored pixels and a class covering a whole image included)."""
    student, teacher, label = dense()
    student, teacher = student.double(), teacher.double()
    label[:, :, 4:] = label[:, :, 4:].clamp(max=K - 2)  # class K-1 rarer; absent on the right half
    label[1] = 3  # one image is a single class: its rest region is empty
    label[1, 0, 0] = 255
    cwd = REGISTRY["cwd"](info(), info(), temperature=4.0)(outputs(student), outputs(teacher), label)["cwd.cwd"]
    terms = channel_terms(student, teacher, label, 4.0)
    recombined = terms["tckd"] + terms["b_t"] * terms["ickd"] + (1 - terms["b_t"]) * terms["nckd"]
    assert float(recombined.mean()) == pytest.approx(float(cwd), rel=1e-9)
    # Fixed weights alpha = 1, beta = 1 drop CWD's (1 - b_t) on NCKD and nothing else.
    fixed = REGISTRY["lix_channel"](info(), info(), dynamic=False)(outputs(student), outputs(teacher), label)
    expected = terms["tckd"] + terms["b_t"] * terms["ickd"] + terms["nckd"]
    assert float(sum(fixed.values())) == pytest.approx(float(expected.mean()), rel=1e-9)


def test_lix_channel_controller_trusts_the_teacher_where_it_localises_the_class():
    """Image of two classes, left half class 0, right half class 1. The teacher is right on class 0 and
    calls class 1 'class 2' (IoU 0): class 1's channel gets no TCKD weight, class 2's (hallucinated) no NCKD
    weight; a student lagging the teacher on class 0 gets more TCKD weight there than one that does not."""
    h, w = 4, 8
    label = torch.zeros(1, h, w, dtype=torch.long)
    label[..., w // 2:] = 1
    teacher = torch.full((1, K, h, w), -3.0)
    teacher[0, 0, :, : w // 2] = 3.0
    teacher[0, 2, :, w // 2:] = 3.0  # wrong class on the right half
    lagging = torch.zeros(1, K, h, w)  # uniform maps: mass 1/2 on class 0's region vs the teacher's ~1
    terms = channel_terms(lagging, teacher, label, 1.0)
    alpha_nc, beta_nc = channel_dwc_weights(teacher, terms, alpha=1.0, beta=1.0, gamma=1.0)
    assert float(alpha_nc[0, 1]) == 0.0 and float(beta_nc[0, 2]) < 1e-5 and float(beta_nc[0, 1]) < 1e-5
    assert float(alpha_nc[0, 0]) > 0 and float(beta_nc[0, 0]) > 0
    assert float(beta_nc.mean()) == pytest.approx(1.0)
    assert float(alpha_nc[terms["target"].any(2)].mean()) == pytest.approx(1.0)
    # Absent, unpredicted classes are trusted for NCKD like a perfectly localised one.
    assert float(beta_nc[0, 5]) == pytest.approx(float(beta_nc[0, 0]))
    # The lag term: the student that already matches the teacher on class 0 gets less TCKD weight there.
    matched = teacher.clone()
    matched[0, 1, :, w // 2:] = 3.0  # and right on class 1, so both present channels compete
    teacher2 = matched.clone()
    lag_student = matched.clone()
    lag_student[0, 0] = 0.0
    a_lag, _ = channel_dwc_weights(teacher2, channel_terms(lag_student, teacher2, label, 1.0), 1.0, 1.0, 1.0)
    assert float(a_lag[0, 0]) > float(a_lag[0, 1])
