from pathlib import Path

import numpy as np
import pytest
import torch

from lix_ros.core.checkpoint import CheckpointError, atomic_save, load_model, make_checkpoint, read_checkpoint
from lix_ros.core.metrics import confusion_matrix, labelled_miou, scores_from_confusion
from lix_ros.data.classes import CLASS_NAMES
from lix_ros.models import ModelConfig, build_model
from lix_ros.models.layers import group_count


@pytest.mark.parametrize("config", [
    {"kind": "student", "preset": "tiny"},
    {"kind": "teacher", "preset": "tiny", "modality": "depth", "fusion": "intermediate"},
    {"kind": "teacher", "preset": "tiny", "modality": "normals", "fusion": "late"},
    {"kind": "teacher", "preset": "tiny", "modality": "lidar", "fusion": "intermediate"},
])
def test_models_return_logits_features_embedding(config):
    model = build_model(config).eval()
    channels = {"depth": 1, "normals": 3, "lidar": 2}.get(config.get("modality"), 0)
    rgb = torch.randn(2, 3, 64, 96)
    x = torch.randn(2, channels, 64, 96) if channels else None
    out = model(rgb, x)
    assert out["logits"].shape == (2, 19, 64, 96)
    assert [f.shape[-1] for f in out["features"]] == [24, 12, 6, 3]
    assert out["embedding"].shape[-2:] == (16, 24)
    out["logits"].sum().backward()


def test_teacher_uses_its_geometry_input():
    model = build_model({"kind": "teacher", "preset": "tiny", "modality": "depth"}).eval()
    rgb = torch.randn(1, 3, 32, 64)
    a = model(rgb, torch.zeros(1, 1, 32, 64))["logits"]
    b = model(rgb, torch.ones(1, 1, 32, 64))["logits"]
    assert not torch.allclose(a, b)


def test_registry_rejects_bad_configs():
    with pytest.raises(ValueError, match="needs a modality"):
        build_model({"kind": "teacher", "preset": "tiny"})
    with pytest.raises(ValueError, match="unknown preset"):
        build_model({"kind": "student", "preset": "huge"})
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"kind": "student", "colour": "red"})
    with pytest.raises(ValueError, match="unknown norm 'layer'"):  # at config time, before any layer is built
        ModelConfig.from_dict({"kind": "student", "norm": "layer"})
    small = sum(p.numel() for p in build_model({"preset": "small"}).parameters())
    wide = sum(p.numel() for p in build_model({"preset": "small", "width_multiplier": 2.0}).parameters())
    assert wide > 3 * small


@pytest.mark.parametrize("multiplier", [0.5, 0.75, 1.25, 1.5, 1.75])
def test_width_multipliers_build_and_run(multiplier):
    # 1.25 gives 60 decoder channels: GroupNorm must take a group count that divides them
    for config in ({"kind": "student", "preset": "small", "width_multiplier": multiplier},
                   {"kind": "teacher", "preset": "small", "modality": "depth", "width_multiplier": multiplier}):
        model = build_model(config).eval()
        inputs = [torch.zeros(1, 3, 32, 64)] + ([torch.zeros(1, 1, 32, 64)] if config["kind"] == "teacher" else [])
        with torch.no_grad():
            out = model(*inputs)
        assert out["logits"].shape[-2:] == (32, 64)
    for channels, groups in [(60, 6), (48, 8), (20, 5), (8, 2), (4, 1), (3, 1), (36, 6)]:
        assert group_count(channels) == groups


@pytest.fixture()
def saved(tmp_path):
    config = ModelConfig(kind="teacher", preset="tiny", modality="depth")
    model = build_model(config)
    path = tmp_path / "model.pt"
    atomic_save(make_checkpoint(model, config, (64, 128), {"note": "test"}), path)
    return path, model


def test_checkpoint_round_trip(saved):
    path, model = saved
    loaded, ckpt = load_model(path, expect_classes=CLASS_NAMES, expect_modalities=["rgb", "depth"])
    assert ckpt["input_size"] == [64, 128] and ckpt["training"]["note"] == "test"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_batch_norm_checkpoints_round_trip(tmp_path):
    """`model.norm: batch` keeps 0-dim buffers (num_batches_tracked): the digest hashes them like any tensor."""
    from lix_ros.core.checkpoint import weights_digest

    config = ModelConfig(kind="student", preset="tiny", norm="batch")
    model = build_model(config).train()
    model(torch.rand(2, 3, 32, 64))  # running statistics and num_batches_tracked move off their defaults
    path = tmp_path / "bn.pt"
    atomic_save(make_checkpoint(model.eval(), config, (32, 64), {}), path)
    loaded, ckpt = load_model(path)
    state = model.state_dict()
    assert any(t.dim() == 0 for t in state.values())
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    counted = {k: (v + 1 if v.dim() == 0 else v) for k, v in state.items()}
    assert weights_digest(counted) != ckpt["weights_sha256"] == weights_digest(state)


def test_checkpoint_errors_name_the_field(saved, tmp_path):
    path, _ = saved
    with pytest.raises(CheckpointError, match="field 'modalities'"):
        load_model(path, expect_modalities=["rgb"])
    with pytest.raises(CheckpointError, match="field 'classes'"):
        load_model(path, expect_classes=["road", "car"])
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    ckpt = torch.load(path, weights_only=True)
    for field, value, message in (("format_version", 99, "format_version"), ("input_size", [64], "input_size"),
                                  ("classes", ["a"], "classes"), ("arch", {"kind": "dragon"}, "arch")):
        broken = dict(ckpt, **{field: value})
        torch.save(broken, tmp_path / "broken.pt")
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(tmp_path / "broken.pt")
    del ckpt["state_dict"]["head.classifier.weight"]
    torch.save(ckpt, tmp_path / "missing_weight.pt")
    with pytest.raises(CheckpointError, match="field 'state_dict'"):
        load_model(tmp_path / "missing_weight.pt")


def test_a_packaged_checkpoint_is_found_by_its_name(saved, tmp_path, monkeypatch):
    """`student_wide` or `student_wide.pt` reads the packaged file from any working directory; a file of that
    name in the working directory wins; a path with a folder is never redirected; an unknown name's error lists
    the packaged ones."""
    from lix_ros.core.default_checkpoints import package_root, packaged_checkpoints, resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    packaged = package_root() / "checkpoints" / "student_wide.pt"
    assert {"student_small", "student_supervised_small", "student_wide", "student_supervised_wide",
            "teacher_depth_small"} <= set(packaged_checkpoints())
    assert resolve_checkpoint("student_wide") == resolve_checkpoint("student_wide.pt") == packaged
    assert read_checkpoint("student_wide")["arch"]["width_multiplier"] == 1.5
    assert resolve_checkpoint("elsewhere/student_wide.pt") == Path("elsewhere/student_wide.pt")
    assert resolve_checkpoint("student_wide.onnx") == Path("student_wide.onnx")
    local = tmp_path / "student_wide.pt"
    local.write_bytes(saved[0].read_bytes())
    assert resolve_checkpoint("student_wide.pt") == Path("student_wide.pt")
    assert read_checkpoint("student_wide.pt")["arch"]["width_multiplier"] == 1.0  # the local file, not the package
    with pytest.raises(CheckpointError, match=r"checkpoint not found: student_huge \(packaged: .*student_wide"):
        read_checkpoint("student_huge")


def test_checkpoint_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "lix_ros.segmentation", "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "evil.pt")


def test_metrics_known_answer():
    target = np.array([[0, 0, 1, 1, 255]])
    prediction = np.array([[0, 1, 1, 1, 0]])
    confusion = confusion_matrix(target, prediction, 3)
    assert confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0]]
    scores = scores_from_confusion(confusion)
    assert scores.iou[0] == pytest.approx(0.5) and scores.iou[1] == pytest.approx(2 / 3)
    assert np.isnan(scores.iou[2])  # absent and never predicted: not counted in the mean
    assert scores.miou == pytest.approx((0.5 + 2 / 3) / 2)
    assert scores.pixel_accuracy == pytest.approx(3 / 4)


def test_out_of_range_predictions_are_false_negatives():
    """A valid pixel predicted 255 (or any id >= K) is a miss of its class, as Cityscapes counts it."""
    target = np.array([0, 0, 1, 1, 255])
    prediction = np.array([0, 255, 1, 7, 255])
    confusion = confusion_matrix(target, prediction, 3)
    assert confusion.sum() == 4  # every valid ground-truth pixel is counted
    assert confusion[:, 3].tolist() == [1, 1, 0]
    scores = scores_from_confusion(confusion)
    assert scores.iou[0] == pytest.approx(0.5) and scores.iou[1] == pytest.approx(0.5)
    assert scores.pixel_accuracy == pytest.approx(2 / 4)
    # Dropping those pixels (the old behaviour) would score 1.0 on both classes.
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, 10_000)
    pred = np.where(rng.random(10_000) < 0.05, 255, gt)
    assert scores_from_confusion(confusion_matrix(gt, pred, 3)).miou == pytest.approx(0.95, abs=0.01)


def test_labelled_miou_averages_only_the_classes_the_labels_contain():
    """One pixel predicted as a class no label contains: the standard mIoU averages that class in with IoU 0;
    the labelled-class mIoU does not, and still counts the pixel as a miss of its true class."""
    target = np.zeros((100, 100), np.int64)
    target[:, 50:] = 1
    prediction = target.copy()
    prediction[0, 0] = 2  # class 2 is in no label
    scores = scores_from_confusion(confusion_matrix(target, prediction, 3))
    assert scores.iou[2] == 0.0 and scores.miou == pytest.approx((4999 / 5000 + 1) / 3)
    as_dict = scores.as_dict(["a", "b", "c"])
    labelled = labelled_miou(as_dict["per_class_iou"], as_dict["support"])
    assert labelled == pytest.approx((4999 / 5000 + 1) / 2)
    assert labelled < 1.0  # the stray pixel is still an error of class 0
    assert np.isnan(labelled_miou({"a": None}, {"a": 0}))


def _tiny_checkpoint(tmp_path):
    from lix_ros.core.checkpoint import atomic_save, make_checkpoint
    from lix_ros.models import ModelConfig, build_model

    config = ModelConfig(kind="student", preset="tiny")
    path = tmp_path / "tiny.pt"
    atomic_save(make_checkpoint(build_model(config), config, (32, 64)), path)
    return path


def test_corrupted_weight_bytes_are_refused_naming_the_field(tmp_path):
    """Overwriting tensor bytes inside the zip (headers intact) loads fine with torch.load: the digest catches it."""
    import zipfile

    path = _tiny_checkpoint(tmp_path)
    read_checkpoint(path)
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(raw[info.header_offset + k:info.header_offset + k + 2], "little")
                           for k in (26, 28))  # the local header's own lengths (its extra field pads)
    offset = info.header_offset + 30 + name_len + extra_len
    raw[offset:offset + 64] = b"\xff" * 64  # NaN bytes in float32
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(raw))
    assert torch.load(corrupt, weights_only=True)  # torch itself does not notice
    with pytest.raises(CheckpointError, match="weights_sha256"):
        read_checkpoint(corrupt)


def test_non_finite_weights_are_refused_and_old_files_warn(tmp_path):
    from lix_ros.core.checkpoint import atomic_save, with_digest

    path = _tiny_checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and v.numel() > 4)
    ckpt["state_dict"][name][:2] = float("nan")
    atomic_save(with_digest(ckpt), tmp_path / "nan.pt")  # a consistent digest, still refused
    with pytest.raises(CheckpointError, match="non-finite weights"):
        read_checkpoint(tmp_path / "nan.pt")
    old = torch.load(path, weights_only=True)
    del old["weights_sha256"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="weights_sha256"):
        read_checkpoint(tmp_path / "old.pt")


def test_non_finite_output_is_an_error_not_a_mask(tmp_path):
    from lix_ros.core.inference import NonFiniteOutputError, Segmenter

    segmenter = Segmenter(str(_tiny_checkpoint(tmp_path)))
    with torch.no_grad():
        next(segmenter.model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError):
        segmenter.predict(np.zeros((32, 64, 3), np.uint8))


def test_trained_classes_are_schema_checked_naming_the_field(tmp_path):
    from lix_ros.core.checkpoint import output_classes

    path = _tiny_checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    assert "trained_classes" not in ckpt and output_classes(read_checkpoint(path)) is None  # older files: all
    for bad in ([], [0, 19], [3, 3], ["road"], [-1], "0-5", [True]):
        torch.save(dict(ckpt, trained_classes=bad), tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="field 'trained_classes'"):
            read_checkpoint(tmp_path / "bad.pt")
    torch.save(dict(ckpt, trained_classes=list(range(19))), tmp_path / "all.pt")
    assert output_classes(read_checkpoint(tmp_path / "all.pt")) is None
    torch.save(dict(ckpt, trained_classes=[5, 0, 13]), tmp_path / "some.pt")
    assert output_classes(read_checkpoint(tmp_path / "some.pt")) == [5, 0, 13]


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_output_never_names_a_class_the_training_labels_lacked(tmp_path, monkeypatch, backend):
    """A model whose logit of class 6 beats every other class everywhere: recorded as not trained, class 6 is
    never published; the ids are the argmax over the trained classes and the confidence their softmax's
    maximum. Without the record (an older checkpoint) the raw argmax is published."""
    from lix_ros.core.inference import Segmenter

    monkeypatch.setenv("LIX_ROS_CACHE", str(tmp_path / "cache"))
    config = ModelConfig(kind="student", preset="tiny")
    model = build_model(config).eval()
    with torch.no_grad():
        model.head.classifier.bias[6] += 50.0
    trained = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14]
    atomic_save(make_checkpoint(model, config, (32, 64), trained_classes=trained), tmp_path / "trained.pt")
    atomic_save(make_checkpoint(model, config, (32, 64)), tmp_path / "old.pt")
    rgb = np.random.default_rng(0).integers(0, 255, (32, 64, 3), np.uint8)

    raw = Segmenter(str(tmp_path / "old.pt"), backend=backend, warmup=False).predict(rgb)
    assert (raw.ids == 6).all()
    segmenter = Segmenter(str(tmp_path / "trained.pt"), backend=backend, warmup=False)
    assert segmenter.output_classes == trained
    prediction = segmenter.predict(rgb, with_confidence=True)
    x = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255 - segmenter.mean) / segmenter.std
    with torch.no_grad():
        logits = model(x, None)["logits"][0][trained]
    expected = torch.tensor(trained)[logits.argmax(0)].numpy()
    assert set(np.unique(prediction.ids)) <= set(trained)
    assert (prediction.ids == expected).mean() >= 0.999  # onnxruntime's float rounding may flip a near tie
    confidence = (torch.softmax(logits, 0).amax(0) * 255).round().numpy()
    assert np.abs(prediction.confidence.astype(float) - confidence).max() <= 1
