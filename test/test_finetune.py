"""lix-finetune on real bags: mixed batches, before/after scores, and a worse model is not installed."""


import numpy as np
import pytest
import torch
from processes import run_module

pytestmark = pytest.mark.slow

TINY = ["model.preset=tiny", "data.render_size=[48, 96]", "data.crop_size=[32, 64]", "data.train_count=16",
        "data.val_count=4", "threads=1", "data.workers=0", "batch_size=4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    args = [a for o in [*TINY, f"data.cache_dir={root / 'cache'}", "steps=60", "val_every=60"] for a in ("--set", o)]
    result = run_module("lix_training.cli", "--quiet", "--out", str(root / "base"), *args)
    assert result.returncode == 0, result.stderr
    return root


def all_road_bag(source, out):
    """A copy of a synthetic bag whose ground truth says 'road' everywhere: fine-tuning on it must hurt."""
    from lix_ros.bag.io import TYPESTORE, BagWriter, make_image, open_reader, stamp_ns

    reader = open_reader(source)
    with BagWriter(out) as writer:
        for connection, log_time, raw in reader.messages():
            if connection.topic == "/lix/gt/semantic":
                msg = TYPESTORE.deserialize_cdr(bytes(raw), connection.msgtype)
                road = np.zeros((msg.height, msg.width), np.uint8)
                writer.write(connection.topic, make_image(stamp_ns(msg), msg.header.frame_id, road, "mono8"), log_time)
            else:
                writer.write_raw(connection.topic, connection.msgtype, bytes(raw), log_time)
    reader.close()


def finetune(checkpoint, *args):
    return run_module("lix_training.finetune", str(checkpoint), "--quiet", "--threads", "1", *map(str, args))


def test_finetune_mixes_reports_before_after_and_installs(trained, tmp_path):
    from lix_ros.bag.synth import write_synthetic_bag

    bag = tmp_path / "hard"
    write_synthetic_bag(bag, 2_000_040, 12, width=96, height=48, quiet=True)
    out = tmp_path / "ft.pt"
    result = finetune(trained / "base" / "final.pt", "--bags", bag, "--out", out, "--steps", "6", "--tolerance", "100")
    assert result.returncode == 0, result.stderr
    expected = "bag frames: 10 for training (10 with ground truth, 0 with teacher pseudo-labels), 2 held out"
    assert expected in result.stdout
    assert "| original val (synthetic val family, 4 frames) |" in result.stdout
    assert "| held-out bag frames (2) |" in result.stdout and f"wrote {out}" in result.stdout
    tuned = torch.load(out, weights_only=True)
    config = tuned["training"]["config"]
    assert config["init_from"].endswith("final.pt") and config["data"]["mix"]["share"] == 0.5
    assert config["optim"]["lr"] == pytest.approx(2e-4)  # 1/10 of the base run's 2e-3
    console = (tmp_path / "ft.pt.run" / "console.log").read_text()
    assert "2 of every 4 samples from bag" in console


def test_a_model_that_got_worse_is_not_installed(trained, tmp_path):
    from lix_ros.bag.synth import write_synthetic_bag

    write_synthetic_bag(tmp_path / "drive", 2_000_041, 12, width=96, height=48, quiet=True)
    all_road_bag(tmp_path / "drive", tmp_path / "road")
    out = tmp_path / "ft.pt"
    args = ["--bags", tmp_path / "road", "--out", out, "--steps", "30", "--mix", "1.0", "--lr", "0.01"]
    refused = finetune(trained / "base" / "final.pt", *args)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "lix-finetune: error: fine-tuning lost" in refused.stderr and "not written" in refused.stderr
    assert not out.exists() and (tmp_path / "ft.pt.run" / "final.pt").exists()
    forced = finetune(trained / "base" / "final.pt", *args, "--force")
    assert forced.returncode == 0 and "(worse on the original val set: --force)" in forced.stdout
    assert out.exists()


def copy_without(source, out, dropped: set[str]):
    """A copy of a bag without some topics (e.g. a drive recorded without its depth camera)."""
    from lix_ros.bag.io import BagWriter, open_reader

    reader = open_reader(source)
    with BagWriter(out) as writer:
        for connection, log_time, raw in reader.messages():
            if connection.topic not in dropped:
                writer.write_raw(connection.topic, connection.msgtype, bytes(raw), log_time)
    reader.close()


def test_a_distilled_student_keeps_its_distillation_terms(trained, tmp_path):
    """Fine-tuning keeps the objective the checkpoint was trained with: dropping a distilled student's KD terms
    pulls it back toward plain cross-entropy (on the demo's hard frames: -7.7 val mIoU)."""
    from lix_ros.bag.synth import write_synthetic_bag

    common = [*TINY, f"data.cache_dir={trained / 'cache'}", "val_every=4"]
    teacher_args = [*common, "steps=4", "model={kind: teacher, preset: tiny, modality: depth}"]
    distill = f"distill={{teacher: {tmp_path / 'teacher' / 'final.pt'}, methods: [{{name: kd, temperature: 2.0}}]}}"
    for out, overrides in (("teacher", teacher_args), ("student", [*common, "steps=4", distill])):
        args = [a for o in overrides for a in ("--set", o)]
        run = run_module("lix_training.cli", "--quiet", "--out", str(tmp_path / out), *args)
        assert run.returncode == 0, run.stderr
    write_synthetic_bag(tmp_path / "hard", 2_000_042, 12, width=96, height=48, quiet=True)
    student = tmp_path / "student" / "final.pt"
    kept = finetune(student, "--bags", tmp_path / "hard", "--out", tmp_path / "kd.pt", "--steps", "2", "--force")
    assert kept.returncode == 0, kept.stderr
    assert "objective: cross-entropy + kd from the teacher" in kept.stdout
    config = torch.load(tmp_path / "kd.pt", weights_only=True)["training"]["config"]
    assert config["distill"]["methods"] == [{"name": "kd", "temperature": 2.0}]
    dropped = finetune(student, "--bags", tmp_path / "hard", "--out", tmp_path / "ce.pt", "--steps", "2", "--force",
                       "--no-distill")
    assert dropped.returncode == 0 and "cross-entropy only (--no-distill drops kd)" in dropped.stdout
    assert torch.load(tmp_path / "ce.pt", weights_only=True)["training"]["config"]["distill"] is None
    copy_without(tmp_path / "hard", tmp_path / "no_depth", {"/camera/depth", "/lidar/points"})
    blind = finetune(student, "--bags", tmp_path / "no_depth", "--out", tmp_path / "nd.pt", "--steps", "2", "--force")
    assert blind.returncode == 0, blind.stderr
    assert "cross-entropy only: the bags have no depth for the teacher" in blind.stdout
