"""One table of rows whose runs live in different lix-bench-kd reports, compared seed-paired.

    python benchmarks/converged_table.py LABEL=RUNS [LABEL=RUNS ...] [--baseline LABEL] [--versus LABEL]
                                         [--out table.md]
    python benchmarks/converged_table.py --check table.md    # does the table still match its runs?

Each RUNS is a row's folder under <report>/runs/ (holding <key>_seed<N>/result.json and settings.json), or RUNS:KEY
for one variant of a searched row. The converged rows were run as several reports (the default under one
`--variants-from`, the others under the re-scored one), so no single report holds them all; this script puts them
side by side after checking that they are comparable: every run must record the same base settings (budget, data,
optimiser) and every distilled run the same teacher (weights checksum). It prints (and writes with --out) a
markdown table: per row the seeds, val / test-in / test-shift mean ± std, the paired difference to --baseline
(default: the first row) on both tests and to --versus (e.g. the default) on all three splits, each over the seeds
both rows ran, with its 95 % t interval (`lix_training.bench_kd.paired_difference`), and the share of the
teacher-student gap closed (the teacher's scores from the report's teacher_eval.json). Rows are ordered by val, the
only split anything is chosen on. The table's first line is the command that made it, so a committed table can be
checked against its runs (--check; test/test_converged_table.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import statistics
import sys
from pathlib import Path

from lix_training.bench_kd import EVAL_SPLITS, describe, format_difference, paired_difference

SPLIT_NAMES = {"val": "val", "test_in": "test-in", "test": "test-shift"}


class TableError(Exception):
    """Input that cannot make a table; main prints it as one line."""


def read_row(folder: Path, key: str = "*") -> dict:
    """Scores (points) per seed and split, the variant and the settings of every finished run in `folder` (of
    the variant `key` only, if given)."""
    runs = sorted(folder.glob(f"{key}_seed*/result.json"))
    if not runs:
        raise TableError(f"{folder}: no finished run ({key if key != '*' else '<key>'}_seed<N>/result.json)")
    scores, settings = {}, {}
    for path in runs:
        try:
            result = json.loads(path.read_text())
            seed = int(result["seed"])
            scores[seed] = {split: 100 * result[split]["miou"] for split in EVAL_SPLITS}
            settings[seed] = json.loads((path.parent / "settings.json").read_text())
            missing = {"base", "variant"} - set(settings[seed])  # what check_comparable reads
            if missing:
                raise KeyError(f"settings.json lacks {sorted(missing)}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TableError(f"{path.parent}: not a finished lix-bench-kd run ({type(error).__name__}: {error})"
                             ) from None
    keys = sorted({path.parent.name.rsplit("_seed", 1)[0] for path in runs})
    if len(keys) > 1:  # a searched row: its folder holds every variant tried
        raise TableError(f"{folder}: runs of {len(keys)} variants ({', '.join(keys)}); name one as "
                         f"LABEL={folder}:KEY")
    first = next(iter(settings.values()))
    return {"folder": folder, "scores": scores, "settings": settings, "variant": first["variant"]}


def check_comparable(rows: dict[str, dict]) -> None:
    """Same base settings everywhere, the same teacher for every distilled run: else the table would compare
    different budgets or teachers."""
    bases, teachers = {}, {}
    for label, row in rows.items():
        for seed, settings in row["settings"].items():
            bases.setdefault(json.dumps(settings["base"]), f"{label} seed {seed}")
            if row["variant"].get("distill"):
                teachers.setdefault(settings.get("teacher_sha256") or settings["teacher"], f"{label} seed {seed}")
    if len(bases) > 1:
        raise TableError("runs with different base settings (budget, data or optimiser): "
                         + " vs ".join(bases.values()))
    if len(teachers) > 1:
        raise TableError("distilled runs with different teachers: " + " vs ".join(teachers.values()))


def teacher_scores(rows: dict[str, dict]) -> dict[str, float] | None:
    """The teacher's mIoU (points) per split from the teacher_eval.json of a distilled row's report."""
    for row in rows.values():
        path = row["folder"].parent.parent / "teacher_eval.json"
        if row["variant"].get("distill") and path.exists():
            splits = json.loads(path.read_text())["splits"]
            return {split: 100 * splits[split]["miou"] for split in EVAL_SPLITS}
    return None


def paired_cell(row: dict, reference: dict, split: str) -> str:
    """row − reference over the seeds both ran, as "+m [+low, +high]" (points)."""
    values = {seed: s[split] for seed, s in row["scores"].items()}
    d = paired_difference(values, {seed: s[split] for seed, s in reference["scores"].items()})
    return format_difference(d, scale=1)


def _seeds(seeds: list[int]) -> str:
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    return f"{seeds[0]}–{seeds[-1]}" if contiguous and len(seeds) > 2 else ",".join(map(str, seeds))


def gap_closed(row: dict, baseline: dict, teacher: dict[str, float], split: str) -> float | None:
    """Share (%) of the teacher-baseline gap the row closes, over the seeds both ran."""
    shared = sorted(set(row["scores"]) & set(baseline["scores"]))
    if not shared:
        return None
    base = statistics.mean(baseline["scores"][s][split] for s in shared)
    gap = teacher[split] - base
    return 100 * (statistics.mean(row["scores"][s][split] for s in shared) - base) / gap if gap > 0 else None


def table(rows: dict[str, dict], baseline: str, versus: str | None) -> str:
    teacher = teacher_scores(rows)
    header = ["row", "variant", "seeds", "val", "test-in mean ± std", f"Δ test-in vs {baseline}",
              "test-shift mean ± std", f"Δ test-shift vs {baseline}"]
    if versus:
        header += [f"Δ {SPLIT_NAMES[split]} vs {versus}" for split in EVAL_SPLITS]
    if teacher:
        header.append("gap to the teacher closed, in / shift (%)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 3)]

    def mean(row: dict, split: str) -> float:
        return statistics.mean(s[split] for s in row["scores"].values())

    def mean_std(row: dict, split: str) -> str:
        values = [s[split] for s in row["scores"].values()]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{mean(row, split):.2f} ± {std:.2f}"

    for label in sorted(rows, key=lambda label: -mean(rows[label], "val")):
        row = rows[label]
        cells = [f"**{label}**" if label == versus else label, describe(row["variant"]),
                 _seeds(sorted(row["scores"])), f"{mean(row, 'val'):.2f}"]
        for split in ("test_in", "test"):
            cells += [mean_std(row, split), "–" if label == baseline else paired_cell(row, rows[baseline], split)]
        if versus:
            cells += ["–" if label == versus else paired_cell(row, rows[versus], split) for split in EVAL_SPLITS]
        if teacher:
            closed = [gap_closed(row, rows[baseline], teacher, split) for split in ("test_in", "test")]
            cells.append("–" if label == baseline or None in closed else f"{closed[0]:.0f} / {closed[1]:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    notes = ["", "Δ = paired difference over the seeds both rows ran [95 % t interval]; rows ordered by val mIoU "
             "(%), the only split anything is chosen on. Rows with fewer seeds have wider intervals, and their "
             "means are over other seeds than the rest: compare them by their Δ, not by their means."]
    if teacher:
        notes.append("Teacher (RGB + depth): " + ", ".join(f"{SPLIT_NAMES[s]} {teacher[s]:.2f}" for s in EVAL_SPLITS)
                     + ".")
    notes.append("Rows: " + "; ".join(f"{label} = `{rows[label]['folder']}`" for label in rows) + ".")
    return "\n".join(lines + notes) + "\n"


def parse_rows(items: list[str]) -> dict[str, dict]:
    rows = {}
    labels_of_runs: dict[tuple[Path, str], str] = {}
    for item in items:
        label, sep, folder = item.partition("=")
        folder, _, key = folder.partition(":")
        if not sep or not label or not folder:
            raise TableError(f"row {item!r}: expected LABEL=RUNS_FOLDER or LABEL=RUNS_FOLDER:KEY")
        if label in rows:
            raise TableError(f"row label {label!r} given twice")
        if not Path(folder).is_dir():
            raise TableError(f"row {label}: no such folder {folder}")
        # one set of runs under two labels would show as two rows that look like independent evidence
        runs = (Path(folder).resolve(), key or "*")
        if runs in labels_of_runs:
            raise TableError(f"row {label}: the same runs as row {labels_of_runs[runs]} ({folder})")
        labels_of_runs[runs] = label
        rows[label] = read_row(Path(folder), key or "*")
    return rows


def recorded_arguments(path: Path) -> list[str]:
    """The arguments of the command on a table's first line, without its --out."""
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError) as error:
        raise TableError(f"--check {path}: cannot read its first line ({error})") from None
    prefix = "Made by `python benchmarks/converged_table.py "
    if not first.startswith(prefix) or not first.endswith("`."):
        raise TableError(f"--check {path}: its first line is not the command that made it")
    args = shlex.split(first[len(prefix):-2])
    if "--out" in args:
        at = args.index("--out")
        del args[at:at + 2]
    return args


def check(path: Path) -> int:
    """Make the table again from the command on its first line; 0 if the runs still give it, else 1."""
    args = recorded_arguments(path)
    if "--check" in args:
        raise TableError(f"--check {path}: its command is a check itself")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(args)
    if status != 0:
        return status
    committed, again = path.read_text().splitlines()[1:], stdout.getvalue().splitlines()[1:]
    if committed != again:  # line by line, so a changed order is stale too
        first = next((new for old, new in zip(committed, again) if old != new), None)
        shown = first if first is not None else f"{len(again)} lines instead of {len(committed)}"
        print(f"converged_table: {path} is stale; its runs now give (first differing line): {shown}",
              file=sys.stderr)
        return 1
    print(f"{path}: what its runs give")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="*", metavar="LABEL=RUNS[:KEY]")
    parser.add_argument("--check", type=Path, metavar="TABLE",
                        help="make TABLE again by the command on its first line; exit 1 if the runs no longer give it")
    parser.add_argument("--baseline", help="row the Δ columns on both tests refer to (default: the first row)")
    parser.add_argument("--versus", help="a second reference row, compared on all three splits (e.g. the default)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check(args.check)
        if not args.rows:
            raise TableError("no rows given (LABEL=RUNS ...)")
        rows = parse_rows(args.rows)
        baseline = args.baseline or next(iter(rows))
        for name, label in (("--baseline", baseline), ("--versus", args.versus)):
            if label is not None and label not in rows:
                raise TableError(f"{name} {label}: not a row label (rows: {', '.join(rows)})")
        check_comparable(rows)
    except TableError as error:
        print(f"converged_table: error: {error}", file=sys.stderr)
        return 2
    command = " ".join(["python", "benchmarks/converged_table.py", *(sys.argv[1:] if argv is None else argv)])
    text = f"Made by `{command}`.\n\n" + table(rows, baseline, args.versus)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
