"""Streaming training data: peak memory of `lix-train` does not grow with the number of frames, and the loader
keeps up with the trainer.

    python benchmarks/bench_data_loading.py [--counts 30,120] [--steps 40] [--workers 2]

Makes a Cityscapes-layout export at 2048 x 1024 (synthetic frames upscaled: the loader's cost is in the file
sizes), then for each frame count runs `lix-train` on it (frames resized on load to --frame-size, crops of
--crop) while sampling the resident memory of the trainer and its loader workers every 50 ms. Prints, side by
side: peak RSS (process tree), what the decoded frames would hold if kept in memory, the loader's rate alone
(batches/s with --workers processes) and the trainer's rate (steps/s, median of log.csv).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2

from lix_ros.data.cityscapes import export_frames
from lix_ros.data.synthetic import render_frame, split_seeds

FULL = (1024, 2048)


def upscale(frame, size):
    h, w = size
    s = w / frame.rgb.shape[1]
    frame.rgb = cv2.resize(frame.rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    frame.label = cv2.resize(frame.label, (w, h), interpolation=cv2.INTER_NEAREST)
    frame.depth = cv2.resize(frame.depth, (w, h), interpolation=cv2.INTER_NEAREST)
    frame.lidar_depth = cv2.resize(frame.lidar_depth, (w, h), interpolation=cv2.INTER_NEAREST)
    frame.K = frame.K.copy()
    frame.K[:2] *= s
    return frame


def make_export(root: Path, count: int, unique: int = 12) -> None:
    """`count` training frames (cycling through `unique` rendered scenes) + 8 val frames, at 2048 x 1024."""
    scenes = [upscale(render_frame(seed, 512, 256), FULL) for seed in split_seeds("train", unique)]
    for i in range(count):
        frame = scenes[i % unique]
        frame.seed, frame.stamp = i, i * 0.1
        export_frames([frame], root, "train")
    for i in range(8):
        frame = scenes[i % unique]
        frame.seed, frame.stamp = 10_000 + i, i * 0.1
        export_frames([frame], root, "val")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def train(root: Path, out: Path, args) -> tuple[float, float]:
    """(peak tree RSS in MB, median steps/s) of one lix-train run."""
    command = [sys.executable, "-m", "lix_training.cli", "--quiet", "--out", str(out)]
    for override in ("data.source=cityscapes", f"data.root={root}", f"data.frame_size=[{args.frame_size}]",
                     f"data.crop_size=[{args.crop}]", f"data.workers={args.workers}", "model.preset=small",
                     f"steps={args.steps}", "batch_size=8", f"val_every={args.steps}", "threads=1", "log_every=1"):
        command += ["--set", override]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_mb(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode:
        sys.exit(f"lix-train failed: {stderr.strip().splitlines()[-1]}")
    with (out / "log.csv").open() as handle:
        seconds = [float(r["sec_per_step"]) for r in csv.DictReader(handle)][2:]  # skip warm-up steps
    return peak, 1.0 / statistics.median(seconds)


def loader_rate(root: Path, args) -> float:
    """Batches per second of the loader alone, with the trainer's settings."""
    from lix_ros.data.augment import Augment
    from lix_training.config import load_config
    from lix_training.data import StepBatches, open_split, step_loader

    data = load_config(None, ["data.source=cityscapes", f"data.root={root}"])["data"]
    frames = open_split(data, "train")
    frames.frame_size = tuple(int(v) for v in args.frame_size.split(","))
    crop = tuple(int(v) for v in args.crop.split(","))
    batches = StepBatches(frames, 8, 0, Augment(crop, (0.75, 1.25), True), [None])
    loader = step_loader(batches, 0, 4 + args.steps, args.workers)
    for _ in range(4):
        next(loader)  # workers started, pipeline full
    start = time.perf_counter()
    for _ in range(args.steps):
        next(loader)
    return args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="30,120", help="frame counts to compare (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="loader processes (default: %(default)s)")
    parser.add_argument("--frame-size", default="256,512", help="h,w frames are resized to (default: %(default)s)")
    parser.add_argument("--crop", default="128,256", help="h,w training crop (default: %(default)s)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    decoded_mb = (FULL[0] * FULL[1] * (3 + 1 + 4 + 4)) / 2**20  # rgb + label + depth + lidar depth, float32
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for count in counts:
            root = Path(scratch) / f"export_{count}"
            started = time.perf_counter()
            make_export(root, count)
            print(f"exported {count} frames at {FULL[1]}x{FULL[0]} in {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
            peak, steps_per_s = train(root, Path(scratch) / f"run_{count}", args)
            rows.append((count, peak, count * decoded_mb, loader_rate(root, args), steps_per_s))
    print(f"lix-train on a Cityscapes-layout export at {FULL[1]}x{FULL[0]}, frames resized to {args.frame_size}, "
          f"crops {args.crop}, batch 8, {args.steps} steps, {args.workers} loader workers, 1 trainer thread")
    print("| frames | peak RSS, trainer + workers (MB) | decoded frames if held in memory (MB) | "
          "loader (batches/s) | trainer (steps/s) |")
    print("|---:|---:|---:|---:|---:|")
    for count, peak, held, loader, trainer in rows:
        print(f"| {count} | {peak:.0f} | {held:.0f} | {loader:.2f} | {trainer:.2f} |")
    growth = rows[-1][1] - rows[0][1]
    print(f"peak RSS growth {rows[0][0]} -> {rows[-1][0]} frames: {growth:+.0f} MB (goal < 300 MB); "
          f"loader / trainer rate: {rows[-1][3] / rows[-1][4]:.1f}x (goal >= 1)")


if __name__ == "__main__":
    main()
