"""Real (tiny) training runs: kill-and-resume equals an unbroken run; 2-process DDP equals 1 process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from processes import run_module

pytestmark = pytest.mark.slow


def tiny_args(cache, out, *extra):
    return ["--set", "model.preset=tiny", "--set", f"data.cache_dir={cache}", "--set", "data.render_size=[64, 128]",
            "--set", "data.crop_size=[48, 96]", "--set", "data.train_count=16", "--set", "data.val_count=4",
            "--set", "val_every=1000", "--set", "log_every=5", "--set", "threads=1", "--out", str(out), "--quiet",
            *extra]


def train(cache, out, *extra, env=None):
    return run_module("lix_training.cli", *tiny_args(cache, out, *extra), env=env)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    result = train(cache, tmp_path_factory.mktemp("warm"), "--set", "steps=1")  # renders the frames once
    assert result.returncode == 0, result.stderr
    return cache


def descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc: parent of each)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while listing
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def state(path):
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def unbroken(cache, tmp_path_factory):
    """The 120-step run that interrupted runs must reproduce exactly."""
    out = tmp_path_factory.mktemp("unbroken")
    result = train(cache, out, "--set", "steps=120", "--set", "checkpoint_every=5")
    assert result.returncode == 0, result.stderr
    return out


def test_killed_and_resumed_run_equals_unbroken_run(cache, unbroken, tmp_path):
    steps = ["--set", "steps=120", "--set", "checkpoint_every=5"]

    broken_dir = tmp_path / "broken"
    process = subprocess.Popen([sys.executable, "-m", "lix_training.cli", *tiny_args(cache, broken_dir, *steps)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (broken_dir / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    helpers = descendants(process.pid)  # loader workers, their fork server, the resource tracker
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = torch.load(broken_dir / "last.pt", weights_only=True)["resume"]["step"]
    assert 0 < killed_at < 120, "the run was not interrupted"
    assert len(helpers) >= 3, helpers  # the run had loader workers (data.workers 2) to leave behind
    deadline = time.monotonic() + 15
    while (left := [pid for pid in helpers if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"a killed run left processes behind: {left}"
    assert not (broken_dir / "final.pt").exists()

    resumed = train(cache, broken_dir, *steps, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = state(unbroken / "final.pt"), state(broken_dir / "final.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    classes = [torch.load(d / "final.pt", weights_only=True)["trained_classes"] for d in (unbroken, broken_dir)]
    assert classes[0] == classes[1]  # the classes seen before the kill were kept in last.pt
    assert (broken_dir / "log.csv").exists() and (broken_dir / "curves.png").exists()
    # log.csv holds each step once (rows after the checkpoint the run resumed from were redone, not repeated)
    logged = [int(line.split(",")[0]) for line in (broken_dir / "log.csv").read_text().splitlines()[1:]]
    assert logged == sorted(set(logged)) and logged[-1] == 120


def test_ctrl_c_saves_last_pt_and_resume_finishes_the_same_run(cache, unbroken, tmp_path):
    """No checkpoint is due before the end (checkpoint_every 1000): only the Ctrl-C handler saves."""
    steps = ["--set", "steps=120", "--set", "checkpoint_every=1000"]
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "lix_training.cli", *tiny_args(cache, out, *steps)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "log.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    saved = torch.load(out / "last.pt", weights_only=True)["resume"]["step"]
    assert 0 < saved < 120 and not (out / "final.pt").exists()
    assert f"interrupted (SIGINT) at step {saved}" in (out / "console.log").read_text()
    resumed = train(cache, out, *steps, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = state(unbroken / "final.pt"), state(out / "final.pt")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_run_folder_is_protected_and_self_describing(cache, tmp_path):
    out = tmp_path / "run"
    first = train(cache, out, "--set", "steps=4", "--set", "optim.warmup_steps=50")
    assert first.returncode == 0, first.stderr
    console = (out / "console.log").read_text()
    assert "optim.warmup_steps 50 > steps 4: clipped to 4" in console and "val mIoU" in console
    import yaml

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["steps"] == 4 and resolved["optim"]["warmup_steps"] == 50 and resolved["model"]["preset"] == "tiny"
    before = (out / "final.pt").read_bytes()
    again = train(cache, out, "--set", "steps=4")  # a new run into a finished one: refused, nothing touched
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--force" in again.stderr
    assert (out / "final.pt").read_bytes() == before
    forced = train(cache, out, "--set", "steps=4", "--set", "seed=3", "--force")
    assert forced.returncode == 0, forced.stderr
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("4,")  # the old run's log was cleared, not appended to


def test_resume_refuses_a_changed_config(cache, tmp_path):
    out = tmp_path / "run"
    assert train(cache, out, "--set", "steps=10", "--stop-after", "3").returncode == 0
    changed = train(cache, out, "--set", "steps=10", "--set", "optim.lr=0.5", "--resume")
    assert changed.returncode == 2 and "optim.lr: 0.002 -> 0.5" in changed.stderr
    longer = train(cache, out, "--set", "steps=12", "--resume")
    assert longer.returncode == 0, longer.stderr
    assert "steps changed 10 -> 12" in (out / "console.log").read_text()


def test_resume_names_the_teacher_by_its_weights_not_its_path(cache, tmp_path):
    """A teacher moved to another path is the same teacher (resume goes on); other weights at the old path are
    another teacher (refused) — what lix-bench-kd promises for a moved teacher, down to a killed run."""
    import shutil

    from lix_ros.core.checkpoint import atomic_save, make_checkpoint
    from lix_ros.models import ModelConfig, build_model

    def teacher(path, seed):
        torch.manual_seed(seed)
        config = ModelConfig(kind="teacher", preset="tiny", modality="depth")
        atomic_save(make_checkpoint(build_model(config), config, (64, 128), {}), path)

    def distilled(out, path, *extra):
        return train(cache, out, "--set", "steps=10", "--set", f"distill={{teacher: {path}, methods: [{{name: kd}}]}}",
                     *extra)

    teacher(tmp_path / "a.pt", 0)
    run = tmp_path / "run"
    assert distilled(run, tmp_path / "a.pt", "--stop-after", "3").returncode == 0
    shutil.move(tmp_path / "a.pt", tmp_path / "moved.pt")
    teacher(tmp_path / "a.pt", 1)  # other weights where the first teacher was
    other = distilled(run, tmp_path / "a.pt", "--resume")
    assert other.returncode == 2 and "teacher weights_sha256" in other.stderr
    moved = distilled(run, tmp_path / "moved.pt", "--resume")
    assert moved.returncode == 0, moved.stderr
    assert "resuming" in (run / "console.log").read_text()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process_with_same_global_batch(cache, tmp_path):
    common = ["--set", "steps=6", "--set", "batch_size=4", "--set", "optim.name=sgd", "--set", "optim.lr=0.05",
              "--set", "model.dropout=0.0"]
    single = train(cache, tmp_path / "single", *common)
    assert single.returncode == 0, single.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = run_module("torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                     f"--master_port={free_port()}", "-m", "lix_training.cli",
                     *tiny_args(cache, tmp_path / "ddp", *common), env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    meta = torch.load(tmp_path / "ddp" / "final.pt", weights_only=True)["training"]
    assert meta["world_size"] == 2
    a, b = state(tmp_path / "single" / "final.pt"), state(tmp_path / "ddp" / "final.pt")
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-4, f"DDP and single-process weights differ by {worst}"


def test_eval_and_export_commands(cache, tmp_path):
    assert train(cache, tmp_path / "run", "--set", "steps=3").returncode == 0
    checkpoint = tmp_path / "run" / "final.pt"
    data = ["--set", f"data.cache_dir={cache}", "--set", "data.render_size=[64, 128]", "--set", "data.val_count=4"]
    result = run_module("lix_training.evaluate", str(checkpoint), "--split", "val", *data, "--out",
                        str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["frames"] == 4 and 0 <= metrics["miou"] <= 1
    assert sum(map(sum, metrics["confusion"])) == sum(metrics["support"].values()) > 0
    assert (tmp_path / "eval" / "metrics.md").read_text().count("|") > 10
    assert (tmp_path / "eval" / "confusion_run.png").exists()
    result = run_module("lix_training.export", str(checkpoint), "--out", str(tmp_path / "m.onnx"))
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.rsplit("=", 1)[1]) <= 1e-4


def test_bad_inputs_give_one_line(tmp_path):
    result = run_module("lix_training.cli", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and result.stderr.strip().startswith("lix-train: error: config file not found")
    result = run_module("lix_training.cli", "--set", "colour=red")
    assert result.returncode == 2 and "unknown config key" in result.stderr and "Traceback" not in result.stderr
    result = run_module("lix_training.cli", "--set", "data.train_cont=5")
    assert "did you mean 'train_count'?" in result.stderr and "val_fraction" in result.stderr  # known keys listed
    result = run_module("lix_training.cli", "--out", str(tmp_path / "r"), "--set",
                        "distill={teacher: lix_ros/checkpoints/teacher_depth_small.pt, methods: [{name: kd, "
                        "temp: 4}]}")
    assert result.returncode == 2 and "'kd' has no parameter 'temp'; it accepts: weight, temperature" in result.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = run_module("lix_training.evaluate", str(bad))
    assert result.returncode == 2 and "not a readable checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_inherits_from_its_base(tmp_path):
    from lix_training.config import ConfigError, load_config

    (tmp_path / "a.yaml").write_text("steps: 10\ndata: {train_count: 5, val_count: 3}\nmodel: {kind: student}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nsteps: 20\ndata: {val_count: 4}\n")
    config = load_config(tmp_path / "b.yaml")
    assert config["steps"] == 20 and config["data"]["train_count"] == 5 and config["data"]["val_count"] == 4
    (tmp_path / "c.yaml").write_text("base: d.yaml\n")
    (tmp_path / "d.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "c.yaml")
    shipped = load_config("config/training/student_lix.yaml")
    assert shipped["steps"] == load_config("config/training/student.yaml")["steps"]
    assert [m["name"] for m in shipped["distill"]["methods"]] == ["lix_logit", "lix_feature"]


def test_numbers_in_exponent_form_are_numbers_and_optimiser_values_are_checked(tmp_path):
    """`--set optim.lr=1e-4` (and lr: 2e-05 in a file) must reach the optimiser as a float: PyYAML's YAML 1.1
    rule reads them as strings, which crashed lix-finetune --lr 2e-5 with a TypeError deep in AdamW."""
    from lix_training.config import ConfigError, load_config

    assert load_config(None, ["optim.lr=1e-4"])["optim"]["lr"] == pytest.approx(1e-4)
    (tmp_path / "c.yaml").write_text("optim: {lr: 2e-05, weight_decay: 1E-6}\n"
                                     "distill: {methods: [{name: kd, weight: 3e-1}]}\n")
    config = load_config(tmp_path / "c.yaml")
    assert config["optim"]["lr"] == pytest.approx(2e-5) and config["optim"]["weight_decay"] == pytest.approx(1e-6)
    assert config["distill"]["methods"][0]["weight"] == pytest.approx(0.3)
    assert load_config(None, ["out_dir=1e-4x"])["out_dir"] == "1e-4x"  # not a number: stays text
    for override, message in (("optim.lr=fast", "optim.lr must be a number"), ("optim.lr=0", "optim.lr must be > 0"),
                              ("optim.warmup_steps=2.5", "optim.warmup_steps must be an integer")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, [override])


def test_resume_accepts_a_run_that_predates_new_config_keys():
    """A last.pt written before a config key existed resumes if the key has its default (benchmarks span
    harness versions); a real change is still refused."""
    import copy

    from lix_training.config import load_config
    from lix_training.trainer import Trainer

    config = load_config(None, [])
    older = copy.deepcopy(config)
    for key in ("val_fraction", "workers", "frame_size", "vkitti2", "topics", "mix"):
        older["data"].pop(key)
    trainer = Trainer.__new__(Trainer)  # only the check: no model, no data
    trainer.config, trainer.out_dir, trainer.is_main = config, "run", False
    trainer._check_resumed_config(older)
    older["data"]["crop_size"] = [64, 64]
    with pytest.raises(ValueError, match=r"data.crop_size: \[64, 64\] -> \[128, 256\]"):
        trainer._check_resumed_config(older)


def test_trained_classes_are_the_classes_the_trained_batches_labels_contain(cache, unbroken, tmp_path):
    import yaml

    from lix_training.trainer import Trainer

    ckpt = torch.load(unbroken / "final.pt", weights_only=True)
    config = yaml.safe_load((unbroken / "config.yaml").read_text())
    batches = Trainer({**config, "out_dir": str(tmp_path)}, quiet=True).batches  # the same steps' batches
    seen = set()
    for step in range(config["steps"]):
        seen |= {int(c) for c in torch.unique(batches[step]["label"])} - {255}
    assert ckpt["trained_classes"] == sorted(seen) and len(seen) >= 5


def test_eval_reads_the_output_over_the_trained_classes_unless_all_classes(cache, unbroken, tmp_path):
    """A checkpoint whose class-6 logit wins everywhere, recorded as never trained on class 6: lix-eval never
    predicts it; with --all-classes it predicts nothing else."""
    from lix_training.evaluate import evaluate_checkpoint

    ckpt = torch.load(unbroken / "final.pt", weights_only=True)
    assert 6 not in ckpt["trained_classes"]
    ckpt["state_dict"]["head.classifier.bias"][6] += 1000.0
    from lix_ros.core.checkpoint import atomic_save, with_digest

    atomic_save(with_digest(ckpt), tmp_path / "biased.pt")
    data = [f"data.cache_dir={cache}", "data.render_size=[64, 128]", "data.val_count=4"]
    restricted = evaluate_checkpoint(tmp_path / "biased.pt", None, "val", overrides=data)
    everything = evaluate_checkpoint(tmp_path / "biased.pt", None, "val", overrides=data, all_classes=True)
    assert restricted["output_classes"] == ckpt["trained_classes"] and everything["output_classes"] is None
    predicted = [sum(col) for col in zip(*restricted["confusion"])]
    assert predicted[6] == 0 and sum(predicted) > 0
    predicted_all = [sum(col) for col in zip(*everything["confusion"])]
    assert predicted_all[6] == sum(predicted_all) == sum(predicted)


def test_trained_classes_are_recorded_in_an_older_checkpoint_from_its_training_labels(cache, unbroken, tmp_path):
    from lix_ros.core.checkpoint import atomic_save, read_checkpoint
    from lix_training.config import load_config
    from lix_training.data import open_split

    old = torch.load(unbroken / "final.pt", weights_only=True)
    del old["trained_classes"]
    atomic_save(old, tmp_path / "old.pt")
    command = ["lix_training.trained_classes", str(tmp_path / "old.pt"), "--set", f"data.cache_dir={cache}"]
    result = run_module(*command)
    assert result.returncode == 0, result.stderr
    data = load_config(None, [f"data.{k}={json.dumps(v)}" for k, v in old["training"]["config"]["data"].items()
                              if k in ("render_size", "train_count")] + [f"data.cache_dir={cache}"])["data"]
    frames = open_split(data, "train", quiet=True)
    labels = set()
    for i in range(len(frames)):
        labels |= {int(c) for c in np.unique(frames[i].label)} - {255}
    recorded = read_checkpoint(tmp_path / "old.pt")
    assert recorded["trained_classes"] == sorted(labels)
    assert recorded["weights_sha256"] == old["weights_sha256"]
    again = run_module(*command)
    assert again.returncode == 0 and "already records trained_classes" in again.stdout
    missing = run_module(command[0], str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not found" in missing.stderr
