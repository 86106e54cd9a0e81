"""benchmarks/bench_nodes.py --compare: another student timed beside the default one (figures, not timings)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import torch
from processes import run_python

from lix_ros.core.default_checkpoints import default_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_nodes.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return run_python(str(SCRIPT), *args, timeout=300)


def test_compare_prints_one_row_per_backend_and_input_with_the_parameter_count():
    student = default_checkpoint("student")
    result = run("--compare", student, "--compare-only", "--frames", "3", "--backends", "torch")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(f"| {student} |")]
    assert [row.split(" | ")[3] for row in rows] == ["model input", "640x480", "1280x720"]
    state = torch.load(student, map_location="cpu", weights_only=True)["state_dict"]
    learned = sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running_" not in k)
    assert f"| {learned / 1e6:.2f} M | torch |" in rows[0]
    for row in rows:
        other, default, ratio = re.findall(r"([0-9.]+)(?:x)? \|", row)[-3:]
        assert float(other) > 0 and float(default) > 0
        # the printed times are rounded to 0.1 ms, the ratio is of the unrounded medians
        assert abs(float(ratio) - float(other) / float(default)) < 0.03


def test_compare_with_a_missing_checkpoint_exits_with_one_line(tmp_path):
    result = run("--compare", str(tmp_path / "missing.pt"), "--compare-only", "--backends", "torch")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith("missing.pt not found")
    assert "Traceback" not in result.stderr
