"""benchmarks/confirm_readout.py applies the pre-registered rule of the confirmatory replication (seeds 10–19):
H1 needs both tests above 0, H2 reads test-shift (test-in is secondary), nothing is decided before all 30 runs."""

import json
from pathlib import Path

from processes import run_python

FOLDERS = {"student": "student", "default": "lix_channel_logit_only_no_dwc", "cwd": "cwd"}


def write_runs(runs: Path, scores: dict[str, dict[int, tuple[float, float, float]]]) -> None:
    """scores: label -> seed -> (val, test-in, test-shift) mIoU in points, written as lix-bench-kd writes them."""
    for label, per_seed in scores.items():
        for seed, (val, test_in, test) in per_seed.items():
            run = runs / FOLDERS[label] / f"0000abcd_seed{seed}"
            run.mkdir(parents=True)
            result = {"seed": seed, "val": {"miou": val / 100}, "test_in": {"miou": test_in / 100},
                      "test": {"miou": test / 100}}
            (run / "result.json").write_text(json.dumps(result))


def study(default_minus_student: list[tuple[float, float]], default_minus_cwd: list[tuple[float, float]]
          ) -> dict[str, dict[int, tuple[float, float, float]]]:
    """Ten seeds (10–19) of the three rows with the given per-seed (test-in, test-shift) differences."""
    seeds = range(10, 20)
    default = {s: (76.0, 76.0, 70.0) for s in seeds}
    student = {s: (72.0, 76.0 - d_in, 70.0 - d_shift) for s, (d_in, d_shift) in zip(seeds, default_minus_student)}
    cwd = {s: (75.0, 76.0 - d_in, 70.0 - d_shift) for s, (d_in, d_shift) in zip(seeds, default_minus_cwd)}
    return {"student": student, "default": default, "cwd": cwd}


def readout(runs: Path) -> list[str]:
    return run_python("benchmarks/confirm_readout.py", str(runs), check=True).stdout.splitlines()


STEADY = [(3.5 + 0.3 * (i % 3), 3.2 + 0.2 * (i % 2)) for i in range(10)]  # clearly above 0 (and 3.0) on both
SMALL_STEADY = [(0.7 + 0.1 * (i % 2), 0.6 + 0.1 * (i % 3)) for i in range(10)]


def test_both_hypotheses_confirmed_and_the_issue_threshold_reported(tmp_path):
    write_runs(tmp_path, study(STEADY, SMALL_STEADY))
    lines = readout(tmp_path)
    assert lines[0] == "30 of 30 runs finished"
    assert "H1: confirmed" in lines and "H2: confirmed" in lines
    assert "H1 means reach the issue's 3.0 on both tests: yes" in lines
    seeds = "seeds [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]"
    assert any(line.startswith("H2 default - cwd test-shift (primary, " + seeds) for line in lines)


def test_h1_needs_test_shift_too(tmp_path):
    # test-in well above 0 on every seed, test-shift around 0: not confirmed
    write_runs(tmp_path, study([(d_in, (-1) ** i * 1.5) for i, (d_in, _) in enumerate(STEADY)], SMALL_STEADY))
    lines = readout(tmp_path)
    assert "H1: not confirmed" in lines and "H2: confirmed" in lines
    assert "H1 means reach the issue's 3.0 on both tests: no" in lines


def test_h2_reads_test_shift_not_test_in(tmp_path):
    # against CWD: test-in clearly ahead (secondary), test-shift around 0 (primary): not confirmed
    write_runs(tmp_path, study(STEADY, [(0.8, (-1) ** i * 0.9 + 0.1) for i in range(10)]))
    lines = readout(tmp_path)
    assert "H2: not confirmed" in lines and "H1: confirmed" in lines
    assert "H1 means reach the issue's 3.0 on both tests: yes" in lines


def test_nothing_is_decided_before_all_runs_finish_and_other_seeds_are_not_counted(tmp_path):
    scores = study(STEADY, SMALL_STEADY)
    del scores["cwd"][19]
    scores["cwd"][3] = scores["default"][3] = (99.0, 99.0, 99.0)  # a seed outside the study
    write_runs(tmp_path, scores)
    lines = readout(tmp_path)
    assert lines[0].startswith("29 of 30 runs finished — interim figures, no decision")
    assert not any("confirmed" in line for line in lines)
    assert any(line.startswith("H2 default - cwd test-shift (primary, seeds [10, 11, 12, 13, 14, 15, 16, 17, 18])")
               for line in lines)


def test_the_committed_study_reads_without_error():
    runs = Path("benchmarks/results/bench_kd_converged_confirm/runs")
    finished = sum(1 for folder in FOLDERS.values() for _ in (runs / folder).glob("*_seed*/result.json"))
    assert readout(runs)[0].startswith(f"{finished} of 30 runs finished")


def test_a_missing_folder_is_one_readable_line():
    done = run_python("benchmarks/confirm_readout.py", "no/such/runs")
    assert done.returncode == 2 and done.stderr.strip() == "confirm_readout: error: no runs folder no/such/runs"


def test_the_docs_state_the_verdict_the_committed_runs_give():
    """docs/distillation.md's "Result" of the replication is what the readout of the committed runs prints: each
    verdict line, and each difference with its interval in the pages that quote it."""
    import re

    lines = readout(Path("benchmarks/results/bench_kd_converged_confirm/runs"))
    assert lines[0] == "30 of 30 runs finished"
    doc = Path("docs/distillation.md").read_text()
    result = doc.split("**Result (decided", 1)[1].split("\n- Report:", 1)[0]
    for line in lines[1:]:
        if line.startswith(("H1:", "H2:", "H1 means")):
            assert line in result
        else:  # "H1 default - student test-in (primary, seeds [...]): +4.15 [+3.50, +4.81]"
            figure = re.search(r": ([+\-]\d+\.\d\d \[\S+ \S+\])$", line).group(1)
            assert line.split(" (")[0] + " (" in result and figure in result, line
            for page in ("README.md", "docs/results.md"):
                assert figure in Path(page).read_text().replace("−", "-"), (page, line)
