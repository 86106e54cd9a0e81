"""`python -m lix_training.trained_classes CKPT...`: record, in checkpoints written before lix-train did, the
class ids their training labels contain (`trained_classes`, the only ids their output is read as).

lix-train records the classes of the labels it trained on as it goes. For an older checkpoint this reads the
training split of the data stored in it (with --set data.key=value changes, e.g. where frames are cached)
and scans its labels; the weights, and so their checksum, stay as they are. A checkpoint that already records
its classes is left alone unless --force.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors
from lix_ros.core.checkpoint import CheckpointError, atomic_save, read_checkpoint
from lix_training.config import DEFAULTS, data_with_overrides
from lix_training.data import Split, open_split, sample_loader
from lix_training.evaluate import checkpoint_data


def label_classes(frames: Split, num_classes: int, workers: int = 0) -> list[int]:
    """The class ids (< num_classes) the labels of `frames` contain."""
    seen = np.zeros(num_classes, bool)
    for sample in sample_loader(frames, workers):
        if sample.label is not None:
            ids = sample.label[sample.label < num_classes]
            seen |= np.bincount(ids.ravel(), minlength=num_classes)[:num_classes] > 0
    return [int(i) for i in np.flatnonzero(seen)]


def record(checkpoint: Path, overrides: list[str], workers: int = 0, force: bool = False) -> list[int] | None:
    """Adds `trained_classes` to the checkpoint file; returns them (None if it had them and not force)."""
    try:
        ckpt = read_checkpoint(checkpoint)
    except CheckpointError as error:
        raise CliError(str(error)) from None
    if "trained_classes" in ckpt and not force:
        return None
    data_cfg = data_with_overrides(checkpoint_data(ckpt) or DEFAULTS["data"], overrides)
    classes = label_classes(open_split(data_cfg, "train", quiet=True), len(ckpt["classes"]), workers)
    if not classes:
        raise CliError(f"{checkpoint}: the training split it names has no labelled pixel")
    atomic_save({**ckpt, "trained_classes": classes}, checkpoint)
    return classes


@friendly_errors("lix_training.trained_classes")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lix_training.trained_classes", description=__doc__,
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("checkpoint", nargs="+", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="data key changed on top of the checkpoint's data, e.g. data.cache_dir=/data/cache")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding frames")
    parser.add_argument("--force", action="store_true", help="scan again a checkpoint that records its classes")
    args = parser.parse_args(argv)
    for checkpoint in args.checkpoint:
        classes = record(checkpoint, args.set, args.workers, args.force)
        if classes is None:
            print(f"{checkpoint}: already records trained_classes (--force to scan again)")
        else:
            print(f"{checkpoint}: trained_classes {classes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
