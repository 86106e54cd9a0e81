"""Node performance per inference backend, measured side by side in one run (figures, not a timed test).

    python benchmarks/bench_nodes.py [--backends torch,onnxruntime] [--threads 1] [--quick]

1. Model-only time: Segmenter.predict in this process (decode excluded) per backend, at the checkpoint's input
   size (no resize) and at 640x480 and 1280x720 camera frames, in a tight loop on an otherwise idle process;
   the onnxruntime / torch speed-up is printed per size.
2. End to end, per backend: a probe publishes camera frames at 10 (and 30) Hz to lix-bringup (another process,
   shipped Fast DDS profile, `backend` parameter set) and times publish -> /lix/semantic receipt; median and
   p99, the ratio end-to-end / model-only, and the node's own per-frame processing time (lix/processing_time)
   beside it, which splits the ratio into "the same model call is slower inside the node while the probe and
   DDS share the cores" and "transport + decode + encode". --threads sets the intra-op threads in this
   process and in the node alike.
   Beside it, the transport floor: the same probe and frames through a relay process (rclpy, one executor
   thread, the node's QoS) that decodes each frame and publishes an empty mask of its size with its header,
   with no model: what any Python node pays to receive an image and send a mask back. e2e - in-node minus
   that floor is what lix_ros's node itself adds around the model call.
3. Student vs teacher throughput (frames/s, model-only, 640x480), per backend.
4. Memory: resident size of the node process after 100 frames and after --memory-frames frames.
5. --compare CHECKPOINT[,...]: other students (e.g. the 1.5x wide student of `--preset converged_wide`)
   timed model-only at the same inputs and backends, interleaved with the default student frame by frame
   (so both see the same machine load), with their parameter count and the time ratio to the default.
--quick: 20 frames per cell, 10 Hz only, no teacher and no memory run (well under a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lix_ros.cli.common import DefaultsHelpFormatter
from lix_ros.core.dds import configure_dds_env

configure_dds_env()
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "helpers"))
from ros_probe import Bringup, Probe, image  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from lix_ros.core.constants import TEST_FAMILY_SEED  # noqa: E402
from lix_ros.core.default_checkpoints import default_checkpoint, resolve_checkpoint  # noqa: E402
from lix_ros.core.inference import BACKENDS, Segmenter, set_torch_threads  # noqa: E402
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


def parameter_count(checkpoint: str) -> int:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running_" not in k)


def compare_students(args, inputs: dict) -> None:
    """Model-only time of each --compare checkpoint vs the default student, alternating frame by frame."""
    default = default_checkpoint("student")
    others = [str(resolve_checkpoint(c.strip())) for c in args.compare.split(",") if c.strip()]
    for checkpoint in others:
        if not Path(checkpoint).is_file():
            sys.exit(f"bench_nodes: --compare checkpoint {checkpoint} not found")
    print("\n| student | parameters | backend | input | model-only median (ms) | default student median (ms) | "
          "ratio to the default |")
    print("|---|---:|---|---|---:|---:|---:|")
    for checkpoint in others:
        stage(f"compare: {checkpoint} vs {default}")
        for b in args.backends:
            pair = {"other": Segmenter(checkpoint, backend=b, threads=args.threads),
                    "default": Segmenter(default, backend=b, threads=args.threads)}
            for name, rgb in inputs.items():
                times: dict[str, list[float]] = {"other": [], "default": []}
                for _ in range(args.frames):
                    for key, segmenter in pair.items():
                        times[key].append(float(model_only(segmenter, rgb, 1)[0]))
                other, base = np.median(times["other"]), np.median(times["default"])
                print(f"| {checkpoint} | {parameter_count(checkpoint) / 1e6:.2f} M | {b} | {name} | {other:.1f} | "
                      f"{base:.1f} | {other / base:.2f}x |")
    print(f"(default student {default}: {parameter_count(default) / 1e6:.2f} M parameters)")


def stage(text: str) -> None:
    """Progress on stderr, so stdout stays the tables."""
    print(f"[bench_nodes] {text}", file=sys.stderr, flush=True)


def relay_main() -> None:
    """--relay (internal): image -> decode -> empty mono8 mask of its size, header copied; no model."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from lix_ros.core.image_codec import decode_color
    from lix_ros.nodes.common import OUTPUT_QOS, input_qos, mono8_msg

    rclpy.init()
    node = rclpy.create_node("bench_relay")
    publisher = node.create_publisher(Image, "/bench/relay/lix/semantic", OUTPUT_QOS)

    def relay(msg: Image) -> None:
        rgb = decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)
        publisher.publish(mono8_msg(msg.header, np.zeros(rgb.shape[:2], np.uint8)))

    node.create_subscription(Image, "/bench/relay/camera", relay, input_qos("best_effort", 1))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):
        executor.spin()


def publish_and_time(probe: Probe, topic: str, tag: str, rgb: np.ndarray, frames: int, rate: int,
                     received: dict[str, float]) -> np.ndarray:
    """Publish `frames` frames at `rate` and return the publish -> receipt latencies (ms) of those answered."""
    sent: dict[str, float] = {}
    for i in range(frames):
        frame_id = f"{tag}_{i}"
        msg = image(probe.stamp(time.time()), frame_id, rgb)
        sent[frame_id] = time.perf_counter()
        probe.publishers[topic].publish(msg)
        probe.spin(1.0 / rate)
    probe.spin(1.0)
    return np.array([(received[k] - t) * 1000 for k, t in sent.items() if k in received])


def transport_floor(inputs: dict, rates: tuple[int, ...], args) -> dict[tuple[str, int], float]:
    """Median publish -> receipt latency (ms) through the relay (no model) per (input, rate)."""
    stage("transport floor: relay process (decode + empty mask, no model)")
    relay = subprocess.Popen([sys.executable, __file__, "--relay"], env=os.environ.copy(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    probe = Probe("lix_bench_probe_relay")
    received: dict[str, float] = {}
    probe.node.create_subscription(Image, "/bench/relay/lix/semantic",
                                   lambda m: received.setdefault(m.header.frame_id, time.perf_counter()), 50)
    probe.publisher(Image, "/bench/relay/camera")
    floor = {}
    try:
        probe.wait_matched("/bench/relay/camera", timeout=60)
        for name, rgb in inputs.items():
            for rate in rates:
                latency = publish_and_time(probe, "/bench/relay/camera", f"relay_{name}_{rate}", rgb,
                                           args.frames, rate, received)
                floor[(name, rate)] = float(np.median(latency)) if len(latency) else float("nan")
    finally:
        probe.close()
        relay.send_signal(2)
        try:
            relay.wait(timeout=10)
        except subprocess.TimeoutExpired:
            relay.kill()
    return floor


def end_to_end(backend: str, inputs: dict, rates: tuple[int, ...], args, model_ms: dict,
               floor: dict[tuple[str, int], float]) -> list[str]:
    """Rows of the end-to-end table for one backend (a fresh lix-bringup with `backend` set)."""
    stage(f"{backend}: starting the student node (lix-bringup)")
    params = Path(tempfile.mkdtemp()) / "bench_params.yaml"
    params.write_text(f"/**/segmentation_node:\n  ros__parameters:\n    threads: {args.threads}\n"
                      f"    backend: {backend}\n")
    bringup = Bringup("--namespace", "/bench", "--image", "/bench/camera", "--params", str(params))
    probe = Probe(f"lix_bench_probe_{backend}")
    received: dict[str, float] = {}
    node_ms: list[float] = []
    probe.node.create_subscription(Image, "/bench/lix/semantic",
                                   lambda m: received.setdefault(m.header.frame_id, time.perf_counter()), 50)
    probe.node.create_subscription(Float32, "/bench/lix/processing_time", lambda m: node_ms.append(m.data), 50)
    probe.publisher(Image, "/bench/camera")
    probe.publisher(CameraInfo, "/bench/info")
    rows = []
    try:
        probe.wait_matched("/bench/camera", timeout=120)
        for name, rgb in inputs.items():
            for rate in rates:
                stage(f"{backend}: end to end, {args.frames} frames of {name} at {rate} Hz")
                node_ms.clear()
                latency = publish_and_time(probe, "/bench/camera", f"{backend}_{name}_{rate}", rgb, args.frames,
                                           rate, received)
                if not len(latency):
                    rows.append(f"| {backend} | {name} | {rate} Hz | no output received | | | | | | | |")
                    continue
                m, in_node = model_ms[(backend, name)], np.median(node_ms) if node_ms else float("nan")
                e2e, relay = np.median(latency), floor[(name, rate)]
                rows.append(f"| {backend} | {name} | {rate} Hz | {np.median(m):.1f} / {np.percentile(m, 99):.1f} | "
                            f"{in_node:.1f} | {e2e:.1f} / {np.percentile(latency, 99):.1f} | {relay:.1f} | "
                            f"{e2e - in_node - relay:+.1f} | {e2e / np.median(m):.2f} | {e2e / in_node:.2f} | "
                            f"{args.frames - len(latency)} |")
        if not args.quick and backend == args.backends[-1]:
            rows.append(memory_run(probe, bringup.process.pid, inputs, args))
    finally:
        probe.close()
        bringup.stop()
    return rows


def two_cameras(backend: str, rgb: np.ndarray, args) -> str:
    """Two students in one lix-bringup (--cameras), each camera at 10 Hz: latency and loss per camera."""
    stage(f"{backend}: two cameras at 10 Hz each, {args.frames} frames per camera")
    params = Path(tempfile.mkdtemp()) / "bench_params.yaml"
    params.write_text(f"/**/segmentation_node:\n  ros__parameters:\n    threads: {args.threads}\n"
                      f"    backend: {backend}\n")
    cameras = ("bench_cam0", "bench_cam1")
    bringup = Bringup("--cameras", ",".join(cameras), "--params", str(params))
    probe = Probe(f"lix_bench_cameras_{backend}")
    received: dict[str, float] = {}
    for camera in cameras:
        probe.node.create_subscription(Image, f"/{camera}/lix/semantic",
                                       lambda m: received.setdefault(m.header.frame_id, time.perf_counter()), 50)
        probe.publisher(Image, f"/{camera}/image_raw")
    try:
        for camera in cameras:
            probe.wait_matched(f"/{camera}/image_raw", timeout=120)
        sent: dict[str, dict[str, float]] = {c: {} for c in cameras}
        for i in range(args.frames):
            for camera in cameras:
                frame_id = f"{camera}_{i}"
                msg = image(probe.stamp(time.time()), frame_id, rgb)
                sent[camera][frame_id] = time.perf_counter()
                probe.publishers[f"/{camera}/image_raw"].publish(msg)
            probe.spin(0.1)
        probe.spin(1.5)
    finally:
        probe.close()
        bringup.stop()
    cells = []
    for camera in cameras:
        latency = np.array([(received[k] - t) * 1000 for k, t in sent[camera].items() if k in received])
        figures = f"{np.median(latency):.1f} / {np.percentile(latency, 99):.1f} ms" if len(latency) else "no output"
        cells.append(f"{camera}: {figures}, {len(sent[camera]) - len(latency)} of {len(sent[camera])} lost")
    return f"CAMERAS two cameras at 10 Hz each, 640x480, {backend}, end to end median / p99: " + "; ".join(cells)


def memory_run(probe, pid: int, inputs: dict, args) -> str:
    small = cv2.resize(next(iter(inputs.values())), (320, 160))
    memory = {}
    stage(f"memory: {args.memory_frames} frames")
    for i in tqdm(range(args.memory_frames), desc="memory run", unit="frame", file=sys.stderr, mininterval=2.0):
        probe.publishers["/bench/camera"].publish(image(probe.stamp(time.time()), f"mem{i}", small))
        probe.spin(0.004)
        if i + 1 in (100, args.memory_frames):
            probe.spin(1.0)
            memory[i + 1] = rss_mb(pid)
    return (f"MEMORY node RSS after 100 frames: {memory[100]:.1f} MB; after {args.memory_frames} frames: "
            f"{memory[args.memory_frames]:.1f} MB (growth {memory[args.memory_frames] - memory[100]:+.1f} MB)")


def main() -> None:
    if sys.argv[1:] == ["--relay"]:
        relay_main()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--backends", default="torch,onnxruntime", help="comma-separated, of " + ", ".join(BACKENDS))
    parser.add_argument("--frames", type=int, default=100, help="frames per latency measurement")
    parser.add_argument("--memory-frames", type=int, default=10_000, help="frames of the memory run")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (0: the engine's own choice; default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="20 frames, 10 Hz only, no teacher, no memory run")
    parser.add_argument("--compare", default="",
                        help="comma-separated student checkpoints timed model-only beside the default student")
    parser.add_argument("--compare-only", action="store_true", help="only the --compare table (no nodes)")
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",")]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if args.quick:
        args.frames = min(args.frames, 20)
    rates = (10,) if args.quick else (10, 30)
    started = time.perf_counter()

    frame = render_frame(TEST_FAMILY_SEED, 640, 320)
    set_torch_threads([args.threads])
    students = {b: Segmenter(default_checkpoint("student"), backend=b, threads=args.threads) for b in args.backends}
    model_size = students[args.backends[0]].input_size
    inputs = {"model input": cv2.resize(frame.rgb, (model_size[1], model_size[0])),
              **{name: cv2.resize(frame.rgb, (w, h)) for name, (h, w) in SIZES.items()}}
    stage(f"model-only timing: {args.frames} frames at each of {', '.join(inputs)} per backend")
    model_ms = {(b, name): model_only(students[b], rgb, args.frames) for b in args.backends
                for name, rgb in inputs.items()}
    print(f"student {default_checkpoint('student')}, model input {model_size[0]}x{model_size[1]}, "
          f"intra-op threads {args.threads or 'default'}")
    print("\n| input | " + " | ".join(f"{b} model-only median / p99 (ms)" for b in args.backends)
          + (" | onnxruntime speed-up |" if {"torch", "onnxruntime"} <= set(args.backends) else " |"))
    print("|---|" + "---:|" * (len(args.backends) + ({"torch", "onnxruntime"} <= set(args.backends))))
    for name in inputs:
        cells = [f"{np.median(model_ms[(b, name)]):.1f} / {np.percentile(model_ms[(b, name)], 99):.1f}"
                 for b in args.backends]
        if {"torch", "onnxruntime"} <= set(args.backends):
            ratio = np.median(model_ms[("torch", name)]) / np.median(model_ms[("onnxruntime", name)])
            cells.append(f"{ratio:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")

    if args.compare:
        compare_students(args, inputs)
        if args.compare_only:
            return

    if not args.quick:
        depth = cv2.resize(frame.depth, (640, 480), interpolation=cv2.INTER_NEAREST)
        for b in args.backends:
            teacher = Segmenter(default_checkpoint("teacher"), expect_modality="depth", backend=b, threads=args.threads)
            teacher_ms = model_only(teacher, inputs["640x480"], args.frames, depth=depth, K=frame.K.copy())
            student_ms = model_ms[(b, "640x480")]
            print(f"\n{b}: throughput, model-only at 640x480: student {1000 / np.median(student_ms):.1f} frames/s, "
                  f"teacher (RGB + depth) {1000 / np.median(teacher_ms):.1f} frames/s "
                  f"(ratio {np.median(teacher_ms) / np.median(student_ms):.2f}x)")

    camera_inputs = {k: v for k, v in inputs.items() if k != "model input"}
    floor = transport_floor(camera_inputs, rates, args)
    rows = []
    for b in args.backends:
        rows += end_to_end(b, camera_inputs, rates, args, model_ms, floor)
    rows.append(two_cameras(args.backends[-1], inputs["640x480"], args))
    print("\n| backend | input | rate | model-only median / p99 (ms) | in-node processing median (ms) | "
          "end-to-end median / p99 (ms) | transport floor median (ms) | node overhead (ms) | e2e / model-only | "
          "e2e / in-node | frames lost (stale) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if row.startswith("|"):
            print(row)
    for row in rows:
        for tag in ("CAMERAS ", "MEMORY "):
            if row.startswith(tag):
                print("\n" + row.removeprefix(tag))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
