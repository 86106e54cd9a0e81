"""The ONNX Runtime backend: cached export with dynamic size and metadata, provider choice, parity with torch."""

import numpy as np
import pytest

from lix_ros.core.checkpoint import read_checkpoint
from lix_ros.core.default_checkpoints import default_checkpoint
from lix_ros.core.inference import Segmenter
from lix_ros.core.onnx_backend import cached_onnx, choose_providers, onnx_metadata, ort_session
from lix_ros.data.synthetic import render_frame
from lix_ros.data.synthetic.families import split_seeds


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIX_ROS_CACHE", str(tmp_path / "cache"))


def test_export_is_cached_by_content_dynamic_and_carries_metadata(tmp_path):
    checkpoint = default_checkpoint("student")
    ckpt = read_checkpoint(checkpoint)
    path, exported = cached_onnx(ckpt, checkpoint)
    assert exported and path.parent == tmp_path / "cache" / "onnx"
    again, exported_again = cached_onnx(ckpt, checkpoint)
    assert again == path and not exported_again  # the second start loads the file
    meta = onnx_metadata(path)
    assert meta["modalities"] == ["rgb"] and len(meta["classes"]) == 19 and meta["dynamic_size"] is True
    assert meta["normalization"]["mean"] and len(meta["weights_sha256"]) == 64
    assert meta["trained_classes"] == ckpt["trained_classes"] and len(meta["trained_classes"]) == 13
    session = ort_session(path, ["CPUExecutionProvider"])
    for h, w in ((96, 160), (160, 320), (64, 96)):  # any size, one file
        logits = session.run(["logits"], {"rgb": np.zeros((2, 3, h, w), np.float32)})[0]
        assert logits.shape == (2, 19, h, w)


def test_a_start_reads_the_checkpoint_once_and_a_cached_export_builds_no_torch_model(monkeypatch):
    import lix_ros.core.checkpoint as checkpoint_module
    import lix_ros.core.inference as inference_module
    import lix_ros.core.onnx_backend as onnx_module

    Segmenter(default_checkpoint("teacher"), expect_modality="any", backend="onnxruntime", warmup=False)  # exports
    reads, builds = [], []
    monkeypatch.setattr(inference_module, "read_checkpoint",
                        lambda path: reads.append(path) or checkpoint_module.read_checkpoint(path))
    for module in (onnx_module, inference_module):
        monkeypatch.setattr(module, "model_from_checkpoint",
                            lambda *a: builds.append(a) or checkpoint_module.model_from_checkpoint(*a))
    teacher = Segmenter(default_checkpoint("teacher"), expect_modality="any", backend="onnxruntime", warmup=False)
    assert teacher.modality == "depth" and not teacher.onnx_exported
    assert len(reads) == 1 and builds == []
    from lix_ros.core.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="a teacher needs an RGB \\+ X checkpoint"):
        Segmenter(default_checkpoint("student"), expect_modality="any", warmup=False)


def test_providers_not_installed_are_skipped_not_fatal():
    chosen, skipped = choose_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"] and skipped == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    from lix_ros.core.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="none of the execution providers"):
        choose_providers(["TensorrtExecutionProvider"])


def test_backends_agree_on_test_family_frames():
    """Student and teacher, onnxruntime vs torch: >= 99.9 % of pixels get the same class."""
    frames = [render_frame(seed, 320, 160) for seed in split_seeds("test", 6)]
    for role, modality in (("student", None), ("teacher", "depth")):
        models = [Segmenter(default_checkpoint(role), expect_modality=modality, backend=backend)
                  for backend in ("torch", "onnxruntime")]
        same = total = 0
        for frame in frames:
            extra = {"depth": frame.depth, "K": frame.K} if modality else {}
            a, b = (m.predict(frame.rgb, **extra).ids for m in models)
            same += int((a == b).sum())
            total += a.size
        assert same / total >= 0.999, f"{role}: {same / total:.5f}"


def test_class_ids_equals_argmax_including_ties():
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    from lix_ros.core.inference import class_ids

    @settings(max_examples=60, deadline=None)
    @given(arrays(np.float32, st.tuples(st.integers(1, 19), st.integers(1, 6), st.integers(1, 6)),
                  elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0])))  # few values: many ties
    def check(scores):
        np.testing.assert_array_equal(class_ids(scores), scores.argmax(0).astype(np.uint8))

    check()
