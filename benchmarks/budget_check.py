"""Has a training budget converged? Val curves, the plateau rule and held-out scores of finished runs.

    python benchmarks/budget_check.py RUN [RUN ...] --out benchmarks/results/budget_check_16000 [--rule 0.5]

For each run folder (a `lix-train --out` folder with log.csv, config.yaml and final.pt) it prints:
* the plateau rule of the benchmark protocol: val mIoU at the end minus val mIoU at 80 % of the steps
  (the last evaluation at or before that step); a run has plateaued when the gain is below --rule points;
* val / test-in / test-shift mIoU of final.pt (lix-eval's numbers: metrics_<split>.json in the run folder, or
  <run>_metrics_<split>.json in --out, computed once and reused);
* one figure with every run's val curve (curves.png in --out).
Runs are named by their folder. Figures, not a test: the rule is a property of a finished run.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml

SPLITS = ("val", "test_in", "test")


def val_curve(run: Path) -> list[tuple[int, float]]:
    """(step, val mIoU in %) of the run's log, in step order."""
    with open(run / "log.csv", newline="") as handle:
        rows = [(int(r["step"]), 100 * float(r["val_miou"])) for r in csv.DictReader(handle) if r.get("val_miou")]
    return sorted(rows)


def plateau_gain(curve: list[tuple[int, float]], steps: int, share: float = 0.8) -> tuple[int, float]:
    """(step compared against, val gain in points from it to the end) over the last (1 - share) of the run."""
    before = [(step, value) for step, value in curve if step <= share * steps]
    if not before:
        raise ValueError("the run has no validation at or before 80 % of its steps")
    step, value = before[-1]
    return step, curve[-1][1] - value


def scores(run: Path, out: Path) -> dict[str, float]:
    """mIoU (%) of final.pt per split, from metrics files in out (computed once with lix-eval's code)."""
    from lix_training.evaluate import evaluate_checkpoint

    result = {}
    for split in SPLITS:
        path = run / f"metrics_{split}.json"  # lix-eval output kept in the run folder (committed checks)
        if not path.is_file():
            path = out / f"{run.name}_metrics_{split}.json"
        if not path.is_file():
            metrics = evaluate_checkpoint(run / "final.pt", None, split)
            metrics.pop("confusion")
            path.write_text(json.dumps(metrics, indent=1))
        result[split] = 100 * json.loads(path.read_text())["miou"]
    return result


def plot(curves: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, curve in curves.items():
        axis.plot([s for s, _ in curve], [v for _, v in curve], marker=".", label=name)
    axis.set_xlabel("step")
    axis.set_ylabel("val mIoU (%)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="lix-train run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics files and curves.png")
    parser.add_argument("--rule", type=float, default=0.5, help="plateau: val gain over the last 20 %% below this")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    curves = {}
    print("| run | steps | val at 80 % (step) | final val | gain over the last 20 % | plateaued | val | test-in "
          "| test-shift |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for run in args.runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        curve = curves[run.name] = val_curve(run)
        step, gain = plateau_gain(curve, config["steps"])
        at = dict(curve)[step]
        held_out = scores(run, args.out)
        print(f"| {run.name} | {config['steps']} | {at:.2f} ({step}) | {curve[-1][1]:.2f} | {gain:+.2f} | "
              f"{'yes' if gain < args.rule else 'no'} | {held_out['val']:.2f} | {held_out['test_in']:.2f} | "
              f"{held_out['test']:.2f} |")
    plot(curves, args.out / "curves.png")
    print(f"\ncurves: {args.out / 'curves.png'}")


if __name__ == "__main__":
    main()
