"""Where a distillation training step spends its time: data, teacher forward, student forward, the
method's losses, backward + optimiser step — per method, at one or more crop sizes, one thread.

    python benchmarks/profile_train_step.py [--crops 128x256,96x192] [--methods kd,cwd,lix] [--steps 6]
                                            [--student small] [--norm group] [--batch 8]

Data time is StepBatches[step] (in process) on synthetic frames (rendered into a scratch cache of --frames frames):
decoded from PNG every step (the default) and from frames decoded once into memory (`data.preload: true`).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from lix_ros.data.augment import Augment
from lix_ros.models.build import PRESETS, build_model
from lix_ros.models.layers import NORMS
from lix_training.config import load_config
from lix_training.data import StepBatches, open_split, preload
from lix_training.distill import build_distiller

METHODS = {
    "student": [],
    "kd": [{"name": "kd", "temperature": 1.0}],
    "dkd": [{"name": "dkd", "temperature": 1.0, "beta": 1.0}],
    "cwd": [{"name": "cwd"}],
    "at": [{"name": "at"}],
    "pfs": [{"name": "pfs"}],
    "mkat": [{"name": "mkat"}],
    "lix_logit": [{"name": "lix_logit", "temperature": 1.0, "beta": 1.0}],
    "lix_feature": [{"name": "lix_feature"}],
    "lix": [{"name": "lix_logit", "temperature": 1.0, "beta": 1.0}, {"name": "lix_feature"}],
    "lix_channel": [{"name": "lix_channel", "temperature": 4.0}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", default="128x256,96x192", help="HxW crop sizes (default: %(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS), help="subset of %(default)s")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per cell after 2 warm-up steps")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--student", default="small", choices=sorted(PRESETS), help="student preset (the teacher "
                        "stays small, as in the benchmark)")
    parser.add_argument("--norm", default="group", choices=NORMS, help="normalisation of student and teacher")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cache = tempfile.TemporaryDirectory()  # frames are read lazily: the cache lives as long as the process
    data_cfg = load_config(None, [f"data.cache_dir={cache.name}", f"data.train_count={args.frames}"])["data"]
    frames = open_split(data_cfg, "train", quiet=True)
    preloaded = preload(frames, 0)
    print(f"ms per step, batch {args.batch}, 1 thread (median of {args.steps}); student {args.student}, "
          f"{args.norm} norm")
    print("| crop | method | data | data (preloaded) | teacher fwd | student fwd | losses | backward + step "
          "| total | total (preloaded) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    teacher = build_model({"kind": "teacher", "preset": "small", "modality": "depth", "norm": args.norm}).eval()
    for crop in args.crops.split(","):
        h, w = (int(v) for v in crop.split("x"))
        augment = Augment((h, w), (0.75, 1.25), True)
        batcher = StepBatches(frames, args.batch, 0, augment, [None, "depth"])
        in_memory = StepBatches(preloaded, args.batch, 0, augment, [None, "depth"])
        for name in args.methods.split(","):
            student = build_model({"kind": "student", "preset": args.student, "norm": args.norm})
            distiller = build_distiller({"methods": METHODS[name]}, student, teacher) if METHODS[name] else None
            params = list(student.parameters()) + (list(distiller.parameters()) if distiller else [])
            optimizer = torch.optim.AdamW(params)
            times: dict[str, list[float]] = {k: [] for k in ("data", "teacher", "student", "losses", "backward",
                                                              "preloaded")}
            for step in range(args.steps + 2):
                t = time.perf_counter()
                in_memory[step]
                t0 = time.perf_counter()
                batch = batcher[step]
                t1 = time.perf_counter()
                with torch.no_grad():
                    teacher_out = teacher(batch["rgb"], batch["x:depth"]) if distiller else None
                t2 = time.perf_counter()
                out = student(batch["rgb"])
                t3 = time.perf_counter()
                loss = F.cross_entropy(out["logits"], batch["label"], ignore_index=255)
                if distiller:
                    loss = loss + sum(distiller(out, teacher_out, batch["label"], step, 100).values())
                t4 = time.perf_counter()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                t5 = time.perf_counter()
                if step >= 2:
                    for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t0 - t)):
                        times[key].append(1000 * value)
            med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
            total = sum(med.values()) - med["preloaded"]
            print(f"| {h}x{w} | {name} | {med['data']:.0f} | {med['preloaded']:.0f} | {med['teacher']:.0f} | "
                  f"{med['student']:.0f} | {med['losses']:.0f} | {med['backward']:.0f} | {total:.0f} | "
                  f"{total - med['data'] + med['preloaded']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
