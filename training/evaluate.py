"""`lix-eval`: confusion matrix, per-class IoU, mIoU and pixel accuracy of checkpoints over a split.

Each checkpoint is scored on the data it was trained on (the data section stored in it) unless --config names
other data; --set changes single data keys on top of either (e.g. where the frames are cached). Frames are fed
at the checkpoint's input size, as the node runs it, and scored at their native size; the argmax is taken over
the classes the checkpoint's training labels contained, as the node reads it (--all-classes: over every class).
Writes <out>/metrics.json, <out>/metrics.md and <out>/confusion_<name>.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lix_ros.cli.common import DefaultsHelpFormatter, friendly_errors
from lix_ros.core.checkpoint import CheckpointError, geometry_modality, load_model, output_classes
from lix_ros.core.metrics import scores_from_confusion
from lix_training.config import DEFAULTS, data_with_overrides, load_config
from lix_training.data import SPLITS, open_split
from lix_training.trainer import evaluate


def markdown_table(name: str, scores: dict) -> str:
    headline = f"mIoU **{100 * scores['miou']:.2f}**, pixel accuracy {100 * scores['pixel_accuracy']:.2f}"
    lines = [f"### {name}", "", headline, "", "| class | IoU (%) | GT pixels |", "|---|---:|---:|"]
    for cls, iou in scores["per_class_iou"].items():
        if iou is None:
            continue
        lines.append(f"| {cls} | {100 * iou:.2f} | {scores['support'][cls]} |")
    return "\n".join(lines) + "\n"


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    square = confusion[:, :confusion.shape[0]]  # the last column (no valid prediction) counts in row totals
    present = (square.sum(0) + confusion.sum(1)) > 0
    matrix = square[np.ix_(present, present)].astype(np.float64)
    matrix = matrix / np.maximum(confusion.sum(1)[present, None], 1)
    labels = [n for n, p in zip(names, present) if p]
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(labels), 1 + 0.45 * len(labels)))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="prediction", ylabel="ground truth", title=title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j] >= 0.01:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if matrix[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def checkpoint_data(ckpt: dict) -> dict | None:
    """The data section a checkpoint was trained on, completed with today's defaults; None if it has none."""
    data = ckpt.get("training", {}).get("config", {}).get("data")
    if not isinstance(data, dict):
        return None
    merged = dict(DEFAULTS["data"])
    merged.update({k: v for k, v in data.items() if k in merged})
    return merged


def evaluate_checkpoint(checkpoint: str | Path, data_cfg: dict | None, split: str, workers: int = 0,
                        progress: bool = False, overrides: list[str] | None = None, all_classes: bool = False
                        ) -> dict:
    """Scores of one checkpoint; `data_cfg` None = the data it was trained on (synthetic defaults if unknown),
    `overrides` (data.key=value) applied on top of whichever it is. The argmax is over the checkpoint's
    output_classes (`output_classes` in the result; None = all), or over every class with `all_classes`."""
    model, ckpt = load_model(checkpoint)
    modality = geometry_modality(ckpt)
    data_cfg = data_with_overrides(data_cfg or checkpoint_data(ckpt) or DEFAULTS["data"], overrides or [])
    frames = open_split(data_cfg, split, quiet=True)
    classes = None if all_classes else output_classes(ckpt)
    start = time.perf_counter()
    confusion = evaluate(model, frames, modality, torch.device("cpu"), len(ckpt["classes"]), ckpt["input_size"],
                         workers, progress=f"lix-eval {Path(checkpoint).name}" if progress else None,
                         classes=classes)
    scores = scores_from_confusion(confusion)
    return {"checkpoint": str(checkpoint), "split": split, "data": frames.description, "frames": len(frames),
            "input_size": ckpt["input_size"], "modalities": ckpt["modalities"], "arch": ckpt["arch"],
            "seconds": time.perf_counter() - start, **scores.as_dict(ckpt["classes"]),
            "confusion": confusion.tolist(), "classes": ckpt["classes"], "output_classes": classes}


def row_names(checkpoints: list[str]) -> list[str]:
    """Short unique names: the parent folder (runs/a/final.pt -> a), longer paths where those collide."""
    paths = [Path(c) for c in checkpoints]
    names = [p.parent.name or p.stem for p in paths]
    for depth in range(1, 6):
        if len(set(names)) == len(names):
            return names
        names = ["/".join((*p.parent.parts[-depth:], p.stem)) for p in paths]
    return [f"{n}#{i}" for i, n in enumerate(names, 1)]


@friendly_errors("lix-eval")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-eval", description=__doc__,
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("checkpoint", nargs="+", help="one or more checkpoints (.pt)")
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="test_in exists for the synthetic families only")
    parser.add_argument("--config", help="training YAML whose data section to use instead of the checkpoint's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="data key changed on top of the checkpoint's (or --config's) data, e.g. "
                             "--set data.cache_dir=/data/cache or --set data.source=cityscapes --set data.root=/cs")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding frames")
    parser.add_argument("--out", type=Path, default=Path("out/eval"), help="output folder")
    parser.add_argument("--all-classes", action="store_true", help="take the argmax over every class, also those "
                        "the checkpoint's training labels never contained (by default they are never predicted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    data_cfg = load_config(args.config)["data"] if args.config else None
    args.out.mkdir(parents=True, exist_ok=True)
    results, sections = [], []
    summary = ["| checkpoint | data | modalities | input size | mIoU (%) | pixel acc. (%) |",
               "|---|---|---|---|---:|---:|"]
    for checkpoint, name in zip(args.checkpoint, row_names(args.checkpoint)):
        try:
            result = evaluate_checkpoint(checkpoint, data_cfg, args.split, args.workers, progress=not args.quiet,
                                         overrides=args.set, all_classes=args.all_classes)
        except CheckpointError as error:
            raise ValueError(str(error)) from None
        result["name"] = name
        results.append(result)
        size = "x".join(map(str, result["input_size"]))
        summary.append(f"| {name} | {result['data']} ({result['frames']} frames) | {'+'.join(result['modalities'])} | "
                       f"{size} | {100 * result['miou']:.2f} | {100 * result['pixel_accuracy']:.2f} |")
        sections.append(markdown_table(name, result))
        safe = name.replace("/", "_").replace("#", "_")
        plot_confusion(np.array(result["confusion"]), result["classes"], args.out / f"confusion_{safe}.png",
                       f"{name} ({args.split})")
        print(f"{name}: mIoU {100 * result['miou']:.2f}  pixel acc {100 * result['pixel_accuracy']:.2f}  "
              f"on {result['data']} ({result['frames']} frames, input {size}, {'+'.join(result['modalities'])})")
    (args.out / "metrics.json").write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    header = f"# Evaluation on the {args.split} split\n"
    (args.out / "metrics.md").write_text(header + "\n" + "\n".join(summary) + "\n\n" + "\n".join(sections))
    print(f"wrote {args.out}/metrics.json, metrics.md, confusion_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
