"""Synthetic generator speed on one core and the class histogram of each family.

Prints frames/s at 512x256 with every output (RGB, depth, labels, LiDAR points, LiDAR sparse depth),
both for independent scenes (one new scene per frame, as in training sets) and for a drive (one scene,
a moving camera, as in bags). Goal: >= 10 frames/s.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

from lix_ros.data.classes import CLASS_NAMES, NUM_CLASSES
from lix_ros.data.synthetic import drive, render_frame, split_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    render_frame(0, args.width, args.height)  # warm caches (texture bank)
    histograms = {}
    for split in ("train", "val", "test"):
        counts = np.zeros(NUM_CLASSES + 1, np.int64)
        seeds = split_seeds(split, args.frames)
        start = time.perf_counter()
        for seed in seeds:
            frame = render_frame(seed, args.width, args.height)
            counts += np.bincount(np.minimum(frame.label.ravel(), NUM_CLASSES), minlength=NUM_CLASSES + 1)
        elapsed = time.perf_counter() - start
        histograms[split] = counts
        print(f"{split:5s}: {args.frames / elapsed:6.1f} frames/s  (new scene per frame, {args.width}x{args.height}, "
              f"1 core, all outputs)")
    start = time.perf_counter()
    for _ in drive(7, args.frames, width=args.width, height=args.height):
        pass
    print(f"drive: {args.frames / (time.perf_counter() - start):6.1f} frames/s  (one scene, moving camera)")

    print("\nclass histogram (% of pixels)")
    print(f"{'class':15s}" + "".join(f"{s:>8s}" for s in histograms))
    for class_id, name in enumerate([*CLASS_NAMES, "ignore"]):
        row = [100 * h[class_id] / h.sum() for h in histograms.values()]
        print(f"{name:15s}" + "".join(f"{v:8.2f}" for v in row))


if __name__ == "__main__":
    main()
