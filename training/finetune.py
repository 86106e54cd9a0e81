"""`lix-finetune`: fine-tune a checkpoint on hard frames from the road without making it worse.

    lix-finetune lix_ros/checkpoints/student_small.pt --bags out/demo/hard_frames --out student_ft.pt

* Every batch mixes the bags' frames (ground truth where recorded, else the teacher's mask: `lix-bag label`,
  or the A/B node's hard-frame capture) with the checkpoint's own training data (`--mix`: the bags' share),
  so the model keeps what it knew.
* The checkpoint's own objective: a distilled student keeps its distillation terms (its teacher runs on every
  sample, so the bags need the teacher's geometry: hard-frame bags carry it): dropping them pulls the model back
  toward what plain cross-entropy learns (the demo's hard frames, 200 steps: val 61.07 dropped vs 62.57 kept,
  test-shift 56.66 vs 58.14). --no-distill drops them; so does a missing teacher or bags without its geometry.
* A fine-tuning learning rate (default 1/10 of the checkpoint's training rate).
* Before and after: mIoU on the original data's val split and on held-out bag frames (every k-th frame,
  data.val_fraction, never trained on), printed side by side.
* --out is written only if the original val mIoU did not drop by more than --tolerance points (a model that
  got worse is kept in the run folder, not installed), unless --force.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path

import torch

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors, number
from lix_ros.core.checkpoint import CheckpointError, geometry_modality, load_model
from lix_ros.core.metrics import scores_from_confusion
from lix_training.config import DEFAULTS, load_config
from lix_training.data import open_split
from lix_training.trainer import evaluate


def finetune_config(ckpt: dict, checkpoint: str, bags: list[str], args: argparse.Namespace) -> dict:
    """The checkpoint's own training config, turned into a short fine-tuning run."""
    base = ckpt.get("training", {}).get("config")
    if not isinstance(base, dict):
        raise CliError(f"{checkpoint} holds no training config (field training.config): it cannot be fine-tuned "
                       "on its original data")
    config = copy.deepcopy(DEFAULTS)
    for key in ("seed", "model", "batch_size", "threads"):
        if key in base:
            config[key] = copy.deepcopy(base[key])
    config["data"].update({k: v for k, v in base.get("data", {}).items() if k in config["data"]})
    config["data"]["mix"] = {"root": bags, "share": args.mix}
    # the bags fill the batches' other share: a run's unlabelled frames (data.unlabelled) stay out of it
    config["data"]["unlabelled"] = copy.deepcopy(DEFAULTS["data"]["unlabelled"])
    optim = config["optim"]
    optim.update({k: v for k, v in base.get("optim", {}).items() if k in optim})
    optim["lr"] = args.lr if args.lr is not None else optim["lr"] / 10
    optim["warmup_steps"] = min(20, args.steps)
    config.update(steps=args.steps, init_from=str(checkpoint), distill=None, aux_depth=None,
                  val_every=args.steps, checkpoint_every=max(1, args.steps // 4), out_dir=str(args.run_dir))
    if args.threads:
        config["threads"] = args.threads
    overrides = [f"{k}={json.dumps(v)}" for k, v in config.items() if k not in DEFAULTS or v != DEFAULTS[k]]
    return load_config(None, overrides)  # validated like any training config


def _teacher_path(stored: str) -> Path | None:
    """The teacher file a checkpoint's distill section names: as stored, or (a path like
    lix_ros/checkpoints/x.pt written from a source tree) under the installed lix_ros package."""
    path = Path(stored)
    if path.is_file():
        return path
    from lix_ros.core.default_checkpoints import package_root

    inside = package_root().parent / path
    return inside if not path.is_absolute() and inside.is_file() else None


def kept_distillation(ckpt: dict, bag_train, args: argparse.Namespace) -> tuple[dict | None, str]:
    """The distill section the fine-tuning keeps (or None) and one line saying which and why."""
    distill = copy.deepcopy(ckpt.get("training", {}).get("config", {}).get("distill"))
    if not distill:
        return None, "objective: cross-entropy (the checkpoint was not distilled)"
    names = ", ".join(m["name"] for m in distill.get("methods", []))
    if args.no_distill:
        return None, f"objective: cross-entropy only (--no-distill drops {names})"
    teacher = _teacher_path(distill["teacher"])
    if teacher is None:
        return None, f"objective: cross-entropy only: the teacher {distill['teacher']} is not found (drops {names})"
    try:
        _, teacher_ckpt = load_model(teacher)
    except CheckpointError as error:
        return None, f"objective: cross-entropy only: the teacher cannot be read ({error}; drops {names})"
    modality = geometry_modality(teacher_ckpt)
    from lix_ros.data.sample import DataError, sample_modality

    for index in range(len(bag_train)):  # every frame: the teacher runs on each one it is given
        try:
            sample_modality(bag_train[index], modality)
        except DataError as error:  # a bag without the teacher's geometry
            return None, (f"objective: cross-entropy only: the bags have no {modality} for the teacher "
                          f"(frame {index}: {error}; drops {names})")
    distill["teacher"] = str(teacher)
    return distill, f"objective: cross-entropy + {names} from the teacher {teacher} (as the checkpoint was trained)"


def _scores(model, ckpt: dict, frames) -> float:
    confusion = evaluate(model, frames, geometry_modality(ckpt), torch.device("cpu"), len(ckpt["classes"]),
                         ckpt["input_size"])
    return 100 * scores_from_confusion(confusion).miou


def label_sources(frames) -> dict[str, int]:
    counts: dict[str, int] = {}
    for index in frames.indices:
        source = frames.source[index].meta.get("label_source", "labelled_gt")
        counts[source] = counts.get(source, 0) + 1
    return counts


@friendly_errors("lix-finetune")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-finetune", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("checkpoint", help="the model to fine-tune (its training config names its data)")
    parser.add_argument("--bags", nargs="+", required=True, help="bags with hard frames (GT or teacher masks)")
    parser.add_argument("--out", type=Path, required=True, help="the fine-tuned checkpoint (.pt)")
    parser.add_argument("--steps", type=number(int, 1), default=200, help="fine-tuning steps")
    parser.add_argument("--mix", type=number(float, 0, 1, low_open=True), default=0.5,
                        help="share of every batch taken from the bags (the rest: original training data)")
    parser.add_argument("--lr", type=number(float, 0, low_open=True),
                        help="learning rate (default: 1/10 of the checkpoint's training rate)")
    parser.add_argument("--tolerance", type=number(float, 0), default=0.0,
                        help="mIoU points the original val set may lose before --out is refused")
    parser.add_argument("--run-dir", type=Path, help="training folder (default: <out>.run)")
    parser.add_argument("--threads", type=number(int, 0), default=0, help="torch threads (0: torch default)")
    parser.add_argument("--no-distill", action="store_true",
                        help="drop the checkpoint's distillation terms (cross-entropy only)")
    parser.add_argument("--force", action="store_true", help="write --out even if the model got worse")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.run_dir = args.run_dir or args.out.with_name(args.out.name + ".run")
    try:
        model, ckpt = load_model(args.checkpoint)
    except CheckpointError as error:
        raise CliError(str(error)) from None
    config = finetune_config(ckpt, args.checkpoint, [str(b) for b in args.bags], args)
    bag_data = {**config["data"], "source": "bag", "root": config["data"]["mix"]["root"]}
    original_val = open_split(config["data"], "val", quiet=True)
    bag_train, bag_val = open_split(bag_data, "train"), open_split(bag_data, "val")
    sources = label_sources(bag_train)
    print(f"bag frames: {len(bag_train)} for training ({sources.get('labelled_gt', 0)} with ground truth, "
          f"{sources.get('pseudo_labelled', 0)} with teacher pseudo-labels), {len(bag_val)} held out", flush=True)
    config["distill"], objective = kept_distillation(ckpt, bag_train, args)
    print(objective, flush=True)
    before = {"original": _scores(model, ckpt, original_val), "bags": _scores(model, ckpt, bag_val)}

    from lix_training.trainer import Trainer

    if args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    trainer = Trainer(config, quiet=args.quiet)
    trainer.fit()
    tuned, tuned_ckpt = load_model(args.run_dir / "final.pt")
    after = {"original": _scores(tuned, tuned_ckpt, original_val), "bags": _scores(tuned, tuned_ckpt, bag_val)}
    print("| mIoU (%) | before | after | change |\n|---|---:|---:|---:|")
    for key, name in (("original", f"original val ({original_val.description}, {len(original_val)} frames)"),
                      ("bags", f"held-out bag frames ({len(bag_val)})")):
        print(f"| {name} | {before[key]:.2f} | {after[key]:.2f} | {after[key] - before[key]:+.2f} |")
    worse = round(before["original"] - after["original"], 2) > args.tolerance  # as printed: no 'lost 0.00'
    if worse and not args.force:
        raise CliError(f"fine-tuning lost {before['original'] - after['original']:.2f} mIoU on the original val set "
                       f"(tolerance {args.tolerance}): {args.out} not written; the model is in {args.run_dir}/final.pt "
                       "(--force writes it anyway; try a smaller --lr or --mix)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run_dir / "final.pt", args.out)
    print(f"wrote {args.out}" + (" (worse on the original val set: --force)" if worse else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
