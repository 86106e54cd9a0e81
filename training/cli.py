"""`lix-train`: train a teacher or a student (supervised or distilled) from a YAML config.

The run folder (--out) receives last.pt (resumable, every checkpoint_every steps and on Ctrl-C / SIGTERM),
final.pt, log.csv, curves.png, config.yaml (the resolved config) and console.log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors
from lix_ros.core.checkpoint import CheckpointError
from lix_training.config import load_config

DATA_HELP = """data keys (config section `data`, or --set data.<key>=...):
  source        synthetic (default: rendered once into data/cache) | cityscapes | kitti | vkitti2 | bag
  root          the data set folder (cityscapes, kitti, vkitti2) or a bag path / list of bag paths (bag)
  splits        cityscapes: leftImg8bit/{train,val,test}; kitti: training/ with every k-th frame held out as
                val and test; vkitti2: data.vkitti2.scenes {train, val, test}; bag: every k-th frame held out;
                synthetic: train, val, test_in (unseen scenes, same family), test (shifted family)
  val_fraction  the held-out share (k = 1 / val_fraction) where a data set has no val split (default 0.1)
  frame_size    [h, w] frames are resized to on load; the size the node runs the model at (the checkpoint's
                input_size); null = the native size of the training frames
  crop_size     [h, w] random training crops of the (scaled) frames; scale_range, flip: augmentation
  workers       processes decoding frames (default 2; 0 = in the training process)
  *_count       synthetic frames per split (train_count, val_count, test_in_count, test_count)
See README "Bring your own data" and docs/distillation.md for the rest of the config."""

RUN_OUTPUTS = ("last.pt", "final.pt", "log.csv", "config.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lix-train", description=__doc__, epilog=DATA_HELP,
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--config", help="training YAML (config/training/*.yaml); default: built-in defaults")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set steps=200 --set data.train_count=100")
    parser.add_argument("--out", help="run folder (overrides out_dir; default runs/default)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <out>/last.pt exactly (the config must be the run's own)")
    parser.add_argument("--force", action="store_true", help="start a new run in an --out that holds another run")
    parser.add_argument("--stop-after", type=int, help="stop after this many steps of this invocation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@friendly_errors("lix-train")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.set) + ([f"out_dir={args.out}"] if args.out else [])
    config = load_config(args.config, overrides)
    out = Path(config["out_dir"])
    found = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if found and not args.resume and not args.force:
        raise CliError(f"{out} already holds a run ({', '.join(found)}): --resume to continue it, --force to "
                       "start over in it, or choose another --out")
    if args.force and not args.resume:
        for name in (*RUN_OUTPUTS, "console.log", "curves.png"):
            (out / name).unlink(missing_ok=True)
    from lix_training.trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume, quiet=args.quiet)
    except CheckpointError as error:
        raise ValueError(str(error)) from None
    result = trainer.fit(stop_after=args.stop_after)
    if trainer.is_main:
        print(json.dumps({"out_dir": str(trainer.out_dir), "step": result["step"],
                          "best_val_miou": round(result["best_val_miou"], 4), "seconds": round(result["seconds"], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
