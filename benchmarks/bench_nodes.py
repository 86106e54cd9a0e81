"""Node performance, measured side by side in one run (figures, not a timed test).

1. Model-only time: Segmenter.predict in this process (decode excluded), per frame size, in a tight loop on
   an otherwise idle process.
2. End to end: a probe publishes camera frames at 10 and 30 Hz to lix-bringup (another process, shipped
   Fast DDS profile) and times publish -> /lix/semantic receipt; median and p99, and the ratio
   end-to-end / model-only (goal <= 1.10 at 640x480). The node's own per-frame processing time (its
   lix/processing_time topic) is printed beside it, which splits the ratio into "the same model call is
   slower inside the node while the probe and DDS share the cores" and "transport + decode + encode".
   --threads sets torch's intra-op threads in this process and in the node alike.
3. Student vs teacher throughput (frames/s, model-only, 640x480).
4. Memory: resident size of the node process after 100 frames and after --memory-frames frames.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from lix_ros.core.dds import configure_dds_env

configure_dds_env()
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "helpers"))
from ros_probe import Bringup, Probe, image  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from lix_ros.core.constants import TEST_FAMILY_SEED  # noqa: E402
from lix_ros.core.default_checkpoints import default_checkpoint  # noqa: E402
from lix_ros.core.inference import Segmenter, set_torch_threads  # noqa: E402
from lix_ros.data.synthetic import render_frame  # noqa: E402

SIZES = {"640x480": (480, 640), "1280x720": (720, 1280)}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def model_only(segmenter: Segmenter, rgb: np.ndarray, repeats: int, **kwargs) -> np.ndarray:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        segmenter.predict(rgb, **kwargs)
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000


def stage(text: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    print(f"[bench_nodes] {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=100, help="frames per latency measurement")
    parser.add_argument("--memory-frames", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = parser.parse_args()

    frame = render_frame(TEST_FAMILY_SEED, 640, 320)
    inputs = {name: cv2.resize(frame.rgb, (w, h)) for name, (h, w) in SIZES.items()}
    set_torch_threads([args.threads])
    student = Segmenter(default_checkpoint("student"))
    teacher = Segmenter(default_checkpoint("teacher"), expect_modality="depth")
    print(f"model input {student.input_size}, torch threads {__import__('torch').get_num_threads()}")
    stage(f"model-only timing: {args.frames} frames at each of {', '.join(inputs)}")
    model_ms = {name: model_only(student, rgb, args.frames) for name, rgb in inputs.items()}
    depth = cv2.resize(frame.depth, (640, 480), interpolation=cv2.INTER_NEAREST)
    K = frame.K.copy()
    teacher_ms = model_only(teacher, inputs["640x480"], args.frames, depth=depth, K=K)

    stage("starting the student node (lix-bringup)")
    params = Path(tempfile.mkdtemp()) / "bench_params.yaml"
    params.write_text(f"/**/segmentation_node:\n  ros__parameters:\n    threads: {args.threads}\n")
    bringup = Bringup("--namespace", "/bench", "--image", "/bench/camera", "--params", str(params))
    probe = Probe("lix_bench_probe")
    received: dict[str, float] = {}
    node_ms: list[float] = []
    probe.node.create_subscription(Image, "/bench/lix/semantic",
                                   lambda m: received.setdefault(m.header.frame_id, time.perf_counter()), 50)
    probe.node.create_subscription(Float32, "/bench/lix/processing_time", lambda m: node_ms.append(m.data), 50)
    probe.publisher(Image, "/bench/camera")
    probe.publisher(CameraInfo, "/bench/info")
    probe.wait_matched("/bench/camera", timeout=60)
    pid = bringup.process.pid

    print("\n| input | rate | model-only median / p99 (ms) | in-node processing median (ms) | "
          "end-to-end median / p99 (ms) | ratio e2e / model-only | ratio e2e / in-node | frames lost |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rgb in inputs.items():
        for rate in (10, 30):
            stage(f"end to end: {args.frames} frames of {name} at {rate} Hz")
            sent: dict[str, float] = {}
            node_ms.clear()
            for i in range(args.frames):
                frame_id = f"{name}_{rate}_{i}"
                msg = image(probe.stamp(time.time()), frame_id, rgb)
                sent[frame_id] = time.perf_counter()
                probe.publishers["/bench/camera"].publish(msg)
                probe.spin(1.0 / rate)
            probe.spin(1.0)
            latency = np.array([(received[k] - t) * 1000 for k, t in sent.items() if k in received])
            lost = len(sent) - len(latency)
            m, in_node = model_ms[name], np.median(node_ms)
            print(f"| {name} | {rate} Hz | {np.median(m):.1f} / {np.percentile(m, 99):.1f} | {in_node:.1f} | "
                  f"{np.median(latency):.1f} / {np.percentile(latency, 99):.1f} | "
                  f"{np.median(latency) / np.median(m):.2f} | {np.median(latency) / in_node:.2f} | "
                  f"{lost} (dropped as stale) |")

    print(f"\nthroughput, model-only at 640x480: student {1000 / np.median(model_ms['640x480']):.1f} frames/s, "
          f"teacher (RGB + depth) {1000 / np.median(teacher_ms):.1f} frames/s "
          f"(ratio {np.median(teacher_ms) / np.median(model_ms['640x480']):.2f}x)")

    small = cv2.resize(frame.rgb, (320, 160))
    memory = {}
    stage(f"memory: {args.memory_frames} frames")
    for i in tqdm(range(args.memory_frames), desc="memory run", unit="frame", file=sys.stderr, mininterval=2.0):
        probe.publishers["/bench/camera"].publish(image(probe.stamp(time.time()), f"mem{i}", small))
        probe.spin(0.004)
        if i + 1 in (100, args.memory_frames):
            probe.spin(1.0)
            memory[i + 1] = rss_mb(pid)
    print(f"node RSS after 100 frames: {memory[100]:.1f} MB; after {args.memory_frames} frames: "
          f"{memory[args.memory_frames]:.1f} MB (growth {memory[args.memory_frames] - memory[100]:+.1f} MB)")
    probe.close()
    bringup.stop()


if __name__ == "__main__":
    main()
