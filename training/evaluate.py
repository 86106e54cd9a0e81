"""`lix-eval`: confusion matrix, per-class IoU, mIoU and pixel accuracy of a checkpoint over a split.

Writes <out>/metrics.json, <out>/metrics.md and <out>/confusion.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lix_ros.cli.common import friendly_errors
from lix_ros.core.checkpoint import CheckpointError, geometry_modality, load_model
from lix_ros.core.metrics import scores_from_confusion
from lix_training.config import DEFAULTS, load_config
from lix_training.data import load_samples
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


def evaluate_checkpoint(checkpoint: str | Path, data_cfg: dict, split: str) -> dict:
    model, ckpt = load_model(checkpoint)
    modality = geometry_modality(ckpt)
    samples = load_samples(data_cfg, split, quiet=True)
    start = time.perf_counter()
    confusion = evaluate(model, samples, modality, torch.device("cpu"), len(ckpt["classes"]))
    scores = scores_from_confusion(confusion)
    return {"checkpoint": str(checkpoint), "split": split, "frames": len(samples), "modalities": ckpt["modalities"],
            "arch": ckpt["arch"], "seconds": time.perf_counter() - start, **scores.as_dict(ckpt["classes"]),
            "confusion": confusion.tolist(), "classes": ckpt["classes"]}


@friendly_errors("lix-eval")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-eval", description=__doc__)
    parser.add_argument("checkpoint", nargs="+", help="one or more checkpoints (.pt)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--config", help="training YAML whose data section to use (default: synthetic defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path("out/eval"))
    args = parser.parse_args(argv)
    data_cfg = load_config(args.config, args.set)["data"] if (args.config or args.set) else DEFAULTS["data"]
    args.out.mkdir(parents=True, exist_ok=True)
    results, markdown = [], [f"# Evaluation on the {args.split} split\n"]
    summary = ["| checkpoint | modalities | mIoU (%) | pixel acc. (%) |", "|---|---|---:|---:|"]
    for checkpoint in args.checkpoint:
        try:
            result = evaluate_checkpoint(checkpoint, data_cfg, args.split)
        except CheckpointError as error:
            raise ValueError(str(error)) from None
        results.append(result)
        name = Path(checkpoint).parent.name or Path(checkpoint).stem
        summary.append(f"| {name} | {'+'.join(result['modalities'])} | {100 * result['miou']:.2f} | "
                       f"{100 * result['pixel_accuracy']:.2f} |")
        markdown.append(markdown_table(name, result))
        plot_confusion(np.array(result["confusion"]), result["classes"], args.out / f"confusion_{name}.png",
                       f"{name} ({args.split})")
        print(f"{name}: mIoU {100 * result['miou']:.2f}  pixel acc {100 * result['pixel_accuracy']:.2f}  "
              f"({result['frames']} frames, {'+'.join(result['modalities'])})")
    (args.out / "metrics.json").write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    (args.out / "metrics.md").write_text(markdown[0] + "\n" + "\n".join(summary) + "\n\n" + "\n".join(markdown[1:]))
    print(f"wrote {args.out}/metrics.json, metrics.md, confusion_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
