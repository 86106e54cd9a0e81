"""`lix-data`: preview and export data (synthetic scenes, Cityscapes and KITTI layouts)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors
from lix_ros.core.constants import LIDAR_BEAMS
from lix_ros.data.cityscapes import CityscapesDataset, export_frames
from lix_ros.data.io import write_image
from lix_ros.data.kitti import KittiSemanticDataset
from lix_ros.data.preview import mosaic
from lix_ros.data.sample import Sample
from lix_ros.data.synthetic import FAMILIES, LidarConfig, render_frame, split_seeds


def frame_to_sample(frame) -> Sample:
    return Sample(frame.rgb, frame.label, frame.K, frame.depth, frame.lidar_depth, name=frame.name)


def _samples(args) -> list[Sample]:
    if args.cityscapes:
        dataset = CityscapesDataset(args.cityscapes, args.split if args.split in ("train", "val", "test") else "train")
    elif args.kitti:
        dataset = KittiSemanticDataset(args.kitti, "training")
    else:
        seeds = split_seeds(args.split, args.count, args.offset)
        return [frame_to_sample(render_frame(s, args.width, args.height, LidarConfig(beams=args.beams)))
                for s in seeds]
    return [dataset[i] for i in range(min(args.count, len(dataset)))]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lix-data", description=__doc__, formatter_class=DefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    preview = sub.add_parser("preview", help="write a PNG mosaic: RGB | depth | normals | LiDAR depth | labels")
    preview.add_argument("--out", type=Path, default=Path("out/preview.png"))
    preview.add_argument("--split", default="train", choices=sorted(FAMILIES), help="synthetic family")
    preview.add_argument("--count", type=int, default=4)
    preview.add_argument("--offset", type=int, default=0, help="first seed's offset in the family's range")
    preview.add_argument("--width", type=int, default=512)
    preview.add_argument("--height", type=int, default=256)
    preview.add_argument("--beams", type=int, default=LIDAR_BEAMS, help="LiDAR beams")
    source = preview.add_mutually_exclusive_group()
    source.add_argument("--cityscapes", type=Path, help="preview a Cityscapes-layout folder instead")
    source.add_argument("--kitti", type=Path, help="preview a KITTI semantic folder instead")

    export = sub.add_parser("export", help="render synthetic frames into the Cityscapes layout")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--split", default="train", choices=sorted(FAMILIES))
    export.add_argument("--count", type=int, default=100)
    export.add_argument("--offset", type=int, default=0)
    export.add_argument("--width", type=int, default=512)
    export.add_argument("--height", type=int, default=256)
    export.add_argument("--beams", type=int, default=LIDAR_BEAMS)
    return parser


@friendly_errors("lix-data")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1:
        raise CliError("--count must be at least 1")
    if args.command == "preview":
        image = mosaic(_samples(args))
        write_image(args.out, image, rgb=True)
        print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})")
    else:
        from tqdm import tqdm

        seeds = split_seeds(args.split, args.count, args.offset)
        frames = (render_frame(s, args.width, args.height, LidarConfig(beams=args.beams))
                  for s in tqdm(seeds, desc=f"export {args.split}", unit="frame", file=sys.stderr))
        paths = export_frames(frames, args.out, args.split)
        print(f"wrote {len(paths)} frames to {args.out} (Cityscapes layout, split {args.split})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
