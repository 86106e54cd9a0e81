"""`lix-bench-kd`: distil one teacher into the RGB student with every method, tuned the same way on
validation, over several seeds; report both held-out tests with seed-paired confidence intervals.

Protocol (docs/distillation.md, "Benchmark protocol"):
  * three evaluation sets: `val` (the validation family: selection only), `test_in` (unseen scenes of the
    training family) and `test` (the shifted family: other weather and layout). Nothing is chosen on a test.
  * every row with several `variants` (its small search: loss weights, T) runs each variant on the first
    seed; the variant with the best val mIoU then runs on the other seeds (its first-seed run is reused).
  * ablation rows (`ablation_of`) take the chosen variant of their parent row and change one thing.
  * per row and test: mean +- std over seeds, and the paired difference to the supervised student (same
    seeds) with a 95 % t confidence interval.

Runs are separate `lix-train` processes (`--jobs` at a time, one thread each; a row whose search has
finished runs its other seeds and ablations next, ahead of other rows' searches, so rows complete early).
A run directory is named by the row, a hash of its variant and the seed: a finished run (result.json) is
reused, a killed run continues from its last checkpoint (`lix-train --resume`), changing a variant starts a
new run, and a run folder made with another preset or teacher (settings.json) is refused instead of silently
reused (runs without distillation, such as the supervised student, never saw the teacher and are reused under
any teacher: copy them into a new --out to compare teachers). The teacher is named by its weights' checksum,
not its path: a checkpoint file replaced by another teacher is another teacher, the same weights moved are not.

`--variants-from RESULTS.json` runs each row with the variant another table chose on val (that table's
results.json; ablation rows: their own entry) instead of searching: the `converged` preset uses it to run the
`full` table's choices at the converged budget, where a search per row would cost 3x more. Such a table is
built row by row: a run of some rows into a folder whose report has the same preset and variants adds them to
that report (its rows and seeds kept) instead of replacing it; `--report-only` reports exactly what it is asked.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import math
import statistics
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors
from lix_ros.core.checkpoint import CheckpointError, checkpoint_sha256, read_checkpoint
from lix_ros.core.constants import DATA_CACHE_DIR
from lix_ros.core.metrics import labelled_miou
from lix_training.config import load_config, override_keys, parse_yaml
from lix_training.evaluate import evaluate_checkpoint


def default_config() -> Path:
    """config/training/bench_kd.yaml of the source tree, the colcon share dir or the pip prefix."""
    from lix_ros.core.dds import share_dir

    return share_dir() / "config" / "training" / "bench_kd.yaml"

EVAL_SPLITS = ("val", "test_in", "test")
TESTS = {"test_in": "test-in", "test": "test-shift"}
# Two-sided 95 % Student-t quantiles t_{0.975, dof} for dof = 1..30 (standard table values).
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


# ---------------------------------------------------------------------------------------------- statistics
def paired_difference(values: dict[int, float], reference: dict[int, float]) -> dict | None:
    """Mean of per-seed differences values - reference over the shared seeds, with a 95 % t interval."""
    seeds = sorted(set(values) & set(reference))
    if not seeds:
        return None
    diffs = [values[s] - reference[s] for s in seeds]
    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return {"mean": mean, "n": 1, "low": float("nan"), "high": float("nan")}
    half = T_975[min(len(diffs) - 1, len(T_975)) - 1] * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"mean": mean, "n": len(diffs), "low": mean - half, "high": mean + half}


# ---------------------------------------------------------------------------------------------- rows
def variant_key(variant: dict) -> str:
    return hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:8]


def ablate(variant: dict, row: dict) -> dict:
    """The parent's variant with one change: `drop` methods by name, or `patch` a method's parameters."""
    out = copy.deepcopy(variant)
    methods = [m for m in out.get("distill", []) if m["name"] not in row.get("drop", [])]
    for method in methods:
        method.update(row.get("patch", {}).get(method["name"], {}))
    out["distill"] = methods
    return out


def variant_overrides(variant: dict, teacher: Path) -> list[str]:
    overrides = list(variant.get("set", []))
    if variant.get("distill"):
        overrides.append("distill=" + json.dumps({"teacher": str(teacher), "methods": variant["distill"]}))
    return overrides


def describe(variant: dict) -> str:
    parts = []
    for method in variant.get("distill", []):
        params = ", ".join(f"{k} {v}" for k, v in method.items() if k != "name")
        parts.append(f"{method['name']}" + (f" ({params})" if params else ""))
    parts += variant.get("set", [])
    return "; ".join(parts) or "cross-entropy only"


# ---------------------------------------------------------------------------------------------- one run
def _train(out_dir: Path, overrides: list[str], log: Path) -> None:
    command = [sys.executable, "-m", "lix_training.cli", "--quiet", "--out", str(out_dir), "--set", "threads=1"]
    for item in overrides:
        command += ["--set", item]
    # a killed run continues from its checkpoint; one killed before its first checkpoint starts over
    command.append("--resume" if (out_dir / "last.pt").exists() else "--force")
    with log.open("a") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise CliError(f"training run {out_dir} failed (exit {result.returncode}); see {log}")


def read_curve(run_dir: Path) -> dict:
    """From the run's log.csv: median seconds per step and the validation curve [(step, mIoU)]."""
    with (run_dir / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    seconds = [float(r["sec_per_step"]) for r in rows if r.get("sec_per_step")]
    curve = [(int(r["step"]), float(r["val_miou"])) for r in rows if r.get("val_miou")]
    return {"sec_per_step": statistics.median(seconds) if seconds else float("nan"), "curve": curve}


def recorded_base(base: list[str]) -> list[str]:
    """The base overrides a run's settings.json records: what decides its result, so not the cache folder (the
    same rendered frames) nor data.preload (the same batches, decoded once instead of every step;
    test_preloaded_frames_train_the_same_weights)."""
    return [b for b in base if not b.startswith(("data.cache_dir=", "data.preload="))]


def teacher_checksum(teacher: Path) -> str:
    """The teacher's weights checksum (schema-checked): what a distilled run's settings name its teacher by."""
    try:
        ckpt = read_checkpoint(teacher)
    except CheckpointError as error:
        raise CliError(f"teacher: {error}") from None
    return checkpoint_sha256(ckpt)


def same_settings(recorded: dict, settings: dict) -> bool:
    """Whether a run folder's settings.json matches this run's. A run without distillation (the supervised
    student, aux_depth) never saw the teacher, so it is reused under any teacher (older folders recorded one);
    a distilled run compares the teacher's weights checksum, and its path only in a folder written before
    checksums were recorded."""
    recorded, settings = dict(recorded), dict(settings)
    if settings["teacher"] is None:
        recorded["teacher"] = recorded["teacher_sha256"] = settings["teacher_sha256"] = None
    elif "teacher_sha256" in recorded:
        recorded["teacher"] = settings["teacher"]  # the same weights elsewhere are the same teacher
    else:
        settings.pop("teacher_sha256")
    return recorded == settings


def predicted_unlabelled_class(result: dict, support: dict[str, dict[str, int]] | None) -> bool:
    """Whether a run scored before the output was read over the trained classes only (no `output_classes`
    in its result.json) predicted a class that no label of any evaluation split contains (`support`: label
    pixels per split and class). Only such a run can score differently now: one that never predicted a class
    outside its training labels has the very same argmax."""
    if "output_classes" in result or not support:
        return False
    unlabelled = {cls for cls in support[EVAL_SPLITS[0]] if all(support[s].get(cls, 0) == 0 for s in EVAL_SPLITS)}
    return any(result[split]["per_class_iou"].get(cls) is not None for split in EVAL_SPLITS for cls in unlabelled)


def run_one(job: dict, teacher: Path, base: list[str], data_cfg: dict, teacher_sha: str | None = None,
            support: dict[str, dict[str, int]] | None = None) -> dict:
    run_dir: Path = job["dir"]
    result_path = run_dir / "result.json"
    uses_teacher = bool(job["variant"].get("distill"))
    settings = {"variant": job["variant"], "teacher": str(teacher) if uses_teacher else None,
                "teacher_sha256": teacher_sha if uses_teacher else None, "base": recorded_base(base)}
    settings_path = run_dir / "settings.json"
    if settings_path.exists() and not same_settings(json.loads(settings_path.read_text()), settings):
        raise CliError(f"{run_dir} was run with other settings (preset or teacher changed): use another --out")
    if result_path.exists():
        result = json.loads(result_path.read_text())
        if not predicted_unlabelled_class(result, support):
            return result
        # Scored before the output was restricted to the trained classes, and that restriction changes its
        # score: score it again (its weights if they are still here, else the same run again).
        result_path.rename(run_dir / "result.before_output_classes.json")
    run_dir.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings, indent=2))
    started = time.perf_counter()
    if not (run_dir / "final.pt").exists():
        overrides = [*base, f"seed={job['seed']}", "model.kind=student", *variant_overrides(job["variant"], teacher)]
        _train(run_dir, overrides, run_dir / "train.log")
    from lix_training.trained_classes import record

    # weights from before lix-train recorded their classes get them from their training labels (else a no-op)
    record(run_dir / "final.pt", [f"data.cache_dir={data_cfg['cache_dir']}"])
    result = {"row": job["row"], "variant": job["variant"], "key": variant_key(job["variant"]), "seed": job["seed"],
              **read_curve(run_dir), "wall_seconds": time.perf_counter() - started}
    for split in EVAL_SPLITS:
        metrics = evaluate_checkpoint(run_dir / "final.pt", data_cfg, split)
        result[split] = {"miou": metrics["miou"], "per_class_iou": metrics["per_class_iou"],
                         "frames": metrics["frames"]}
        result["output_classes"] = metrics["output_classes"]
    result_path.write_text(json.dumps(result, indent=2))
    return result


# ---------------------------------------------------------------------------------------------- plan
class Bench:
    def __init__(self, bench: dict, rows: list[str], seeds: list[int], out: Path, teacher: Path, base: list[str],
                 data_cfg: dict, jobs: int, report_only: bool, fixed: dict[str, dict] | None = None,
                 fixed_from: Path | None = None, support: dict[str, dict[str, int]] | None = None):
        self.bench, self.rows, self.seeds, self.out = bench, rows, seeds, out
        self.support = support  # label pixels per evaluation split and class
        self.fixed = fixed or {}  # row -> the variant another table chose (no search, no parent)
        self.fixed_from = fixed_from  # that table's results.json
        self.teacher, self.base, self.data_cfg, self.jobs = teacher, base, data_cfg, jobs
        self.report_only = report_only
        self.teacher_sha = teacher_checksum(teacher) if Path(teacher).is_file() else None
        self.results: dict[tuple[str, str, int], dict] = {}

    def _job(self, row: str, variant: dict, seed: int) -> dict:
        return {"row": row, "variant": variant, "seed": seed,
                "dir": self.out / "runs" / row / f"{variant_key(variant)}_seed{seed}"}

    def _record(self, key: tuple[str, str, int], result: dict) -> None:
        self.results[key] = result
        print(f"{result['row']:>18s} {result['key']} seed {result['seed']}: "
              f"val {100 * result['val']['miou']:.2f}  test-in {100 * result['test_in']['miou']:.2f}  "
              f"test-shift {100 * result['test']['miou']:.2f}"
              f"  ({result['sec_per_step']:.3f} s/step)", flush=True)

    def variants(self, row: str) -> list[dict]:
        if row in self.fixed:
            return [self.fixed[row]]
        spec = self.bench["rows"][row]
        return spec.get("variants") or [{}]

    def searched(self, row: str) -> bool:
        """Whether the row chooses among its own variants (not an ablation, not fixed by --variants-from)."""
        return row not in self.fixed and "ablation_of" not in self.bench["rows"][row]

    def chosen(self, row: str) -> dict | None:
        """The row's variant with the best val mIoU on the first seed (None until all have run)."""
        spec = self.bench["rows"][row]
        if row in self.fixed:
            return self.fixed[row]
        if "ablation_of" in spec:
            parent = self.chosen(spec["ablation_of"])
            return None if parent is None else ablate(parent, spec)
        candidates = []
        for variant in self.variants(row):
            result = self.results.get((row, variant_key(variant), self.seeds[0]))
            if result is None:
                return None
            candidates.append((result["val"]["miou"], variant))
        return max(candidates, key=lambda c: c[0])[1]

    def ready_jobs(self) -> list[dict]:
        """Every run whose variant is known now, in the order they should start: first, in row order, every
        row whose variant is chosen (a finished search's choice, or an ablation of it) on every seed, so rows
        complete early (an interrupted table then has whole rows); then each search variant on the first seed
        (every seed for a row without a search)."""
        first, chosen, searches = self.seeds[0], [], []
        for row in self.rows:
            variant = self.chosen(row)
            if variant is not None:
                chosen += [self._job(row, variant, s) for s in self.seeds]
            if self.searched(row):
                variants = self.variants(row)
                seeds = [first] if len(variants) > 1 else self.seeds
                searches += [self._job(row, v, s) for v in variants for s in seeds]
        return chosen + searches

    def run(self) -> None:
        """Keeps `jobs` runs going; each time one ends, the first ready run not yet done starts. A finished
        search makes its row's other seeds and its ablations ready at once, so they go ahead of other rows'
        searches instead of waiting for them."""
        def key_of(job: dict) -> tuple[str, str, int]:
            return job["row"], variant_key(job["variant"]), job["seed"]

        if self.report_only:
            stale: set = set()
            while True:
                found = [(key_of(j), j["dir"] / "result.json") for j in self.ready_jobs()]
                found = [(k, p) for k, p in found if k not in self.results and k not in stale and p.exists()]
                if not found:
                    return
                for key, path in found:
                    result = json.loads(path.read_text())
                    if predicted_unlabelled_class(result, self.support):
                        stale.add(key)
                        print(f"{path.parent}: scored before the output was read over the trained classes, and "
                              "it predicted a class no label contains: left out until a run scores it again",
                              flush=True)
                    else:
                        self.results[key] = result
        slots = max(1, self.jobs)
        with ThreadPoolExecutor(max_workers=slots) as pool:
            running: dict = {}
            while True:
                for job in self.ready_jobs():
                    if len(running) >= slots:
                        break
                    key = key_of(job)
                    if key not in self.results and key not in running.values():
                        running[pool.submit(run_one, job, self.teacher, self.base, self.data_cfg,
                                                 self.teacher_sha, self.support)] = key
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self._record(running.pop(future), future.result())


# ---------------------------------------------------------------------------------------------- report
def summarize(bench: Bench, teacher_scores: dict[str, float], support: dict[str, dict[str, int]] | None = None
              ) -> list[dict]:
    """Per row: mean, std and paired difference to the student per split; with `support` (ground-truth pixels
    per class and split) also the mIoU over the split's labelled classes (`labelled`, see labelled_miou)."""
    rows = []
    student = bench.chosen("student") if "student" in bench.rows else None
    reference = {split: {} for split in EVAL_SPLITS}
    reference_labelled = {split: {} for split in EVAL_SPLITS}
    if student is not None:
        for seed in bench.seeds:
            result = bench.results.get(("student", variant_key(student), seed))
            for split in EVAL_SPLITS if result else ():
                reference[split][seed] = result[split]["miou"]
                if support:
                    reference_labelled[split][seed] = labelled_miou(result[split]["per_class_iou"], support[split])
    for row in bench.rows:
        variant = bench.chosen(row)
        if variant is None:
            continue
        runs = [r for s in bench.seeds if (r := bench.results.get((row, variant_key(variant), s)))]
        if not runs:
            continue
        entry = {"row": row, "variant": variant, "described": describe(variant), "seeds": [r["seed"] for r in runs],
                 "searched": len(bench.variants(row)) if bench.searched(row) else 0,
                 "sec_per_step": statistics.mean(r["sec_per_step"] for r in runs)}
        for split in EVAL_SPLITS:
            values = {r["seed"]: r[split]["miou"] for r in runs}
            entry[split] = {"mean": statistics.mean(values.values()),
                            "std": statistics.stdev(values.values()) if len(values) > 1 else 0.0,
                            "runs": values, "vs_student": paired_difference(values, reference[split])}
            shared = [seed for seed in values if seed in reference[split]]
            if split != "val" and shared:  # on the seeds both ran: the gap's both ends are paired
                student_mean = statistics.mean(reference[split][seed] for seed in shared)
                row_mean = statistics.mean(values[seed] for seed in shared)
                gap = teacher_scores[split] - student_mean
                entry[split]["gap_closed_pct"] = 100 * (row_mean - student_mean) / gap if gap > 0 else None
            if support:
                labelled = {r["seed"]: labelled_miou(r[split]["per_class_iou"], support[split]) for r in runs}
                entry[split]["labelled"] = {"mean": statistics.mean(labelled.values()), "runs": labelled,
                                            "vs_student": paired_difference(labelled, reference_labelled[split])}
        rows.append(entry)
    return rows


def per_class_gains(bench: Bench, row: str) -> dict[str, dict[str, float]]:
    """Mean per-class IoU difference (row - student) over the shared seeds, per test."""
    out: dict[str, dict[str, float]] = {}
    row_variant, student_variant = bench.chosen(row), bench.chosen("student")
    for split in TESTS:
        diffs: dict[str, list[float]] = {}
        for seed in bench.seeds:
            a = bench.results.get((row, variant_key(row_variant), seed))
            b = bench.results.get(("student", variant_key(student_variant), seed))
            if not a or not b:
                continue
            for cls, iou in a[split]["per_class_iou"].items():
                other = b[split]["per_class_iou"].get(cls)
                if iou is not None and other is not None:
                    diffs.setdefault(cls, []).append(iou - other)
        out[split] = {cls: statistics.mean(v) for cls, v in diffs.items()}
    return out


def plateau(curve: list[tuple[int, float]]) -> float | None:
    """Val mIoU gain over the last 20 % of the steps (None without two points in that window)."""
    if len(curve) < 2:
        return None
    last_step = curve[-1][0]
    before = [m for s, m in curve if s <= 0.8 * last_step]
    return curve[-1][1] - before[-1] if before else None


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def format_difference(d: dict | None, scale: float = 100.0) -> str:
    """A paired_difference as "+m [+low, +high]" (the mean alone for one seed), times `scale` (fractions → %)."""
    if d is None:
        return "–"
    if d["n"] < 2:
        return f"{scale * d['mean']:+.2f}"
    return f"{scale * d['mean']:+.2f} [{scale * d['low']:+.2f}, {scale * d['high']:+.2f}]"


def write_report(bench: Bench, rows: list[dict], teacher_scores: dict[str, float], preset: str,
                 elapsed: float) -> None:
    out = bench.out
    lines = [f"Preset `{preset}`, seeds {bench.seeds}. Teacher (RGB + depth): val {_pct(teacher_scores['val'])}, "
             f"test-in {_pct(teacher_scores['test_in'])}, test-shift {_pct(teacher_scores['test'])} mIoU. "
             "Δ = paired difference to the supervised student over the same seeds, [95 % t interval]."
             + (f" Variants as chosen on val by the table of `{bench.fixed_from}` (no search here)."
                if bench.fixed else ""), "",
             "| row | chosen on val | seeds | val | test-in mean ± std | Δ test-in | test-shift mean ± std "
             "| Δ test-shift | gap closed in / shift (%) | s / step |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gaps = "/".join("–" if r[s].get("gap_closed_pct") is None else f"{r[s]['gap_closed_pct']:.0f}" for s in TESTS)
        searched = f" (best of {r['searched']})" if r["searched"] > 1 else ""
        lines.append(f"| {r['row']} | {r['described']}{searched} | {len(r['seeds'])} | {_pct(r['val']['mean'])} | "
                     f"{_pct(r['test_in']['mean'])} ± {_pct(r['test_in']['std'])} | "
                     f"{format_difference(r['test_in']['vs_student'])} | "
                     f"{_pct(r['test']['mean'])} ± {_pct(r['test']['std'])} | "
                     f"{format_difference(r['test']['vs_student'])} | "
                     f"{gaps} | {r['sec_per_step']:.3f} |")
    labelled = [r for r in rows if "labelled" in r["test"]]
    if labelled and all(abs(r[t]["labelled"]["mean"] - r[t]["mean"]) < 1e-9 for r in labelled for t in TESTS):
        lines += ["", "Over the classes each split's labels contain (`labelled_miou`) every row scores its mIoU: no "
                  "run predicts a class its test's labels lack."]
    elif labelled:
        lines += ["", "The same rows scored over the classes each split's labels contain (`labelled_miou`): the "
                  "mIoU above also averages in, with IoU 0, a class the split's labels lack once a single pixel is "
                  "predicted as it (≈ 4.5 points for one pixel of 20 M on 14 labelled classes); the output is read "
                  "over the trained classes, so only a trained class the split lacks can do that.", "",
                  "| row | test-in, labelled classes | Δ test-in | test-shift, labelled classes | Δ test-shift |",
                  "|---|---:|---:|---:|---:|"]
        for r in labelled:
            lines.append(f"| {r['row']} | {_pct(r['test_in']['labelled']['mean'])} | "
                         f"{format_difference(r['test_in']['labelled']['vs_student'])} | "
                         f"{_pct(r['test']['labelled']['mean'])} | "
                         f"{format_difference(r['test']['labelled']['vs_student'])} |")
    searched_rows = [r for r in rows if r["row"] != "student"]
    report = {"preset": preset, "seeds": bench.seeds, "teacher": teacher_scores, "rows": rows,
              "elapsed_seconds": elapsed}
    if searched_rows:
        best = max(searched_rows, key=lambda r: r["val"]["mean"])
        gains = per_class_gains(bench, best["row"])
        report["best_on_val"] = {"row": best["row"], "per_class_gain": gains}
        lines += ["", f"Per-class IoU gain of the row best on val (**{best['row']}**) over the student "
                  "(mean over seeds):",
                  "", "| class | test-in | test-shift |", "|---|---:|---:|"]
        for cls in gains.get("test_in", {}):
            lines.append(f"| {cls} | {100 * gains['test_in'][cls]:+.2f} | "
                         f"{100 * gains.get('test', {}).get(cls, float('nan')):+.2f} |")
    student_runs = [r for k, r in bench.results.items() if k[0] == "student"]
    if student_runs:
        lines += ["", "Supervised student, val mIoU gain over the last 20 % of steps (plateau check): " +
                  ", ".join(f"seed {r['seed']}: {'–' if (p := plateau(r['curve'])) is None else f'{100 * p:+.2f}'}"
                            for r in sorted(student_runs, key=lambda r: r["seed"]))]
    if searched_rows:
        firsts = {split: max(searched_rows, key=lambda r, s=split: r[s]["mean"])["row"] for split in TESTS}
        report["first"] = firsts
        lines += ["", f"First on test-in: **{firsts['test_in']}**; first on test-shift: **{firsts['test']}** "
                  "(means over seeds; the choice of each row's variant was made on val)."]
    runs = list(bench.results.values())
    if runs:
        total = sum(r.get("wall_seconds", 0.0) for r in runs)
        report["cost"] = {"runs": len(runs), "run_wall_seconds": total}
        # a run is timed by the invocation that finishes it, under that invocation's load, and a resumed run
        # only from its resumption: say so rather than imply one side-by-side condition for all
        lines += ["", f"Cost: {len(runs)} runs, {total / 3600:.1f} h of run wall time as recorded (each run timed "
                  "by the invocation that finished it, beside whatever else ran; a resumed run from its "
                  f"resumption only): ≈ {total / 3600 / max(1, bench.jobs):.1f} h wall with --jobs {bench.jobs}."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(report, indent=2))
    plot(bench, rows, teacher_scores, out / "results.png", out / "curves.png")


def plot(bench: Bench, rows: list[dict], teacher_scores: dict[str, float], bars_path: Path, curves_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2 + 1.3 * len(rows), 4), sharey=False)
    for ax, split in zip(axes, TESTS):
        names = [r["row"] for r in rows]
        means = [100 * r[split]["mean"] for r in rows]
        ax.bar(names, means, yerr=[100 * r[split]["std"] for r in rows], capsize=3,
               color=["#c44" if n.startswith("lix") else "#889" for n in names])
        ax.axhline(100 * teacher_scores[split], color="k", linestyle="--", label="teacher (RGB + depth)")
        ax.set(ylabel="mIoU (%)", title=TESTS[split])
        ax.set_ylim(min(means) - 5 if means else 0, max([*means, 100 * teacher_scores[split]]) + 3)
        ax.tick_params(axis="x", rotation=60)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(bars_path, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # up to 20 rows without a repeated colour
    others = [r for r in rows if r["row"] != "student"]
    best = max(others, key=lambda r: r["val"]["mean"])["row"] if others else None
    for r in rows:
        curves = [run["curve"] for s in r["seeds"]
                  if (run := bench.results.get((r["row"], variant_key(r["variant"]), s))) and run["curve"]]
        steps, low, mean, high = seed_band(curves)
        if not steps:
            continue
        bold = r["row"] in ("student", best)
        line, = ax.plot(steps, mean, linewidth=2 if bold else 0.8, alpha=1 if bold else 0.6,
                        label=f"{r['row']} (mean of {len(curves)} seeds)")
        if bold:  # the spread over seeds of the two rows the README compares
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="step", ylabel="val mIoU (%)",
           title="validation curves (band: min-max over seeds)" + (f"; bold: student, {best} (best on val)"
                                                                   if best else ""))
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(curves_path, dpi=100)
    plt.close(fig)


def seed_band(curves: list[list]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Min, mean and max val mIoU (%) over seeds at each step every curve reached."""
    steps = sorted(set.intersection(*(set(step for step, _ in c) for c in curves))) if curves else []
    at = [dict((step, value) for step, value in c) for c in curves]
    per_step = [[100 * values[step] for values in at] for step in steps]
    return (steps, [min(v) for v in per_step], [statistics.mean(v) for v in per_step],
            [max(v) for v in per_step])


# ---------------------------------------------------------------------------------------------- main
def _override_in_place(base: list[str], changes: list[str]) -> list[str]:
    """base with each `key=value` of changes replacing base's entry of the same key where it stands (new keys
    appended): an extending preset resolves to the very list it would have spelled out, so the settings its
    finished runs recorded stay the same."""
    merged = list(base)
    for change in changes:
        key = override_keys(change)
        at = next((i for i, item in enumerate(merged) if override_keys(item) == key), None)
        if at is None:
            merged.append(change)
        else:
            merged[at] = change
    return merged


def resolve_preset(presets: dict, name: str, seen: tuple[str, ...] = ()) -> dict:
    """The preset with `extends: <parent>` resolved: the parent's keys, its override lists changed key by key."""
    if name not in presets:
        raise CliError(f"unknown preset {name!r}; expected one of {sorted(presets)}")
    if name in seen:
        raise CliError(f"presets extend each other in a cycle: {' -> '.join((*seen, name))}")
    preset = dict(presets[name])
    parent_name = preset.pop("extends", None)
    if parent_name is None:
        return preset
    parent = resolve_preset(presets, parent_name, (*seen, name))
    resolved = {**parent, **preset}
    for key in ("overrides", "teacher_overrides"):
        resolved[key] = _override_in_place(parent.get(key, []), preset.get(key, []))
    return resolved


def _load_bench(path: Path, preset_name: str) -> tuple[dict, dict]:
    if not path.is_file():
        raise CliError(f"benchmark config not found: {path}")
    bench = parse_yaml(path.read_text())
    preset = resolve_preset(bench["presets"], preset_name)
    for name, spec in bench["rows"].items():
        parent = spec.get("ablation_of")
        if parent is not None and parent not in bench["rows"]:
            raise CliError(f"row {name!r}: ablation_of names unknown row {parent!r}")
    return bench, preset


def fixed_variants(path: Path, rows: list[str], specs: dict[str, dict] | None = None) -> dict[str, dict]:
    """Each row's variant as another table chose it (its results.json), for --variants-from. An ablation row
    that table has not run yet (`specs`: the benchmark's rows) is its parent's chosen variant, ablated."""
    if not path.is_file():
        raise CliError(f"--variants-from: no results file at {path}")
    try:
        chosen = {entry["row"]: entry["variant"] for entry in json.loads(path.read_text())["rows"]}
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(f"--variants-from: {path} is not a lix-bench-kd results.json ({error})") from None
    for row in rows:
        parent = (specs or {}).get(row, {}).get("ablation_of")
        if row not in chosen and parent in chosen:
            chosen[row] = ablate(chosen[parent], specs[row])
    missing = [row for row in rows if row not in chosen]
    if missing:
        raise CliError(f"--variants-from: {path} has no chosen variant for rows {missing}")
    return {row: chosen[row] for row in rows}


def with_earlier_report(runner: Bench, preset: str) -> Bench:
    """A run of some rows adds them to the folder's report instead of replacing it: when `--out` already holds
    a report of the same preset whose every row ran the variant `--variants-from` gives it now, the new report
    keeps that report's rows and seeds (scored again from their finished runs). Anything else (a searched table,
    another preset or other variants) is reported as asked; `--report-only` always is."""
    earlier_path = runner.out / "results.json"
    if runner.report_only or not runner.fixed or not earlier_path.is_file():
        return runner
    try:
        earlier = json.loads(earlier_path.read_text())
        recorded = {entry["row"]: entry["variant"] for entry in earlier["rows"]}
        earlier_seeds = [int(seed) for seed in earlier["seeds"]]
        same = earlier["preset"] == preset and set(recorded) <= set(runner.bench["rows"])
        fixed = fixed_variants(runner.fixed_from, list(recorded), runner.bench["rows"]) if same else {}
    except (ValueError, KeyError, TypeError, CliError):
        return runner
    if not same or fixed != recorded:
        return runner
    rows = [*recorded, *(row for row in runner.rows if row not in recorded)]
    seeds = sorted({*earlier_seeds, *runner.seeds})
    if rows == runner.rows and seeds == runner.seeds:
        return runner
    print(f"report: kept the rows and seeds of the earlier report in {runner.out} (rows {', '.join(rows)}; seeds "
          f"{seeds}); --report-only --rows ... --seeds ... reports fewer", flush=True)
    merged = Bench(runner.bench, rows, seeds, runner.out, runner.teacher, runner.base, runner.data_cfg,
                   runner.jobs, True, {**fixed, **runner.fixed}, runner.fixed_from, runner.support)
    merged.run()
    return merged


def teacher_evaluation(teacher: Path, data_cfg: dict, cache: Path) -> dict[str, dict]:
    """The teacher's mIoU and label support per evaluation split, cached in `cache` under a key of the
    checkpoint's bytes and the data settings (where the frames are cached is not one): every invocation,
    --report-only included, would otherwise spend minutes re-scoring the same teacher."""
    data = {k: v for k, v in data_cfg.items() if k != "cache_dir"}
    key = hashlib.sha256(teacher.read_bytes() + json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            print(f"teacher scores reused from {cache}", flush=True)
            return stored["splits"]
    splits = {}
    for split in EVAL_SPLITS:
        metrics = evaluate_checkpoint(teacher, data_cfg, split)
        splits[split] = {"miou": metrics["miou"], "support": metrics["support"]}
    cache.write_text(json.dumps({"key": key, "teacher": str(teacher), "splits": splits}, indent=1))
    return splits


def _teacher(args, bench: dict, preset: dict, base: list[str]) -> Path:
    if args.teacher is not None:
        if not args.teacher.is_file():
            raise CliError(f"teacher checkpoint not found: {args.teacher}")
        return args.teacher
    teacher_dir = args.out / "teacher"
    teacher = teacher_dir / "final.pt"
    if not teacher.exists() and not args.report_only:
        print(f"training the teacher -> {teacher_dir}", flush=True)
        teacher_dir.mkdir(parents=True, exist_ok=True)
        arch = [f"model.{k}={v}" for k, v in bench["teacher"].items()]
        _train(teacher_dir, [*base, *arch, *preset.get("teacher_overrides", [])], teacher_dir / "train.log")
    return teacher


@friendly_errors("lix-bench-kd")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-bench-kd", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--preset", default="fast", help="fast (CI: checks the harness), full (README table, 4000 "
                        "steps), converged (16000 steps; with --variants-from the full table's results.json), "
                        "converged_wide (converged with a 1.5x wider student), converged_2x (converged at 32000 "
                        "steps) or converged_wide_2x (the wider student at 32000 steps)")
    parser.add_argument("--config", type=Path, help="benchmark YAML (default: the package's "
                        "config/training/bench_kd.yaml)")
    parser.add_argument("--teacher", type=Path, help="use this teacher checkpoint instead of training one")
    parser.add_argument("--rows", help="comma-separated subset of the config's rows (student is always added)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each (default: 2)")
    parser.add_argument("--cache-dir", default=DATA_CACHE_DIR, help="rendered synthetic frames (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/bench_kd"), help="output folder (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true", help="train nothing: report the finished runs")
    parser.add_argument("--variants-from", type=Path, help="a results.json whose chosen variants every row runs "
                        "(no search; the `converged` preset's rows come from the `full` table)")
    args = parser.parse_args(argv)
    bench, preset = _load_bench(args.config or default_config(), args.preset)
    rows = [m.strip() for m in args.rows.split(",")] if args.rows else list(bench["rows"])
    unknown = [m for m in rows if m not in bench["rows"]]
    if unknown:
        raise CliError(f"unknown rows {unknown}; the config has {list(bench['rows'])}")
    for row in list(rows):  # an ablation needs its parent's search (unless the variants are given)
        parent = bench["rows"][row].get("ablation_of")
        if parent and parent not in rows and not args.variants_from:
            rows.insert(rows.index(row), parent)
    if "student" not in rows:
        rows.insert(0, "student")
    fixed = fixed_variants(args.variants_from, rows, bench["rows"]) if args.variants_from else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(preset["seeds"])
    base = [*preset["overrides"], f"data.cache_dir={args.cache_dir}"]
    data_cfg = load_config(None, base)["data"]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    teacher = _teacher(args, bench, preset, base)
    if not teacher.is_file():
        raise CliError(f"--report-only: no teacher at {teacher}")
    teacher_eval = teacher_evaluation(teacher, data_cfg, args.out / "teacher_eval.json")
    teacher_scores = {split: metrics["miou"] for split, metrics in teacher_eval.items()}
    support = {split: metrics["support"] for split, metrics in teacher_eval.items()}  # the labels' classes
    print("teacher " + "  ".join(f"{s} {_pct(v)}" for s, v in teacher_scores.items()), flush=True)
    if not args.report_only:  # render the data once before parallel runs share the cache
        from lix_training.data import open_split

        for split in ("train", *EVAL_SPLITS):
            open_split(data_cfg, split, quiet=True)
    runner = Bench(bench, rows, seeds, args.out, teacher, base, data_cfg, args.jobs, args.report_only, fixed,
                   args.variants_from, support)
    runner.run()
    runner = with_earlier_report(runner, args.preset)
    if not runner.results:
        raise CliError(f"no finished runs under {args.out / 'runs'}")
    summary = summarize(runner, teacher_scores, support)
    write_report(runner, summary, teacher_scores, args.preset, time.perf_counter() - started)
    print((args.out / "results.md").read_text())
    print(f"wrote {args.out}/results.md, results.json, results.png, curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
