"""`lix-bag`: synth | play | record | eval | label | repair — ROS 2 bags for lix_ros (mcap by default, sqlite3 too).

Every subcommand takes the same topic options (--camera, --camera-info, --depth, --points, --labels) so bags
with other topic names work; `play --remap FROM:=TO` renames topics on replay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, OneLineParser, friendly_errors, number
from lix_ros.core.constants import (
    CAMERA,
    CAMERA_INFO,
    DEPTH,
    GT,
    LIDAR_BEAMS,
    POINTS,
    STUDENT_OUT,
    TEACHER_OUT,
    TEST_FAMILY_SEED,
)

HELP = DefaultsHelpFormatter


def _floats16(text: str) -> np.ndarray:
    values = [float(v) for v in text.replace(",", " ").split()]
    if len(values) != 16:
        raise CliError(f"--lidar-to-camera needs 16 numbers (row-major 4x4), got {len(values)}")
    return np.array(values).reshape(4, 4)


def _topic_count(text: str) -> tuple[str, int]:
    topic, _, count = text.rpartition("=")
    if not topic or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected TOPIC=N, got {text!r}")
    return topic, int(count)


def _remap(text: str) -> tuple[str, str]:
    source, sep, target = text.partition(":=")
    if not sep or not source.startswith("/") or not target.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected /FROM:=/TO, got {text!r}")
    return source, target


def add_topic_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("topics")
    group.add_argument("--camera", default=CAMERA, help="sensor_msgs/Image RGB camera")
    group.add_argument("--camera-info", default=CAMERA_INFO, help="sensor_msgs/CameraInfo of the camera")
    group.add_argument("--depth", default=DEPTH, help="sensor_msgs/Image depth (32FC1 m or 16UC1 mm)")
    group.add_argument("--points", default=POINTS, help="sensor_msgs/PointCloud2 LiDAR")
    group.add_argument("--labels", "--gt", dest="labels", default=GT, help="ground truth, mono8 train ids")


def topic_map(args: argparse.Namespace):
    from lix_ros.bag.frames import TopicMap

    return TopicMap(camera=args.camera, camera_info=args.camera_info, depth=args.depth, points=args.points,
                    gt=args.labels)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lix-bag", description=__doc__, formatter_class=HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a synthetic drive (camera, info, depth, LiDAR, GT) as a bag",
                           formatter_class=HELP)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=TEST_FAMILY_SEED, help="scene seed (>= 2e6: held-out test family)")
    synth.add_argument("--frames", type=number(int, 1), default=100)
    synth.add_argument("--rate", type=number(float, 0, low_open=True), default=10.0, help="Hz")
    synth.add_argument("--width", type=number(int, 16, 8192), default=320)
    synth.add_argument("--height", type=number(int, 16, 8192), default=160)
    synth.add_argument("--beams", type=number(int, 1, 512), default=LIDAR_BEAMS)
    synth.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    add_topic_options(synth)

    play = sub.add_parser("play", help="replay a bag at its recorded timing", formatter_class=HELP)
    play.add_argument("bag", type=Path)
    play.add_argument("--rate", type=number(float, 0, low_open=True), default=1.0)
    play.add_argument("--loop", action="store_true")
    play.add_argument("--start", type=number(float, 0), default=0.0, help="seconds into the bag")
    play.add_argument("--topics", nargs="+", help="only these topics")
    play.add_argument("--clock", action="store_true", help="publish /clock (for use_sim_time)")
    play.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable")
    play.add_argument("--wait", type=float, default=0.0,
                      help="wait up to this long for subscribers first (on the camera topic unless --min-subscribers)")
    play.add_argument("--min-subscribers", nargs="+", type=_topic_count, default=[], metavar="TOPIC=N",
                      help="with --wait: the (published) topics to wait for and how many subscribers each")
    play.add_argument("--remap", nargs="+", type=_remap, default=[], metavar="FROM:=TO",
                      help="publish the bag's topic FROM as TO, e.g. /cam/front/image:=/camera/image_raw")
    play.add_argument("--sync", nargs="+", metavar="TOPIC",
                      help="lockstep: after each camera frame wait for these (sensor_msgs/Image) outputs to carry "
                           "its stamp, e.g. --sync /lix/semantic /lix/teacher/semantic")
    play.add_argument("--sync-on", help="the bag's image topic lockstep follows (default: --camera)")
    play.add_argument("--sync-timeout", type=number(float, 0, low_open=True), default=10.0,
                      help="seconds to wait per frame")
    play.add_argument("--camera", default=CAMERA, help="the bag's camera topic (lockstep and --wait follow it)")

    repair = sub.add_parser("repair", help="rewrite what is readable of a cut bag (killed recorder) as a normal bag",
                            formatter_class=HELP)
    repair.add_argument("bag", type=Path)
    repair.add_argument("--out", type=Path, required=True)

    record = sub.add_parser("record", help="record live topics to a bag", formatter_class=HELP)
    record.add_argument("--out", type=Path, required=True)
    record.add_argument("--topics", nargs="+",
                        help="topics to record (default: camera, camera info, labels and the nodes' outputs "
                             f"{STUDENT_OUT}, {TEACHER_OUT}: what `lix-bag eval --mode recorded` scores)")
    record.add_argument("--duration", type=number(float, 0, low_open=True), help="seconds (default: until Ctrl-C)")
    record.add_argument("--stop-file", type=Path, help="stop when this file appears")
    record.add_argument("--ready-file", type=Path, help="create this file once the --ready-topics are subscribed")
    record.add_argument("--ready-topics", nargs="+", help="topics --ready-file waits for (default: all)")
    record.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    add_topic_options(record)

    ev = sub.add_parser("eval", help="evaluate student/teacher on a bag offline; JSON + Markdown + HTML report",
                        formatter_class=HELP)
    ev.add_argument("bag", type=Path)
    ev.add_argument("--out", type=Path, default=Path("out/bag_eval"))
    ev.add_argument("--mode", choices=("auto", "run", "recorded"), default="auto",
                    help="run the models, or read /lix/semantic etc. recorded in the bag (auto: recorded if present)")
    ev.add_argument("--student", help="student checkpoint (default: packaged)")
    ev.add_argument("--teacher", help="teacher checkpoint (default: packaged)")
    ev.add_argument("--lidar-to-camera", type=_floats16, help="16 numbers; default: the bag's /tf_static")
    ev.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime",
                    help="inference engine for --mode run (as the nodes' backend parameter)")
    ev.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"],
                    help="ONNX Runtime execution providers in order of preference")
    ev.add_argument("--threads", type=number(int, 0, 64), default=0,
                    help="intra-op threads per model (0: the engine's default; 1 on a busy machine)")
    ev.add_argument("--max-frames", type=int)
    ev.add_argument("--samples", type=int, default=6)
    ev.add_argument("--quiet", action="store_true")
    add_topic_options(ev)

    label = sub.add_parser("label", formatter_class=HELP,
                           help=f"copy a bag adding the teacher's masks on {TEACHER_OUT} as pseudo-labels")
    label.add_argument("bag", type=Path)
    label.add_argument("--out", type=Path, required=True)
    label.add_argument("--teacher", help="teacher checkpoint (default: packaged)")
    label.add_argument("--lidar-to-camera", type=_floats16, help="16 numbers; default: the bag's /tf_static")
    label.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    label.add_argument("--quiet", action="store_true")
    add_topic_options(label)
    return parser


@friendly_errors("lix-bag")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "synth":
        from lix_ros.bag.synth import write_synthetic_bag

        info = write_synthetic_bag(args.out, args.seed, args.frames, args.rate, args.width, args.height,
                                   args.storage, args.beams, topics=topic_map(args))
        print(f"wrote {args.out}: {args.frames} frames at {args.rate} Hz, topics "
              + ", ".join(f"{t}={n}" for t, n in info["topics"].items()))
    elif args.command == "play":
        from lix_ros.bag.play import PlayOptions, play_bag

        result = play_bag(args.bag, PlayOptions(
            rate=args.rate, loop=args.loop, start_s=args.start, topics=args.topics, clock=args.clock, qos=args.qos,
            wait_for_subscribers=args.wait, min_subscribers=dict(args.min_subscribers), sync_topics=args.sync,
            sync_on=args.sync_on, sync_timeout=args.sync_timeout, camera=args.camera, remap=dict(args.remap)))
        if result.get("sync", {}).get("timeouts"):
            return 4  # some frames got no answer: the caller should know the lockstep run is incomplete
    elif args.command == "repair":
        from lix_ros.bag.io import repair_bag

        counts = repair_bag(args.bag, args.out)
        print(f"repaired {sum(counts.values())} messages into {args.out}: "
              + ", ".join(f"{t}={n}" for t, n in counts.items()))
    elif args.command == "record":
        from lix_ros.bag.record import record_topics

        topics = args.topics or [args.camera, args.camera_info, args.labels, STUDENT_OUT, TEACHER_OUT]
        record_topics(args.out, topics, args.duration, args.storage, stop_file=args.stop_file,
                      ready_file=args.ready_file, ready_topics=args.ready_topics)
    elif args.command == "label":
        from lix_ros.bag.label import label_bag

        stats = label_bag(args.bag, args.out, args.teacher, topic_map(args), args.lidar_to_camera, args.storage,
                          args.quiet)
        print(f"wrote {stats['out']}: teacher masks on {stats['topic']} for {stats['labelled']} of {stats['frames']} "
              f"camera frames" + (f" ({stats['skipped']} skipped: {stats['first_error']})" if stats["skipped"] else ""))
        if not stats["labelled"]:
            raise CliError(f"the teacher could not label any frame of {args.bag}")
    else:
        from lix_ros.bag.evaluate import EvalOptions, evaluate_bag, write_report
        from lix_ros.bag.report import summary_lines

        options = EvalOptions(args.mode, args.student, args.teacher, args.lidar_to_camera, args.samples,
                              args.max_frames, args.quiet, args.backend, tuple(args.providers), args.threads)
        report = evaluate_bag(args.bag, options, topic_map(args))
        if report["frames"] == 0:
            reason = report["skipped"][0]["reason"] if report["skipped"] else report["partial_reason"] or "no frames"
            raise CliError(f"no camera frame of {args.bag} could be evaluated: {reason}")
        paths = write_report(report, args.out)
        print("\n".join(summary_lines(report)))
        print(f"report: {paths['html']} (also {paths['json'].name}, {paths['md'].name})")
        return 3 if report["partial"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
