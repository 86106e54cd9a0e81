"""The fast benchmark preset runs every method through the real harness (the ranking is not checked)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_fast_benchmark_writes_table_json_and_plot(tmp_path):
    out = tmp_path / "bench"
    result = subprocess.run([sys.executable, "-m", "training.bench_kd", "--preset", "fast", "--cache-dir",
                             str(tmp_path / "cache"), "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "results.json").read_text())
    methods = [row["method"] for row in report["rows"]]
    assert methods == ["student", "kd", "dkd", "cwd", "at", "pfs", "mkat", "lix_logit", "lix_feature", "lix",
                       "lix_fixed_beta", "lix_balanced", "lix_balanced_fixed_beta", "dkd_balanced", "kd_balanced",
                       "lix_t4_light", "dkd_t4_light", "lix_balanced_feat3", "lix_balanced_feat10"]
    for row in report["rows"]:
        assert 0 <= row["miou_mean"] <= 1 and row["sec_per_step"] > 0
    assert report["rows"][0]["gap_closed_pct"] == 0.0
    assert (out / "results.png").stat().st_size > 1000
    assert "| lix |" in (out / "results.md").read_text()
    # Finished runs are reused: a second invocation trains nothing and reproduces the table.
    again = subprocess.run([sys.executable, "-m", "training.bench_kd", "--preset", "fast", "--cache-dir",
                            str(tmp_path / "cache"), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert json.loads((out / "results.json").read_text())["rows"] == report["rows"]


def test_unknown_method_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.bench_kd", "--methods", "magic", "--out",
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown methods ['magic']" in result.stderr
