"""benchmarks/budget_check.py on committed run logs: the plateau rule from val curves alone (--curves-only)."""

from pathlib import Path

from processes import run_python

PROBES = Path("benchmarks/results/compact_probe_80x160")


def test_curves_only_applies_the_plateau_rule_to_logs_without_weights(tmp_path):
    runs = [PROBES / "student_bn_lr1e-2_8k", PROBES / "student_tiny_bn_lr5e-3_8k"]
    assert not any((run / "final.pt").exists() for run in runs)  # logs only: nothing to score
    done = run_python("benchmarks/budget_check.py", *map(str, runs), "--out", str(tmp_path), "--curves-only",
                      check=True)
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in done.stdout.splitlines()
            if line.startswith("| student_")}
    # val 67.92 at step 6400 (80 % of 8000) -> 69.12 at the end: +1.20, not a plateau under the 0.5 rule
    assert rows["student_bn_lr1e-2_8k"][2:6] == ["67.92 (6400)", "69.12", "+1.20", "no"]
    assert rows["student_tiny_bn_lr5e-3_8k"][4:6] == ["+0.09", "yes"]
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    done = run_python("benchmarks/budget_check.py", str(tmp_path), "--out", str(tmp_path), "--curves-only")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"not lix-train run folders (no config.yaml and log.csv): {tmp_path}" in done.stderr
