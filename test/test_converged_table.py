"""benchmarks/converged_table.py on the committed converged runs: rows from two reports in one seed-paired table,
and the refusal to pool runs of other budgets or teachers."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from processes import run_python

from lix_training.bench_kd import EVAL_SPLITS

RESULTS = Path("benchmarks/results")
STUDENT = RESULTS / "bench_kd_converged_rescored/runs/student"
# the default student's row since 2026-12-07 (channel-wise DKD) and the default until then (controller on)
DEFAULT = RESULTS / "bench_kd_converged_rescored/runs/lix_channel_logit_only_no_dwc"
LIX_CHANNEL_LOGIT = RESULTS / "bench_kd_converged_teacher16000/runs/lix_channel_logit_only"
CWD = RESULTS / "bench_kd_converged_rescored/runs/cwd"


def table(*args: str) -> subprocess.CompletedProcess:
    return run_python("benchmarks/converged_table.py", *args)


def cells(stdout: str) -> dict[str, list[str]]:
    rows = [line.strip("| ").split(" | ") for line in stdout.splitlines() if line.startswith("| ")]
    return {row[0].strip("*"): row for row in rows[1:]}


def pair(a: Path, b: Path) -> tuple[list[str], dict[str, str]]:
    """pair_runs.py A B on committed runs: the seeds it paired and, per split in its order, 'A - B [interval]'."""
    import re

    done = run_python("benchmarks/pair_runs.py", str(a), str(b), check=True)
    seeds = re.search(r"seeds \[(.*)\]", done.stdout).group(1).split(", ")
    return seeds, dict(re.findall(r"A - B (\w+): (\S+ \[\S+ \S+\])", done.stdout))


def test_rows_of_two_reports_are_paired_per_seed(tmp_path):
    out = tmp_path / "table.md"
    done = table(f"student={STUDENT}", f"default={DEFAULT}", f"cwd={CWD}", "--versus", "default", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text() == done.stdout
    rows = cells(done.stdout)
    assert list(rows) == ["default", "cwd", "student"]  # ordered by val: 76.87, 76.04, 72.86
    # the README's figures for the default (seeds 0-9): +3.75 [+2.85, +4.65] test-in, +3.48 [+2.19, +4.78] shift
    assert rows["default"][2:8] == ["0–9", "76.87", "76.20 ± 0.66", "+3.75 [+2.85, +4.65]", "70.06 ± 0.71",
                                    "+3.48 [+2.19, +4.78]"]
    assert rows["default"][-1] == "24 / 19"
    # and CWD x10 against the default on val / test-in / test-shift (pair_runs.py gives the same)
    assert rows["cwd"][8:11] == ["-0.83 [-1.49, -0.17]", "-0.71 [-1.31, -0.11]", "-0.56 [-1.07, -0.06]"]
    assert rows["student"][5] == "–" and rows["default"][8] == "–"


def test_pair_runs_agrees_with_the_table():
    done = run_python("benchmarks/pair_runs.py", str(CWD), str(DEFAULT), check=True)
    assert "A - B test_in: -0.71 [-1.31, -0.11]" in done.stdout


def test_runs_of_another_budget_or_teacher_are_refused():
    other_budget = table(f"student={STUDENT}", f"student_4000={RESULTS / 'bench_kd_full/runs/student'}")
    assert other_budget.returncode == 2 and "Traceback" not in other_budget.stderr
    assert "different base settings" in other_budget.stderr
    # the same row distilled from the 3000-step teacher
    old_teacher = RESULTS / "bench_kd_converged/runs/lix_channel_logit_only"
    other_teacher = table(f"new={LIX_CHANNEL_LOGIT}", f"old={old_teacher}")
    assert other_teacher.returncode == 2 and "different teachers" in other_teacher.stderr
    # a supervised run never saw a teacher: pooled under any
    assert table(f"default={DEFAULT}", f"student={STUDENT}").returncode == 0


def test_the_same_runs_under_two_labels_are_refused():
    done = table(f"cwd={CWD}", f"student={STUDENT}", f"cwd_again={CWD}/")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "row cwd_again: the same runs as row cwd" in done.stderr


def test_a_searched_row_needs_its_variant_named():
    searched = RESULTS / "bench_kd_full/runs/kd"
    done = table(f"kd={searched}")
    assert done.returncode == 2 and "name one as" in done.stderr
    key = sorted(p.name.rsplit("_seed", 1)[0] for p in searched.glob("*_seed0"))[0]
    chosen = table(f"kd={searched}:{key}")
    assert chosen.returncode == 0, chosen.stderr
    assert list(cells(chosen.stdout)) == ["kd"]


def test_a_broken_run_is_one_line(tmp_path):
    run = tmp_path / "cwd" / "abc_seed0"
    shutil.copytree(next(CWD.glob("*_seed0")), run, ignore=shutil.ignore_patterns("*.pt", "*.log", "*.png"))
    result = json.loads((run / "result.json").read_text())
    del result["test"]
    (run / "result.json").write_text(json.dumps(result))
    done = table(f"cwd={run.parent}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{run}: not a finished lix-bench-kd run (KeyError" in done.stderr


def test_the_committed_table_is_what_its_runs_give_and_the_readme_shows_it():
    """benchmarks/results/converged_table.md made again by the command on its first line (--check): a run added
    or a row changed without making the table again fails here; and the README shows that table."""
    committed = RESULTS / "converged_table.md"
    done = table("--check", str(committed))
    assert done.returncode == 0, done.stderr
    readme = Path("README.md").read_text()
    shown = readme.split("<!-- converged table: begin -->\n")[1].split("<!-- converged table: end -->")[0]
    assert shown == committed.read_text().split("\n", 2)[2]


def test_a_stale_table_fails_the_check(tmp_path):
    stale = tmp_path / "table.md"
    stale.write_text((RESULTS / "converged_table.md").read_text().replace("| 76.87 |", "| 76.85 |"))
    done = table("--check", str(stale))
    assert done.returncode == 1 and "is stale" in done.stderr and "| 76.87 |" in done.stderr
    # the same lines in another order are stale too
    lines = (RESULTS / "converged_table.md").read_text().splitlines(keepends=True)
    swapped = [*lines[:4], lines[5], lines[4], *lines[6:]]
    stale.write_text("".join(swapped))
    reordered = table("--check", str(stale))
    assert reordered.returncode == 1 and "is stale" in reordered.stderr


@pytest.mark.parametrize("report, distilled, marker", [
    ("bench_kd_converged_2x", "lix_channel_logit_only", "**LIX channel-wise − supervised, both at 32000 steps**"),
    ("bench_kd_converged_wide_2x", "lix_channel_logit_only",
     "**1.5× wide: LIX channel-wise − supervised, both at 32000 steps**"),
    ("bench_kd_converged_confirm", "lix_channel_logit_only_no_dwc",
     "**the default − supervised, fresh seeds (pre-registered replication)**"),
])
def test_readme_paired_rows_are_what_the_committed_runs_give(report, distilled, marker):
    """The summary rows that pair a distilled student with the supervised one outside the converged table (the
    pre-registered checks at twice the budget, default and 1.5x wide student, and the replication on fresh
    seeds), in the README and in docs/results.md, state what pair_runs.py computes from the committed runs, on
    the seeds the row names."""
    runs = RESULTS / report / "runs"
    seeds, computed = pair(runs / distilled, runs / "student")
    first, last = seeds[0], seeds[-1]
    assert tuple(computed) == EVAL_SPLITS
    for page in ("README.md", "docs/results.md"):
        rows = [line for line in Path(page).read_text().splitlines() if marker in line]
        assert len(rows) == 1, f"{page}: {len(rows)} rows with {marker}"
        cells_of_row = [cell.strip().strip("*").replace("−", "-") for cell in rows[0].strip("|").split("|")]
        assert cells_of_row[1].replace("–", "-") == f"{first}-{last}", page
        assert cells_of_row[2:5] == list(computed.values()), page


def test_readme_results_state_only_figures_of_the_detailed_page():
    """The README's short "Results" quotes intervals; each must be one that docs/results.md (which gives every
    figure's runs and command) or the converged table states, so the summary a user reads cannot drift."""
    readme = Path("README.md").read_text()
    summary = readme.split("\n## Results\n", 1)[1].split("<!-- converged table: begin -->")[0]
    sources = Path("docs/results.md").read_text() + (RESULTS / "converged_table.md").read_text()
    assert_quotes_only(summary, sources)


def test_docs_summary_states_only_figures_measured_elsewhere():
    """docs/distillation.md opens with "Where things stand": every interval it quotes must be one the README,
    docs/results.md, the converged table or the detailed sections of the same page state, so the summary cannot
    drift from what the committed runs give."""
    doc = Path("docs/distillation.md").read_text()
    summary, details = doc.split("## Where things stand", 1)[1].split("\n## ", 1)
    pages = [Path(page).read_text() for page in ("README.md", "docs/results.md")]
    assert_quotes_only(summary, details + "".join(pages) + (RESULTS / "converged_table.md").read_text())


def assert_quotes_only(summary: str, sources: str) -> None:
    """Every 'difference [95 % interval]' the summary quotes (at least ten) appears in the sources."""
    import re

    interval = r"[+\-]\d+\.\d\d \[[+\-]\d+\.\d\d, [+\-]\d+\.\d\d\]"
    quoted = re.findall(interval, summary.replace("−", "-"))
    assert len(quoted) >= 10
    assert [figure for figure in quoted if figure not in sources.replace("−", "-")] == []


@pytest.mark.parametrize("row", ["pfs", "kd", "dkd", "lix"])
def test_the_default_leads_each_published_pixel_wise_row_as_the_readme_says(row):
    """The README says the default leads every published pixel-wise method (seeds 0-4; PFS and KD pre-registered
    on 2026-12-08) with 95 % intervals above 0 on both tests: pair_runs.py on the committed runs must give that,
    and the figures the README quotes for PFS and KD must be the ones it computes."""
    seeds, computed = pair(DEFAULT, RESULTS / "bench_kd_converged_rescored/runs" / row)
    assert seeds == ["0", "1", "2", "3", "4"]
    for split in ("test_in", "test"):
        low = float(computed[split].split("[")[1].split(",")[0])
        assert low > 0, f"the default minus {row} on {split}: {computed[split]}"
    readme = " ".join(Path("README.md").read_text().replace("−", "-").split())  # figures wrap across lines
    if row in ("pfs", "kd"):
        assert computed["test_in"] in readme and computed["test"] in readme
