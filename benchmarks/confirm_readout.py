"""Read out the confirmatory replication pre-registered on 2026-12-07 (docs/distillation.md, "a confirmatory
replication"): fresh seeds 10–19 of the supervised student, the default (channel-wise DKD) and CWD ×10.

    python benchmarks/confirm_readout.py [RUNS]

RUNS: the study's runs folder (default benchmarks/results/bench_kd_converged_confirm/runs). The rule, as
registered, is applied here so that nobody applies it by eye:
- H1: the default minus the student, over seeds 10–19, has a 95 % t interval above 0 on test-in and on test-shift.
- H2: the default minus CWD ×10 on test-shift, over seeds 10–19, has its interval above 0 (test-in: secondary).
Nothing is decided until all 30 runs have finished; before that it prints the interim figures, marked as such.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pair_runs import seed_scores

from lix_training.bench_kd import format_difference, paired_difference

SEEDS = tuple(range(10, 20))
ROWS = {"student": "student", "default": "lix_channel_logit_only_no_dwc", "cwd": "cwd"}
SPLIT_NAMES = {"test_in": "test-in", "test": "test-shift"}
# (name, row the default is compared with, primary splits, secondary splits), as registered
HYPOTHESES = (("H1", "student", ("test_in", "test"), ()), ("H2", "cwd", ("test",), ("test_in",)))
DEFAULT_RUNS = Path(__file__).resolve().parent / "results" / "bench_kd_converged_confirm" / "runs"


def study_scores(runs: Path) -> dict[str, dict[int, dict[str, float]]]:
    """Per row, the registered seeds that have finished (any other seed in the folder is not part of the study)."""
    scores = {}
    for label, folder in ROWS.items():
        found = seed_scores(runs / folder) if (runs / folder).is_dir() else {}
        scores[label] = {seed: s for seed, s in found.items() if seed in SEEDS}
    return scores


def readout(scores: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    """Printable lines: each hypothesis' differences, and its verdict once every run has finished."""
    finished = sum(len(s) for s in scores.values())
    complete = finished == len(ROWS) * len(SEEDS)
    lines = [f"{finished} of {len(ROWS) * len(SEEDS)} runs finished"
             + ("" if complete else " — interim figures, no decision (the rule reads them only at 30)")]
    primary_means: dict[str, list[float]] = {}
    for name, other, primary, secondary in HYPOTHESES:
        means = primary_means.setdefault(name, [])
        shared = sorted(set(scores["default"]) & set(scores[other]))
        above = True
        for split in (*primary, *secondary):
            d = paired_difference({k: scores["default"][k][split] for k in shared},
                                  {k: scores[other][k][split] for k in shared})
            role = "primary" if split in primary else "secondary"
            lines.append(f"{name} default - {other} {SPLIT_NAMES[split]} ({role}, seeds {shared}): "
                         f"{format_difference(d, scale=1.0)}")
            if split in primary:
                above = above and d is not None and d["n"] >= 2 and d["low"] > 0
                if d is not None:
                    means.append(d["mean"])
        if complete:
            lines.append(f"{name}: {'confirmed' if above else 'not confirmed'}")
    if complete:
        reached = min(primary_means["H1"]) >= 3.0
        lines.append("H1 means reach the issue's 3.0 on both tests: " + ("yes" if reached else "no"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="?", default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"confirm_readout: error: no runs folder {args.runs}", file=sys.stderr)
        return 2
    lines = readout(study_scores(args.runs))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
