"""The benchmark harness: search on val, ablations of the chosen variant, paired statistics, resume.

The fast preset runs rows through the real harness (tiny models, a few steps: the ranking is not checked
here; the README table is the `full` preset)."""

import json
import math
from pathlib import Path

import pytest
from processes import run_module, run_python

from lix_training.bench_kd import EVAL_SPLITS, paired_difference, plateau, seed_band


def shipped_preset(name: str) -> dict:
    """A preset of the package's config/training/bench_kd.yaml, `extends` resolved."""
    import yaml

    from lix_training.bench_kd import default_config, resolve_preset

    return resolve_preset(yaml.safe_load(default_config().read_text())["presets"], name)

# Search, ablations, the published MKAT (its own trained branch) and the no-teacher baseline. Each run costs a
# process start, so the other methods (their mathematics and gradients are in test_distill.py) are left out:
# their rows run the same code path as these.
ROWS = ["student", "lix", "lix_no_dwc", "lix_logit_only", "lix_feature_only", "mkat", "aux_depth"]


def _bench(tmp_path, *extra, timeout=900):
    return run_module("lix_training.bench_kd", "--preset", "fast", "--cache-dir", str(tmp_path / "cache"), "--out",
                      str(tmp_path / "bench"), *extra, timeout=timeout)


@pytest.mark.slow
def test_fast_benchmark_searches_on_val_and_reports_paired_differences(tmp_path):
    result = _bench(tmp_path, "--rows", ",".join(ROWS))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = tmp_path / "bench"
    report = json.loads((out / "results.json").read_text())
    rows = {row["row"]: row for row in report["rows"]}
    assert list(rows) == ROWS
    for row in rows.values():
        assert row["seeds"] == [0, 1] and row["sec_per_step"] > 0
        for split in ("val", "test_in", "test"):
            assert 0 <= row[split]["mean"] <= 1
            assert row[split]["vs_student"]["n"] == 2
    # The chosen variant of a searched row is the one with the best val mIoU on the first seed.
    import yaml

    from lix_training.bench_kd import default_config

    searched = yaml.safe_load(default_config().read_text())["rows"]
    for name in ("lix", "aux_depth"):
        firsts = [json.loads(p.read_text()) for p in (out / "runs" / name).glob("*_seed0/result.json")]
        assert len(firsts) == len(searched[name]["variants"]) >= 3
        best = max(firsts, key=lambda r: r["val"]["miou"])
        assert rows[name]["variant"] == best["variant"]
        assert len(list((out / "runs" / name).glob("*_seed1/result.json"))) == 1  # only the chosen one
    # Ablations change exactly one thing in LIX's chosen variant.
    lix = rows["lix"]["variant"]["distill"]
    assert [m["name"] for m in rows["lix_logit_only"]["variant"]["distill"]] == ["lix_logit"]
    assert [m["name"] for m in rows["lix_feature_only"]["variant"]["distill"]] == ["lix_feature"]
    assert rows["lix_no_dwc"]["variant"]["distill"][0] == {**lix[0], "dynamic": False}
    # The student against itself: a difference of exactly zero.
    assert rows["student"]["test"]["vs_student"]["mean"] == 0.0
    text = (out / "results.md").read_text()
    assert "| lix |" in text and "test-shift" in text and "plateau check" in text
    same = all(r[s]["labelled"]["mean"] == pytest.approx(r[s]["mean"], abs=1e-9) for r in rows.values()
               for s in ("test_in", "test"))
    assert ("every row scores its mIoU" in text) == same and ("test-in, labelled classes" in text) == (not same)
    for row in rows.values():  # it leaves out only zeros (unlabelled classes), so it is never below the mIoU
        for split in ("test_in", "test"):
            assert row[split]["mean"] - 1e-9 <= row[split]["labelled"]["mean"] <= 1
            assert row[split]["labelled"]["vs_student"]["n"] == 2
    best_in = max((r for r in report["rows"] if r["row"] != "student"), key=lambda r: r["test_in"]["mean"])
    assert report["first"]["test_in"] == best_in["row"] and f"First on test-in: **{best_in['row']}**" in text
    assert report["cost"]["runs"] == len(list(out.glob("runs/*/*/result.json")))
    assert (out / "results.png").stat().st_size > 1000 and (out / "curves.png").stat().st_size > 1000

    # A finished run is reused; a run without its result continues from its last checkpoint.
    student_run = next((out / "runs" / "student").glob("*_seed1"))
    (student_run / "result.json").unlink()
    (student_run / "final.pt").unlink()
    again = _bench(tmp_path, "--rows", "student", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "teacher scores reused" in again.stdout  # the same teacher and data are not scored twice
    assert "--resume" in (student_run / "train.log").read_text() or (student_run / "result.json").exists()
    rerun = json.loads((student_run / "result.json").read_text())
    assert rerun["seed"] == 1 and rerun["test"]["miou"] == pytest.approx(rows["student"]["test"]["runs"]["1"])

    # A result scored before the output was read over the trained classes, which predicted a class no label
    # contains, is left out of a report and scored again from its weights (not trained again).
    support = json.loads((out / "teacher_eval.json").read_text())["splits"]
    absent = next(c for c in support["val"]["support"] if all(support[s]["support"][c] == 0 for s in support))
    stale = json.loads((student_run / "result.json").read_text())
    assert stale["output_classes"] is not None  # lix-train recorded the trained classes
    del stale["output_classes"]
    stale["val"]["per_class_iou"][absent] = 0.0
    (student_run / "result.json").write_text(json.dumps(stale))
    import torch

    from lix_ros.core.checkpoint import atomic_save

    weights = torch.load(student_run / "final.pt", weights_only=True)
    trained = weights.pop("trained_classes")  # weights from before lix-train recorded them
    atomic_save(weights, student_run / "final.pt")
    log_before = (student_run / "train.log").read_text()
    report_only = _bench(tmp_path, "--rows", "student", "--report-only", timeout=300)
    assert report_only.returncode == 0 and f"{student_run}: scored before" in report_only.stdout
    assert json.loads((out / "results.json").read_text())["rows"][0]["seeds"] == [0]
    rescored = _bench(tmp_path, "--rows", "student", timeout=300)
    assert rescored.returncode == 0, rescored.stderr[-2000:]
    assert (student_run / "train.log").read_text() == log_before
    before = json.loads((student_run / "result.before_output_classes.json").read_text())
    assert before["val"]["per_class_iou"][absent] == 0.0
    # recorded from its training split's labels: every class its batches saw, and maybe more
    assert set(trained) <= set(torch.load(student_run / "final.pt", weights_only=True)["trained_classes"])
    fresh = json.loads((student_run / "result.json").read_text())
    assert fresh["val"]["per_class_iou"][absent] is None and fresh["test"]["miou"] == rerun["test"]["miou"]


def test_a_result_needs_rescoring_only_if_it_predicted_a_class_no_split_labels():
    from lix_training.bench_kd import predicted_unlabelled_class

    support = {s: {"road": 10, "car": 5 if s == "test" else 0, "rider": 0} for s in ("val", "test_in", "test")}
    scores = {s: {"miou": 0.5, "per_class_iou": {"road": 0.9, "car": 0.0 if s == "test" else None, "rider": None}}
              for s in ("val", "test_in", "test")}
    assert not predicted_unlabelled_class(scores, support)  # car is labelled in one split: a trained class
    scores["test_in"]["per_class_iou"]["rider"] = 0.0
    assert predicted_unlabelled_class(scores, support)
    assert not predicted_unlabelled_class({**scores, "output_classes": [0, 13]}, support)  # scored since
    assert not predicted_unlabelled_class(scores, None)


def test_paired_difference_and_its_interval():
    d = paired_difference({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 1: 0.5, 2: 0.5, 3: 0.9})
    assert d["n"] == 3 and d["mean"] == pytest.approx(0.4 / 3)
    half = 4.303 * 0.057735 / math.sqrt(3)  # t_{0.975, 2} * sd(0.1, 0.1, 0.2) / sqrt(3)
    assert d["low"] == pytest.approx(0.4 / 3 - half, abs=1e-4) and d["high"] == pytest.approx(0.4 / 3 + half, abs=1e-4)
    assert paired_difference({5: 0.5}, {0: 0.4}) is None
    assert math.isnan(paired_difference({0: 0.5}, {0: 0.4})["low"])


def test_plateau_is_the_gain_over_the_last_fifth():
    assert plateau([(500, 0.5), (1000, 0.6), (1500, 0.62), (2000, 0.63)]) == pytest.approx(0.01)  # 2000 vs 1500
    assert plateau([(2000, 0.6)]) is None


def test_seed_band_is_min_mean_max_over_the_steps_every_seed_reached():
    curves = [[(500, 0.5), (1000, 0.6), (1500, 0.7)], [(500, 0.3), (1000, 0.8)]]  # the second was cut short
    steps, low, mean, high = seed_band(curves)
    assert steps == [500, 1000]
    assert low == pytest.approx([30, 60]) and mean == pytest.approx([40, 70]) and high == pytest.approx([50, 80])
    assert seed_band([]) == ([], [], [], [])


def test_wide_preset_widens_the_student_only():
    wide, converged = shipped_preset("converged_wide"), shipped_preset("converged")
    assert wide["overrides"] == [*converged["overrides"], "model.width_multiplier=1.5"]
    # a teacher trained by the bench gets base + teacher_overrides: the latter must undo the width
    assert wide["teacher_overrides"][-1] == "model.width_multiplier=1.0"


def test_twice_the_budget_preset_doubles_the_student_steps_only():
    doubled, converged = shipped_preset("converged_2x"), shipped_preset("converged")
    assert "steps=16000" in converged["overrides"]
    assert doubled["overrides"] == [o.replace("steps=16000", "steps=32000") for o in converged["overrides"]]
    assert doubled["teacher_overrides"] == converged["teacher_overrides"]  # the committed teacher's budget
    assert "steps=16000" in doubled["teacher_overrides"]


def test_wide_preset_at_twice_the_budget_changes_width_and_steps_only():
    wide_2x, wide, doubled = (shipped_preset(name) for name in ("converged_wide_2x", "converged_wide", "converged_2x"))
    assert wide_2x["overrides"] == [o.replace("steps=16000", "steps=32000") for o in wide["overrides"]]
    # the same runs as converged_2x but for the width: the supervised and distilled rows pair seed by seed
    assert [o for o in wide_2x["overrides"] if "width_multiplier" not in o] == doubled["overrides"]
    assert wide_2x["teacher_overrides"] == wide["teacher_overrides"]


def test_unknown_row_is_one_line(tmp_path):
    result = run_module("lix_training.bench_kd", "--rows", "magic", "--out", str(tmp_path))
    assert result.returncode == 2 and "unknown rows ['magic']" in result.stderr


def test_a_run_made_with_other_settings_is_refused(tmp_path):
    from lix_ros.cli.common import CliError
    from lix_training.bench_kd import run_one

    run_dir = tmp_path / "runs" / "student" / "abc_seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "settings.json").write_text(json.dumps({"variant": {}, "base": ["steps=10"], "teacher": "t.pt"}))
    (run_dir / "result.json").write_text("{}")
    job = {"row": "student", "variant": {}, "seed": 0, "dir": run_dir}
    with pytest.raises(CliError, match="other settings"):
        run_one(job, tmp_path / "t.pt", ["steps=20"], {})
    assert run_one(job, "t.pt", ["steps=10"], {}) == {}
    # the supervised student never saw the teacher: reused under another one
    assert run_one(job, "other_teacher.pt", ["steps=10"], {}) == {}

    distilled_dir = tmp_path / "runs" / "kd" / "def_seed0"
    distilled_dir.mkdir(parents=True)
    variant = {"distill": [{"name": "kd", "weight": 1.0}]}
    (distilled_dir / "settings.json").write_text(json.dumps({"variant": variant, "base": ["steps=10"],
                                                             "teacher": "t.pt"}))
    (distilled_dir / "result.json").write_text("{}")
    distilled = {"row": "kd", "variant": variant, "seed": 0, "dir": distilled_dir}
    assert run_one(distilled, "t.pt", ["steps=10"], {}, teacher_sha="aa") == {}  # before checksums: the path
    with pytest.raises(CliError, match="teacher changed"):
        run_one(distilled, "other_teacher.pt", ["steps=10"], {}, teacher_sha="aa")
    # with a checksum recorded the weights decide: moved is the same teacher, refilled in place is another
    (distilled_dir / "settings.json").write_text(json.dumps({"variant": variant, "base": ["steps=10"],
                                                             "teacher": "t.pt", "teacher_sha256": "aa"}))
    assert run_one(distilled, "moved/t.pt", ["steps=10"], {}, teacher_sha="aa") == {}
    with pytest.raises(CliError, match="teacher changed"):
        run_one(distilled, "t.pt", ["steps=10"], {}, teacher_sha="bb")


def test_teacher_checksum_is_the_weights_and_a_bad_teacher_is_one_line(tmp_path):
    from lix_ros.cli.common import CliError
    from lix_ros.core.checkpoint import read_checkpoint
    from lix_training.bench_kd import teacher_checksum

    teacher = Path("lix_ros/checkpoints/teacher_depth_small.pt")
    assert teacher_checksum(teacher) == read_checkpoint(teacher)["weights_sha256"]
    (tmp_path / "broken.pt").write_bytes(teacher.read_bytes()[:1000])
    with pytest.raises(CliError, match=r"broken\.pt: not a readable checkpoint"):
        teacher_checksum(tmp_path / "broken.pt")


CONVERGED = "benchmarks/results/budget_check_16000"  # the 3000-step teacher's converged runs (supervised: seed 0)
TEACHER_RUN = "benchmarks/results/teacher_depth_16000"  # the committed teacher's training run
# the committed default student: seed 0 of the default's row (channel-wise DKD) distilled from the committed
# teacher, re-run for packaging (the counted seed 0 is in bench_kd_converged_rescored; its weights were not kept)
DEFAULT_RUN = ("benchmarks/results/bench_kd_converged_channel_dkd_package/runs/lix_channel_logit_only_no_dwc/"
               "287947e6_seed0")


def _same_settings(config: dict) -> dict:
    """The settings that make two training runs the same recipe (not where they ran or wrote)."""
    from lix_training.config import DEFAULTS

    # a data key a committed run predates counts as its default (as --resume treats it)
    data = {k: v for k, v in config["data"].items() if k != "cache_dir" and v != DEFAULTS["data"].get(k, k)}
    distill = config.get("distill") or {}
    return {"seed": config["seed"], "model": config["model"], "data": data, "optim": config["optim"],
            "steps": config["steps"], "batch_size": config["batch_size"], "distill": distill.get("methods")}


def test_variants_from_another_table_run_without_search_or_parent(tmp_path):
    """--variants-from: each row runs the variant the given results.json chose (an ablation row its own
    entry, without its parent's search) on every seed; a row the file lacks is one readable error."""
    chosen = {"rows": [{"row": "student", "variant": {}},
                       {"row": "lix_no_dwc", "variant": {"distill": [{"name": "kd", "temperature": 2.0,
                                                                      "weight": 0.5}]}},
                       {"row": "at", "variant": {"distill": [{"name": "at", "weight": 1.0}]}}]}
    source = tmp_path / "chosen.json"
    source.write_text(json.dumps(chosen))
    result = _bench(tmp_path, "--rows", "lix_no_dwc", "--variants-from", str(source))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = tmp_path / "bench" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["lix_no_dwc", "student"]  # no `lix` search
    from lix_training.bench_kd import variant_key

    key = variant_key(chosen["rows"][1]["variant"])
    assert sorted(p.name for p in (runs / "lix_no_dwc").iterdir()) == [f"{key}_seed0", f"{key}_seed1"]
    report = {r["row"]: r for r in json.loads((tmp_path / "bench" / "results.json").read_text())["rows"]}
    assert report["lix_no_dwc"]["variant"] == chosen["rows"][1]["variant"] and report["lix_no_dwc"]["searched"] == 0
    assert f"chosen on val by the table of `{source}`" in (tmp_path / "bench" / "results.md").read_text()
    # Another row run later into the same folder joins the report instead of replacing it...
    added = _bench(tmp_path, "--rows", "at", "--seeds", "0", "--variants-from", str(source))
    assert added.returncode == 0, added.stdout[-2000:] + added.stderr[-2000:]
    assert "kept the rows and seeds of the earlier report" in added.stdout
    merged = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert merged["seeds"] == [0, 1]
    assert {r["row"]: r["seeds"] for r in merged["rows"]} == {"student": [0, 1], "lix_no_dwc": [0, 1], "at": [0]}
    # ...while --report-only reports what it is asked, and so does a run of other variants.
    only = _bench(tmp_path, "--rows", "at", "--seeds", "0", "--variants-from", str(source), "--report-only")
    assert only.returncode == 0, only.stderr[-2000:]
    reported = json.loads((tmp_path / "bench" / "results.json").read_text())["rows"]
    assert [r["row"] for r in reported] == ["student", "at"]
    chosen["rows"][2]["variant"]["distill"][0]["weight"] = 2.0  # `at` is now another variant than reported
    source.write_text(json.dumps(chosen))
    again = _bench(tmp_path, "--rows", "at", "--seeds", "0", "--variants-from", str(source))
    assert again.returncode == 0 and "kept the rows" not in again.stdout, again.stderr[-2000:]
    reported = json.loads((tmp_path / "bench" / "results.json").read_text())["rows"]
    assert [(r["row"], r["variant"]) for r in reported] == [("student", {}), ("at", chosen["rows"][2]["variant"])]
    missing = _bench(tmp_path, "--rows", "kd", "--variants-from", str(source), timeout=120)
    assert missing.returncode != 0 and "no chosen variant for rows ['kd']" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_variants_from_a_table_that_has_not_run_an_ablation_ablate_its_parents_choice(tmp_path):
    from lix_ros.cli.common import CliError
    from lix_training.bench_kd import fixed_variants

    parent = {"distill": [{"name": "lix_channel", "temperature": 4.0, "weight": 3.0}, {"name": "lix_feature"}]}
    source = tmp_path / "chosen.json"
    source.write_text(json.dumps({"rows": [{"row": "lix_channel", "variant": parent}]}))
    specs = {"lix_channel": {"variants": [parent]},
             "lix_channel_logit_only": {"ablation_of": "lix_channel", "drop": ["lix_feature"]},
             "kd": {"variants": []}}
    fixed = fixed_variants(source, ["lix_channel", "lix_channel_logit_only"], specs)
    assert fixed["lix_channel_logit_only"] == {"distill": [parent["distill"][0]]}
    with pytest.raises(CliError, match=r"no chosen variant for rows \['kd'\]"):
        fixed_variants(source, ["kd"], specs)


def test_converged_preset_is_the_full_preset_at_the_budget_check_steps():
    """`extends: full` resolves to full's settings with steps replaced where they stand: exactly the list the
    committed converged runs recorded, so they are reused and not refused as other settings."""
    import yaml

    from lix_training.bench_kd import default_config, recorded_base, resolve_preset
    from lix_training.config import load_config

    presets = yaml.safe_load(default_config().read_text())["presets"]
    converged, full = resolve_preset(presets, "converged"), resolve_preset(presets, "full")
    steps = yaml.safe_load(Path(f"{CONVERGED}/student_16000_seed0/config.yaml").read_text())["steps"]
    assert converged["overrides"] == [f"steps={steps}" if o.startswith("steps=") else o for o in full["overrides"]]
    teacher_steps = load_config("config/training/teacher_depth_intermediate.yaml")["steps"]  # the committed one's
    assert converged["teacher_overrides"] == [f"steps={teacher_steps}" if o.startswith("steps=") else o
                                              for o in full["teacher_overrides"]]
    assert converged["seeds"] == full["seeds"]
    for settings in Path("benchmarks/results/bench_kd_converged/runs").glob("*/*/settings.json"):
        recorded = json.loads(settings.read_text())["base"]
        assert recorded == recorded_base(converged["overrides"]), settings


def test_preset_extends_replaces_keys_in_place_and_refuses_cycles_and_unknown_parents():
    from lix_training.bench_kd import CliError, resolve_preset

    presets = {"a": {"seeds": [0], "overrides": ["steps=4", "lr=1", "x=[1, 2]"], "teacher_overrides": ["steps=6"]},
               "b": {"extends": "a", "overrides": ["lr=2", "new=3"]},
               "c": {"extends": "b", "seeds": [1, 2], "overrides": ["steps=8"]},
               "loop": {"extends": "loop2"}, "loop2": {"extends": "loop"}, "orphan": {"extends": "nope"}}
    assert resolve_preset(presets, "b") == {"seeds": [0], "overrides": ["steps=4", "lr=2", "x=[1, 2]", "new=3"],
                                            "teacher_overrides": ["steps=6"]}
    assert resolve_preset(presets, "c") == {"seeds": [1, 2], "overrides": ["steps=8", "lr=2", "x=[1, 2]", "new=3"],
                                            "teacher_overrides": ["steps=6"]}
    assert "extends" not in resolve_preset(presets, "c") and presets["c"]["extends"] == "b"  # input untouched
    with pytest.raises(CliError, match="cycle: loop -> loop2 -> loop"):
        resolve_preset(presets, "loop")
    with pytest.raises(CliError, match="unknown preset 'nope'"):
        resolve_preset(presets, "orphan")


def test_student_config_is_the_full_preset_at_the_converged_budget():
    """config/training/student.yaml reproduces the committed student_supervised_small.pt: the `full` preset's
    training settings at the converged budget (the plateau found by the budget check, 16000 steps), and the
    budget check's runs used exactly the shipped configs' settings."""
    import yaml

    from lix_training.bench_kd import default_config, resolve_preset
    from lix_training.config import load_config

    budget_runs = {name: yaml.safe_load(Path(f"{CONVERGED}/{name}_16000_seed0/config.yaml").read_text())
                   for name in ("student", "default")}
    steps = budget_runs["student"]["steps"]
    shipped_of = {"student": "student.yaml", "default": "student_lix_channel.yaml"}
    seed_runs = sorted(Path(CONVERGED).glob("*_16000_seed*"))
    assert len(seed_runs) >= 10  # the headline's five seeds of each
    for run in seed_runs:  # every seed of the headline is the shipped config with only its seed changed
        name, seed = run.name.split("_16000_seed")
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert _same_settings(config) == _same_settings(
            load_config(f"config/training/{shipped_of[name]}", [f"seed={seed}"])), run.name
    bench = yaml.safe_load(default_config().read_text())
    full = load_config(None, [*resolve_preset(bench["presets"], "full")["overrides"], "model.kind=student",
                              f"steps={steps}"])
    shipped = load_config("config/training/student.yaml")
    for key in ("seed", "model", "data", "optim", "steps", "batch_size"):
        assert shipped[key] == full[key], key
    assert _same_settings(budget_runs["student"]) == _same_settings(shipped)
    default = load_config("config/training/student_lix_channel.yaml")
    assert _same_settings(budget_runs["default"]) == _same_settings(default)


def test_committed_results_agree_with_the_configs_and_checkpoints():
    """The committed benchmark results chose the variants the shipped configs train (student_channel_dkd.yaml:
    the default student, at the re-scored 4000-step table's choice; student_lix_channel.yaml: the default until
    2026-12-07, and student_lix.yaml: pixel-wise LIX, at the choices made before the re-scoring), and the
    committed students (the default pair and the 1.5x wide pair of --preset converged_wide_2x) are seed 0 of the
    converged-budget runs of those rows (their training metadata names row, variant and budget; their recipe and
    best val mIoU are the committed run's)."""
    import csv

    import torch
    import yaml

    from lix_training.bench_kd import fixed_variants
    from lix_training.config import load_config

    # the 4000-step table's choices, read as --variants-from reads them: `before` the output was read over the
    # trained classes (when LIX channel-wise was chosen), and `rescored` after (3 of its runs changed; the
    # converged rows, today's default's included)
    full = Path("benchmarks/results/bench_kd_full")
    before = fixed_variants(full / "results.before_output_classes.json", ["student", "lix_channel_logit_only", "lix"])
    rescored = fixed_variants(full / "results.json", ["lix_channel_logit_only_no_dwc"])
    for config, row, variants in (("student_channel_dkd.yaml", "lix_channel_logit_only_no_dwc", rescored),
                                  ("student_lix_channel.yaml", "lix_channel_logit_only", before),
                                  ("student_lix.yaml", "lix", before)):
        shipped = load_config(f"config/training/{config}")
        assert shipped["distill"]["methods"] == variants[row]["distill"], config
        assert shipped["steps"] == load_config("config/training/student.yaml")["steps"]
    wide = "benchmarks/results/bench_kd_converged_wide_2x/runs"  # the 1.5x student at 32000 steps
    wide_default, wide_supervised = f"{wide}/lix_channel_logit_only/d7fc8916_seed0", f"{wide}/student/44136fa3_seed0"
    for name, row, variants, run in (
            ("student_small.pt", "lix_channel_logit_only_no_dwc", rescored, DEFAULT_RUN),
            ("student_supervised_small.pt", "student", before, f"{CONVERGED}/student_16000_seed0"),
            ("student_wide.pt", "lix_channel_logit_only", before, wide_default),
            ("student_supervised_wide.pt", "student", before, wide_supervised)):
        training = torch.load(f"lix_ros/checkpoints/{name}", weights_only=True)["training"]
        meta = training["benchmark"]
        assert meta["row"] == row and meta["variant"] == variants[row] and meta["seed"] == 0
        assert meta["results"] == run
        committed = Path(meta["results"])
        run_config = yaml.safe_load((committed / "config.yaml").read_text())
        assert _same_settings(training["config"]) == _same_settings(run_config)
        with open(committed / "log.csv", newline="") as handle:
            best = max(float(r["val_miou"]) for r in csv.DictReader(handle) if r["val_miou"])
        assert training["best_val_miou"] == pytest.approx(best, abs=1e-6), name


def test_a_finished_search_makes_its_seeds_and_ablations_ready_without_waiting_for_other_searches(tmp_path):
    """The scheduler keeps slots busy: row A's chosen seeds and ablations are ready as soon as A's search has
    finished, while row B's search is still running, and they start first; the choice is the best val mIoU of
    the first seed."""
    from lix_training.bench_kd import Bench, variant_key

    variants = [{"set": [f"steps={n}"]} for n in (1, 2, 3)]
    bench = {"rows": {"student": {}, "a": {"variants": variants}, "b": {"variants": variants},
                      "a_ablated": {"ablation_of": "a", "patch": {}}}}
    runner = Bench(bench, ["student", "a", "a_ablated", "b"], [0, 1, 2], tmp_path, tmp_path / "t.pt", [], {}, 2,
                   report_only=False)

    def ordered() -> list[tuple[str, str, int]]:
        return [(j["row"], variant_key(j["variant"]), j["seed"]) for j in runner.ready_jobs()]

    def ready() -> set[tuple[str, str, int]]:
        return set(ordered())

    before = ready()
    assert {("student", variant_key({}), s) for s in (0, 1, 2)} <= before
    assert {(r, variant_key(v), 0) for r in ("a", "b") for v in variants} <= before
    assert not any(seed > 0 for row, _, seed in before if row != "student")  # nothing chosen yet
    for score, variant in zip((0.5, 0.7, 0.6), variants):
        runner.results[("a", variant_key(variant), 0)] = {"val": {"miou": score}}
    runner.results[("b", variant_key(variants[0]), 0)] = {"val": {"miou": 0.9}}  # b's search unfinished
    after = ready() - before
    chosen = variant_key(variants[1])
    assert {("a", chosen, 1), ("a", chosen, 2)} <= after
    assert {row for row, _, _ in after} == {"a", "a_ablated"}
    assert {seed for row, _, seed in after if row == "a_ablated"} == {0, 1, 2}
    # the finished search's row goes first: whole rows complete before other rows' searches continue
    assert [row for row, _, _ in ordered()[:6]] == ["a"] * 3 + ["a_ablated"] * 3


def test_committed_teacher_is_the_shipped_teacher_config_and_its_committed_run():
    """lix_ros/checkpoints/teacher_depth_small.pt is config/training/teacher_depth_intermediate.yaml as shipped
    (its recipe, budget included), its best val mIoU is its committed run's, and the default student's
    benchmark run is student_channel_dkd.yaml's recipe and named this teacher by its weights' checksum."""
    import csv

    import torch
    import yaml

    from lix_training.config import load_config

    teacher = torch.load("lix_ros/checkpoints/teacher_depth_small.pt", weights_only=True)
    training = teacher["training"]
    shipped = load_config("config/training/teacher_depth_intermediate.yaml")
    assert _same_settings(training["config"]) == _same_settings(shipped)
    assert _same_settings(yaml.safe_load(Path(f"{TEACHER_RUN}/config.yaml").read_text())) == _same_settings(shipped)
    with open(f"{TEACHER_RUN}/log.csv", newline="") as handle:
        best = max(float(r["val_miou"]) for r in csv.DictReader(handle) if r["val_miou"])
    assert training["best_val_miou"] == pytest.approx(best, abs=1e-6)
    settings = json.loads(Path(f"{DEFAULT_RUN}/settings.json").read_text())
    assert settings["teacher_sha256"] == teacher["weights_sha256"]
    run_config = yaml.safe_load(Path(f"{DEFAULT_RUN}/config.yaml").read_text())
    assert _same_settings(run_config) == _same_settings(load_config("config/training/student_channel_dkd.yaml"))


def test_pair_runs_pairs_the_seeds_both_tables_finished(tmp_path):
    """benchmarks/pair_runs.py: A − B over the common seeds only, with the protocol's interval."""
    from lix_training.bench_kd import paired_difference

    scores = {"a": {0: 0.70, 1: 0.74, 2: 0.72, 3: 0.99}, "b": {0: 0.68, 1: 0.73, 2: 0.69}}
    for side, per_seed in scores.items():
        for seed, miou in per_seed.items():
            run = tmp_path / side / f"k_seed{seed}"
            run.mkdir(parents=True)
            offsets = (("val", 0), ("test_in", 0.01), ("test", -0.05))
            splits = {split: {"miou": miou + offset} for split, offset in offsets}
            (run / "result.json").write_text(json.dumps({"seed": seed, **splits}))
    out = run_python("benchmarks/pair_runs.py", str(tmp_path / "a"), str(tmp_path / "b"), check=True).stdout
    expected = paired_difference({0: 70.0, 1: 74.0, 2: 72.0}, {0: 68.0, 1: 73.0, 2: 69.0})
    assert "seeds [0, 1, 2]" in out  # seed 3 ran in A only
    assert f"A - B val: {expected['mean']:+.2f} [{expected['low']:+.2f}, {expected['high']:+.2f}]" in out
    assert "(per seed +2.00, +1.00, +3.00)" in out
    lone = run_python("benchmarks/pair_runs.py", str(tmp_path / "a"), str(tmp_path))
    assert lone.returncode == 2 and lone.stderr.startswith("pair_runs: error: 0 seed(s)")


def test_readme_packaged_checkpoints_table_is_what_their_runs_scored():
    """Every packaged checkpoint has a row in the README's "Packaged checkpoints" table, and each row's val /
    test-in / test-shift mIoU is what the committed run the checkpoint names scored (the teacher: its
    committed evaluation)."""
    import re

    import torch

    from lix_ros.core.default_checkpoints import package_root, packaged_checkpoints

    section = Path("README.md").read_text().split("### Packaged checkpoints", 1)[1].split("\n### ", 1)[0]
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)`.*?\| ([\d.]+ / [\d.]+ / [\d.]+) \|", section, re.M)}
    assert set(rows) == set(packaged_checkpoints())
    for name, shown in rows.items():
        training = torch.load(package_root() / "checkpoints" / f"{name}.pt", weights_only=True)["training"]
        if "benchmark" in training:
            run = Path(training["benchmark"]["results"])
            if (run / "result.json").is_file():  # a lix-bench-kd run
                result = json.loads((run / "result.json").read_text())
                scores = [result[split]["miou"] for split in EVAL_SPLITS]
            else:  # a budget_check.py run: one metrics file per split
                scores = [json.loads((run / f"metrics_{split}.json").read_text())["miou"]
                          for split in EVAL_SPLITS]
        else:  # the teacher
            evaluation = json.loads(Path(f"{DEFAULT_RUN.split('/runs/')[0]}/teacher_eval.json").read_text())
            assert evaluation["teacher"] == f"lix_ros/checkpoints/{name}.pt"
            scores = [evaluation["splits"][split]["miou"] for split in EVAL_SPLITS]
        assert shown == " / ".join(f"{100 * s:.2f}" for s in scores), name
