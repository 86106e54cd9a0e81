"""`lix-train`: train a teacher or a student (supervised or distilled) from a YAML config."""

from __future__ import annotations

import argparse
import json
import sys

from lix_ros.cli.common import friendly_errors
from lix_ros.core.checkpoint import CheckpointError
from lix_training.config import load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lix-train", description=__doc__)
    parser.add_argument("--config", help="training YAML (config/training/*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set steps=200 --set data.train_count=100")
    parser.add_argument("--out", help="output directory (overrides out_dir)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt exactly")
    parser.add_argument("--stop-after", type=int, help="stop after this many steps of this invocation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@friendly_errors("lix-train")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.set) + ([f"out_dir={args.out}"] if args.out else [])
    config = load_config(args.config, overrides)
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
