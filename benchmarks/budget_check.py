"""Has a training budget converged? Val curves, the plateau rule and held-out scores of finished runs.

    python benchmarks/budget_check.py RUN [RUN ...] --out benchmarks/results/budget_check_16000 [--rule 0.5]
                                      [--baseline student_16000] [--curves-only]

For each run folder (a `lix-train --out` folder with log.csv, config.yaml and final.pt) it prints:
* the plateau rule of the benchmark protocol: val mIoU at the end minus val mIoU at 80 % of the steps
  (the last evaluation at or before that step); a run has plateaued when the gain is below --rule points;
* val / test-in / test-shift mIoU of final.pt (lix-eval's numbers: metrics_<split>.json in the run folder, or
  <run>_metrics_<split>.json in --out, computed once and reused);
* one figure with every run's val curve (curves.png in --out);
* with several seeds: runs named <group>_seed<N> form groups; per group and split the mean ± std over seeds,
  and each group's seed-paired difference to the --baseline group with a 95 % t interval (the protocol's
  statistics, `lix_training.bench_kd.paired_difference`), and per-class IoU gains over --baseline.
With --curves-only only log.csv and config.yaml are read (runs whose weights were not kept, such as the committed
probe logs in benchmarks/results/compact_probe_80x160): the plateau rule and the curves, no held-out scores.
Runs are named by their folder. Figures, not a test: the rule is a property of a finished run.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
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


def metrics_of(run: Path, out: Path) -> dict[str, dict]:
    """lix-eval's metrics of final.pt per split, from metrics files (computed once with lix-eval's code)."""
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
        result[split] = json.loads(path.read_text())
    return result


def group_and_seed(name: str) -> tuple[str, int] | None:
    """("default_16000", 1) for a run folder named default_16000_seed1, None for other names."""
    match = re.fullmatch(r"(.+)_seed(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else None


def class_gains(metrics: dict[str, dict[str, dict]], group: str, baseline: str, split: str) -> list[str]:
    """Per-class IoU gain of group over baseline in points, averaged over their shared seeds, largest first."""
    runs = {parsed: name for name in metrics if (parsed := group_and_seed(name))}
    seeds = sorted({s for g, s in runs if g == group} & {s for g, s in runs if g == baseline})
    gains: dict[str, list[float]] = {}
    for seed in seeds:
        ours, theirs = (metrics[runs[(g, seed)]][split]["per_class_iou"] for g in (group, baseline))
        for name, iou in ours.items():
            if iou is not None and theirs.get(name) is not None:  # None: no pixel of the class in the split
                gains.setdefault(name, []).append(100 * (iou - theirs[name]))
    ranked = sorted(((statistics.mean(v), k) for k, v in gains.items()), reverse=True)
    return [f"{name} {gain:+.1f}" for gain, name in ranked]


def seed_statistics(held_out: dict[str, dict[str, float]], baseline: str) -> list[str]:
    """Markdown lines: per group mean ± std over seeds, and the seed-paired difference to the baseline group."""
    from lix_training.bench_kd import paired_difference

    groups: dict[str, dict[int, dict[str, float]]] = {}
    for name, result in held_out.items():
        parsed = group_and_seed(name)
        if parsed:
            groups.setdefault(parsed[0], {})[parsed[1]] = result
    if baseline not in groups:
        return [f"(no runs named {baseline}_seed<N>: no paired differences)"]
    lines = ["| group | seeds | " + " | ".join(f"{s} mean ± std" for s in SPLITS) + " | "
             + " | ".join(f"{s} − {baseline} [95 % CI]" for s in SPLITS) + " |",
             "|---|---|" + "---:|" * (2 * len(SPLITS))]
    for group, by_seed in sorted(groups.items()):
        cells = []
        for split in SPLITS:
            values = [by_seed[seed][split] for seed in sorted(by_seed)]
            spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.2f}{spread}")
        for split in SPLITS:
            if group == baseline:
                cells.append("—")
                continue
            diff = paired_difference({s: r[split] for s, r in by_seed.items()},
                                     {s: r[split] for s, r in groups[baseline].items()})
            if diff is None:
                cells.append("no shared seed")
            elif diff["n"] < 2:
                cells.append(f"{diff['mean']:+.2f} (one seed, no interval)")
            else:
                cells.append(f"{diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}] (n {diff['n']})")
        lines.append(f"| {group} | {','.join(map(str, sorted(by_seed)))} | " + " | ".join(cells) + " |")
    return lines


def plot(curves: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    # one colour per group (runs named <group>_seed<N>), so a group's seeds read as one band
    group_of = {name: (group_and_seed(name) or (name, 0))[0] for name in curves}
    groups = list(dict.fromkeys(group_of.values()))
    labelled = set()
    for name, curve in curves.items():
        group = group_of[name]
        label = None if group in labelled else group
        labelled.add(group)
        axis.plot([s for s, _ in curve], [v for _, v in curve], marker=".", markersize=3, linewidth=1,
                  color=plt.cm.tab10(groups.index(group) % 10), label=label)
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
    parser.add_argument("--curves-only", action="store_true", help="val curves and the plateau rule only: no "
                        "final.pt is read and no held-out split is scored")
    parser.add_argument("--baseline", default="student_16000",
                        help="group (runs named <group>_seed<N>) the others are paired with, seed by seed")
    args = parser.parse_args()
    not_runs = [str(run) for run in args.runs if not (run / "config.yaml").is_file() or not (run / "log.csv").is_file()]
    if not_runs:
        parser.error(f"not lix-train run folders (no config.yaml and log.csv): {', '.join(not_runs)}")
    args.out.mkdir(parents=True, exist_ok=True)
    curves, held_out_by_run, metrics = {}, {}, {}
    print("| run | steps | val at 80 % (step) | final val | gain over the last 20 % | plateaued | val | test-in "
          "| test-shift |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for run in args.runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        curve = curves[run.name] = val_curve(run)
        step, gain = plateau_gain(curve, config["steps"])
        at = dict(curve)[step]
        scores = "— | — | —"
        if not args.curves_only:
            metrics[run.name] = metrics_of(run, args.out)
            held_out = held_out_by_run[run.name] = {s: 100 * m["miou"] for s, m in metrics[run.name].items()}
            scores = " | ".join(f"{held_out[split]:.2f}" for split in SPLITS)
        print(f"| {run.name} | {config['steps']} | {at:.2f} ({step}) | {curve[-1][1]:.2f} | {gain:+.2f} | "
              f"{'yes' if gain < args.rule else 'no'} | {scores} |")
    if not args.curves_only:
        print()
        print("\n".join(seed_statistics(held_out_by_run, args.baseline)))
        for group in sorted({parsed[0] for name in metrics if (parsed := group_and_seed(name))} - {args.baseline}):
            for split in ("test_in", "test"):
                print(f"\nper-class IoU gain, {group} - {args.baseline}, {split} (mean over shared seeds): "
                      + ", ".join(class_gains(metrics, group, args.baseline, split)))
    plot(curves, args.out / "curves.png")
    print(f"\ncurves: {args.out / 'curves.png'}")


if __name__ == "__main__":
    main()
