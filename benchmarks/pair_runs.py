"""Seed-paired difference between two sets of finished lix-bench-kd runs, e.g. the same row in two tables.

    python benchmarks/pair_runs.py RUNS_A RUNS_B

RUNS_A, RUNS_B: folders holding <key>_seed<N>/result.json (a row's folder under <table>/runs/). Prints, over
the seeds both have, each side's mean val / test-in / test-shift mIoU and A − B with its 95 % t interval
(the benchmark protocol's statistics: `lix_training.bench_kd.paired_difference`) and the per-seed differences.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from lix_training.bench_kd import EVAL_SPLITS, format_difference, paired_difference


def seed_scores(folder: Path) -> dict[int, dict[str, float]]:
    """mIoU (points) per seed and split of every finished run in `folder`."""
    scores = {}
    for path in sorted(folder.glob("*_seed*/result.json")):
        result = json.loads(path.read_text())
        scores[int(result["seed"])] = {split: 100 * result[split]["miou"] for split in EVAL_SPLITS}
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_a", type=Path)
    parser.add_argument("runs_b", type=Path)
    args = parser.parse_args(argv)
    a, b = seed_scores(args.runs_a), seed_scores(args.runs_b)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        print(f"pair_runs: error: {len(seeds)} seed(s) finished in both folders; a paired interval needs 2",
              file=sys.stderr)
        return 2
    print(f"seeds {seeds}")
    for name, scores in (("A", a), ("B", b)):
        print(name, " | ".join(f"{s} {statistics.mean(scores[k][s] for k in seeds):.2f}" for s in EVAL_SPLITS))
    for split in EVAL_SPLITS:
        d = paired_difference({k: a[k][split] for k in seeds}, {k: b[k][split] for k in seeds})
        per_seed = ", ".join(f"{a[k][split] - b[k][split]:+.2f}" for k in seeds)
        print(f"A - B {split}: {format_difference(d, scale=1.0)}  (per seed {per_seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
