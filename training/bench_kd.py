"""`lix-bench-kd`: distil one teacher into the student with every method x seeds, same budget; evaluate on
the held-out test family; write a Markdown + JSON table and a bar plot.

Runs are separate `lix-train` processes (`--jobs` at a time, one thread each) and are skipped when their
result exists, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from lix_ros.cli.common import CliError, friendly_errors
from training.config import load_config
from training.evaluate import evaluate_checkpoint

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "training" / "bench_kd.yaml"


def _train(out_dir: Path, overrides: list[str], log: Path) -> None:
    command = [sys.executable, "-m", "training.cli", "--quiet", "--out", str(out_dir), "--set", "threads=1"]
    for item in overrides:
        command += ["--set", item]
    if (out_dir / "last.pt").exists():
        command.append("--resume")
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise CliError(f"training run {out_dir} failed (exit {result.returncode}); see {log}")


def _log_figures(run_dir: Path) -> dict[str, float]:
    """From the run's log.csv: median seconds per step, and the last validation mIoU (the val family:
    what variants may be chosen on)."""
    import csv

    with (run_dir / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    seconds = [float(r["sec_per_step"]) for r in rows]
    val = [float(r["val_miou"]) for r in rows if r.get("val_miou")]
    return {"sec_per_step": statistics.median(seconds) if seconds else float("nan"),
            "val_miou": val[-1] if val else float("nan")}


def run_one(name: str, seed: int, methods: list, teacher: Path, base: list[str], out: Path, data_cfg: dict) -> dict:
    run_dir = out / "runs" / f"{name}_seed{seed}"
    result_path = run_dir / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        if "val_miou" not in result:  # results written before the val column
            result["val_miou"] = _log_figures(run_dir)["val_miou"]
        return result
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = [*base, f"seed={seed}", "model.kind=student"]
    if methods:
        overrides.append("distill=" + json.dumps({"teacher": str(teacher), "methods": methods}))
    started = time.perf_counter()
    if not (run_dir / "final.pt").exists():
        _train(run_dir, overrides, run_dir / "train.log")
    metrics = evaluate_checkpoint(run_dir / "final.pt", data_cfg, "test")
    result = {"method": name, "seed": seed, "miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
              "per_class_iou": metrics["per_class_iou"], **_log_figures(run_dir),
              "wall_seconds": time.perf_counter() - started}
    result_path.write_text(json.dumps(result, indent=2))
    return result


def summarize(results: list[dict], teacher_miou: float, order: list[str]) -> list[dict]:
    rows = []
    by_method = {m: [r for r in results if r["method"] == m] for m in order}
    student = statistics.mean(r["miou"] for r in by_method["student"]) if by_method.get("student") else float("nan")
    for method, runs in by_method.items():
        if not runs:
            continue
        values = [r["miou"] for r in runs]
        mean = statistics.mean(values)
        gap = teacher_miou - student
        rows.append({
            "method": method, "seeds": len(values), "miou_mean": mean,
            "miou_std": statistics.stdev(values) if len(values) > 1 else 0.0, "miou_runs": values,
            "gap_closed_pct": 100 * (mean - student) / gap if gap > 0 else float("nan"),
            "sec_per_step": statistics.mean(r["sec_per_step"] for r in runs),
            "val_miou_mean": statistics.mean(r.get("val_miou", float("nan")) for r in runs),
        })
    return rows


def write_report(rows: list[dict], teacher_miou: float, out: Path, preset: str, elapsed: float) -> None:
    lines = [f"Teacher (RGB + depth, intermediate fusion): **{100 * teacher_miou:.2f}** mIoU on the test family. "
             f"Preset `{preset}`.", "",
             "| method | seeds | mIoU (%) mean ± std | gap closed (%) | val mIoU (%) | s / iteration |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        miou = f"{100 * row['miou_mean']:.2f} ± {100 * row['miou_std']:.2f}"
        val = "–" if math.isnan(row["val_miou_mean"]) else f"{100 * row['val_miou_mean']:.2f}"
        lines.append(f"| {row['method']} | {row['seeds']} | {miou} | {row['gap_closed_pct']:.1f} | {val} | "
                     f"{row['sec_per_step']:.3f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"preset": preset, "teacher_miou": teacher_miou, "rows": rows,
                                                  "elapsed_seconds": elapsed}, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(rows), 4))
    names = [r["method"] for r in rows]
    means = [100 * r["miou_mean"] for r in rows]
    ax.bar(names, means, yerr=[100 * r["miou_std"] for r in rows], capsize=3,
           color=["#c44" if n.startswith("lix") else "#889" for n in names])
    ax.axhline(100 * teacher_miou, color="k", linestyle="--", label="teacher (RGB + depth)")
    ax.set(ylabel="test mIoU (%)", title=f"Distillation into the RGB student ({preset})")
    ax.set_ylim(min(means) - 5 if means else 0, max([*means, 100 * teacher_miou]) + 3)
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=100)
    plt.close(fig)


@friendly_errors("lix-bench-kd")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-bench-kd", description=__doc__)
    parser.add_argument("--preset", default="fast", help="fast (CI) or full (README table)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--teacher", type=Path, help="use this teacher checkpoint instead of training one")
    parser.add_argument("--methods", help="comma-separated subset of the config's methods")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--out", type=Path, default=Path("out/bench_kd"))
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: summarise the runs that already have results")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        raise CliError(f"benchmark config not found: {args.config}")
    bench = yaml.safe_load(args.config.read_text())
    if args.preset not in bench["presets"]:
        raise CliError(f"unknown preset {args.preset!r}; expected one of {sorted(bench['presets'])}")
    preset = bench["presets"][args.preset]
    methods = bench["methods"]
    order = [m.strip() for m in args.methods.split(",")] if args.methods else list(methods)
    unknown = [m for m in order if m not in methods]
    if unknown:
        raise CliError(f"unknown methods {unknown}; the config has {list(methods)}")
    if "student" not in order:
        order.insert(0, "student")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(preset["seeds"])
    base = [*preset["overrides"], f"data.cache_dir={args.cache_dir}"]
    data_cfg = load_config(None, base)["data"]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    teacher = args.teacher
    if teacher is None and args.report_only:
        teacher = args.out / "teacher" / "final.pt"
    if teacher is None:
        teacher_dir = args.out / "teacher"
        teacher = teacher_dir / "final.pt"
        if not teacher.exists():
            print(f"training the teacher -> {teacher_dir}", flush=True)
            teacher_dir.mkdir(parents=True, exist_ok=True)
            arch = [f"model.{k}={v}" for k, v in bench["teacher"].items() if k != "preset"]
            _train(teacher_dir, [*base, *arch, *preset.get("teacher_overrides", [])], teacher_dir / "train.log")
    elif not teacher.is_file():
        raise CliError(f"teacher checkpoint not found: {teacher}")
    teacher_miou = evaluate_checkpoint(teacher, data_cfg, "test")["miou"]
    print(f"teacher test mIoU {100 * teacher_miou:.2f}", flush=True)
    # Render the cache once before parallel runs share it.
    from training.data import load_samples

    for split in ("train", "val", "test") if not args.report_only else ():
        load_samples(data_cfg, split, quiet=True)

    jobs = [(m, s) for m in order for s in seeds]
    if args.report_only:
        done = [args.out / "runs" / f"{m}_seed{s}" / "result.json" for m, s in jobs]
        jobs = [(m, s) for (m, s), path in zip(jobs, done) if path.exists()]
        if not jobs:
            raise CliError(f"--report-only: no finished runs under {args.out / 'runs'}")
    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_one, m, s, methods[m], teacher, base, args.out, data_cfg): (m, s) for m, s in jobs}
        for future in futures:
            result = future.result()
            results.append(result)
            print(f"{result['method']:>15s} seed {result['seed']}: test mIoU {100 * result['miou']:.2f}  "
                  f"({result['sec_per_step']:.3f} s/step)", flush=True)
    rows = summarize(results, teacher_miou, order)
    write_report(rows, teacher_miou, args.out, args.preset, time.perf_counter() - started)
    print((args.out / "results.md").read_text())
    print(f"wrote {args.out}/results.md, results.json, results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
