"""`make demo` / `lix-demo`: the whole loop on one machine in about a minute.

synthetic drive bag (or yours: --bag) -> lix-bringup (student + teacher + A/B with hard-frame capture) ->
lix-bag play -> lix-bag record of the node outputs -> lix-bag eval of the recording -> summary and report.

With --bag, the bag's topics (named by --camera, --camera-info, --depth / --points, --labels) are replayed
under lix_ros's topic names; --student / --teacher choose the checkpoints (a LiDAR teacher replays --points and
the bag's /tf_static). Without ground truth in the bag the report scores student against teacher.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors
from lix_ros.core.constants import (
    AB_OUT,
    CAMERA,
    CAMERA_INFO,
    DEPTH,
    DIAGNOSTICS,
    GT,
    POINTS,
    STUDENT_OUT,
    TEACHER_OUT,
    TF_STATIC,
)
from lix_ros.core.dds import configure_dds_env

NODE_OUTPUTS = [STUDENT_OUT, TEACHER_OUT, AB_OUT, DIAGNOSTICS]
RECORDED = [*NODE_OUTPUTS, CAMERA, GT]


def replay_plan(available: dict[str, str], args: argparse.Namespace, lidar: bool) -> tuple[list[str], dict, dict]:
    """(bag topics to play, remap onto lix_ros's names, subscribers to wait for per published topic).

    Who listens: student + teacher + recorder on the camera, the teacher on its geometry and camera_info, the
    recorder on the ground truth."""
    geometry = (args.points, POINTS) if lidar else (args.depth, DEPTH)
    wanted = {args.camera: CAMERA, args.camera_info: CAMERA_INFO, geometry[0]: geometry[1], args.labels: GT}
    missing = [t for t in (args.camera, args.camera_info, geometry[0]) if t not in available]
    if missing:
        raise CliError(f"{args.bag or 'the drive'} has no {', '.join(missing)} (the {'LiDAR' if lidar else 'depth'} "
                       f"teacher needs camera, camera_info and {'points' if lidar else 'depth'}); its topics: "
                       f"{', '.join(sorted(available))}; name yours with --camera/--camera-info/--depth/--points")
    played = [t for t in wanted if t in available] + ([TF_STATIC] if lidar and TF_STATIC in available else [])
    subscribers = {CAMERA: 3, CAMERA_INFO: 1, geometry[1]: 1, **({GT: 1} if args.labels in available else {})}
    return played, {t: wanted[t] for t in played if t in wanted and wanted[t] != t}, subscribers


def _wait_for_file(path: Path, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.1)
    return False


def _bringup_ready(log: Path, timeout: float, process: subprocess.Popen) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = log.read_text() if log.exists() else ""
        if "segmenting" in text and "teacher" in text and "capturing hard frames" in text:
            return
        if process.poll() is not None:
            raise CliError(f"lix-bringup exited early (code {process.returncode}); see {log}")
        time.sleep(0.2)
    raise CliError(f"lix-bringup did not come up within {timeout:.0f} s; see {log}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lix-demo", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (replaced)")
    parser.add_argument("--bag", type=Path, help="your drive instead of a synthetic one")
    parser.add_argument("--student", default="", help="student checkpoint (default: packaged)")
    parser.add_argument("--teacher", default="", help="teacher checkpoint (default: packaged depth teacher)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the synthetic drive")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate of the synthetic drive (Hz)")
    parser.add_argument("--pace", choices=("lockstep", "realtime"), default="lockstep",
                        help="lockstep: the player waits for both nodes' masks of each frame before the next, so "
                             "every frame is evaluated on any machine; realtime: recorded timing, and nodes that "
                             "cannot keep up drop stale frames (counted in their diagnostics)")
    parser.add_argument("--seed", type=int, default=2_000_042, help="scene of the held-out test family")
    parser.add_argument("--threshold", type=float, default=0.1, help="hard-frame disagreement threshold")
    topics = parser.add_argument_group("topics of --bag (replayed under lix_ros's names)")
    topics.add_argument("--camera", default=CAMERA, help="sensor_msgs/Image RGB camera")
    topics.add_argument("--camera-info", default=CAMERA_INFO, help="sensor_msgs/CameraInfo")
    topics.add_argument("--depth", default=DEPTH, help="depth image (depth teacher)")
    topics.add_argument("--points", default=POINTS, help="PointCloud2 (LiDAR teacher)")
    topics.add_argument("--labels", default=GT, help="ground truth, mono8 train ids (optional)")
    return parser


def _start_bringup(out: Path, args: argparse.Namespace, lidar: bool, env: dict) -> tuple[subprocess.Popen, Path]:
    """lix-bringup: student + teacher + A/B node capturing hard frames, in another process."""
    import yaml

    params = out / "params.yaml"
    source = "lidar" if lidar else "depth"
    params.write_text(yaml.safe_dump({
        "/**/segmentation_node": {"ros__parameters": {"checkpoint": args.student}},
        "/**/teacher_node": {"ros__parameters": {"checkpoint": args.teacher, "geometry_source": source}},
        "/**/compare_node": {"ros__parameters": {"hard_frame_bag": str(out / "hard_frames"),
                                                 "hard_frame_threshold": args.threshold, "geometry_source": source}},
    }))
    log_path = out / "bringup.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "lix_ros.cli.bringup", "--params", str(params), "--teacher",
                                    "--ab"],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, log_path


def _play_through_nodes(drive_bag: Path, out: Path, pace: str, env: dict, bringup: subprocess.Popen,
                        bringup_log: Path, plan: tuple[list[str], dict, dict]) -> tuple[dict, Path, str]:
    """Record the node outputs while the drive is replayed through them; stop recorder and nodes."""
    from lix_ros.bag.play import play_bag

    recorder, recorder_out = None, ""
    stop_file, ready_file = out / ".stop_recording", out / ".recording"
    recorded_bag = out / "recorded"
    try:
        _bringup_ready(bringup_log, 120, bringup)
        recorder = subprocess.Popen([sys.executable, "-m", "lix_ros.bag.cli", "record", "--out", str(recorded_bag),
                                     "--topics", *RECORDED, "--stop-file", str(stop_file), "--ready-file",
                                     str(ready_file), "--ready-topics", *NODE_OUTPUTS],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        # A node output sent before the recorder matched it would be lost; the player's own topics are
        # covered by its subscriber wait (the recorder counts among the camera's subscribers).
        if not _wait_for_file(ready_file, 60):
            raise CliError(f"lix-bag record did not subscribe to {', '.join(NODE_OUTPUTS)} within 60 s")
        print(f"[3/5] replaying the drive ({pace}); recording node outputs", flush=True)
        sync = [STUDENT_OUT, TEACHER_OUT] if pace == "lockstep" else None
        topics, remap, subscribers = plan
        played = play_bag(drive_bag, topics=topics, remap=remap, wait_for_subscribers=30,
                          min_subscribers=subscribers, sync_topics=sync, quiet=True)
        time.sleep(2.0)  # let the last frames through the nodes and one more /diagnostics out
    finally:
        stop_file.touch()
        if recorder is not None:
            recorder_out = recorder.communicate(timeout=30)[0]
        bringup.send_signal(2)
        try:
            bringup.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bringup.kill()
    return played, recorded_bag, recorder_out


def _print_replay(played: dict, recorder_out: str) -> None:
    print(f"      {recorder_out.strip().splitlines()[-1] if recorder_out.strip() else 'recorder said nothing'}")
    t = played["timing_error_ms"]
    print(f"      replay timing error: median {t['median']:.2f} ms, p99 {t['p99']:.2f} ms")
    if "sync" in played:
        s = played["sync"]
        print(f"      lockstep: {s['answered']} of {s['frames']} frames answered by both nodes "
              f"({s['timeouts']} timeouts, {s['waited_s']:.1f} s waited for the nodes)")


@friendly_errors("lix-demo")
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    env = dict(os.environ)
    configure_dds_env(env)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.update(env)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)

    from lix_ros.bag.evaluate import EvalOptions, evaluate_bag, write_report
    from lix_ros.bag.io import open_reader, topic_counts, topic_types
    from lix_ros.bag.report import summary_lines
    from lix_ros.bag.synth import write_synthetic_bag
    from lix_ros.core.checkpoint import geometry_modality, read_checkpoint
    from lix_ros.core.default_checkpoints import default_checkpoint

    lidar = geometry_modality(read_checkpoint(args.teacher or default_checkpoint("teacher"))) == "lidar"
    if args.bag is not None:
        drive_bag = args.bag
        print(f"[1/5] your drive: {drive_bag}", flush=True)
    else:
        drive_bag = args.out / "drive"
        print(f"[1/5] synthetic drive: {args.frames} frames at {args.rate} Hz -> {drive_bag}", flush=True)
        write_synthetic_bag(drive_bag, args.seed, args.frames, args.rate, quiet=True)
    reader = open_reader(drive_bag)
    try:
        plan = replay_plan(topic_types(reader), args, lidar)
        frames = next((c.msgcount for c in reader.connections if c.topic == args.camera), 0)
    finally:
        reader.close()
    print(f"[2/5] lix-bringup: student + teacher ({'LiDAR' if lidar else 'depth'}) + A/B with hard-frame capture",
          flush=True)
    bringup, bringup_log = _start_bringup(args.out, args, lidar, env)
    played, recorded_bag, recorder_out = _play_through_nodes(drive_bag, args.out, args.pace, env, bringup,
                                                             bringup_log, plan)
    _print_replay(played, recorder_out)

    print("[4/5] evaluating the recording (node outputs vs ground truth, student vs teacher)", flush=True)
    report = evaluate_bag(recorded_bag, EvalOptions(mode="recorded", quiet=True))
    paths = write_report(report, args.out / "report")
    hard = args.out / "hard_frames"
    captured = topic_counts(hard).get(CAMERA, 0) if hard.exists() else 0
    print("[5/5] summary")
    for line in summary_lines(report):
        print(f"      {line}")
    print(f"      frames played {frames}, masks evaluated {report['frames']}, hard frames captured {captured} "
          f"(disagreement > {args.threshold:.0%}) in {hard}")
    print(f"      report: {paths['html'].resolve()}")
    print(f"      total {time.perf_counter() - started:.0f} s")
    if report["frames"] == 0:
        raise CliError("no node output was recorded; see " + str(bringup_log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
