"""`lix-bag`: synth | play | record | eval — ROS 2 bags for lix_ros (mcap by default, sqlite3 too)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lix_ros.cli.common import CliError, OneLineParser, friendly_errors, number
from lix_ros.core.constants import CAMERA, GT, LIDAR_BEAMS, TEST_FAMILY_SEED


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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lix-bag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a synthetic drive (camera, info, depth, LiDAR, GT) as a bag")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=TEST_FAMILY_SEED, help="scene seed (>= 2e6: held-out test family)")
    synth.add_argument("--frames", type=number(int, 1), default=100)
    synth.add_argument("--rate", type=number(float, 0, low_open=True), default=10.0, help="Hz")
    synth.add_argument("--width", type=number(int, 16, 8192), default=320)
    synth.add_argument("--height", type=number(int, 16, 8192), default=160)
    synth.add_argument("--beams", type=number(int, 1, 512), default=LIDAR_BEAMS)
    synth.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")

    play = sub.add_parser("play", help="replay a bag at its recorded timing")
    play.add_argument("bag", type=Path)
    play.add_argument("--rate", type=number(float, 0, low_open=True), default=1.0)
    play.add_argument("--loop", action="store_true")
    play.add_argument("--start", type=number(float, 0), default=0.0, help="seconds into the bag")
    play.add_argument("--topics", nargs="+", help="only these topics")
    play.add_argument("--clock", action="store_true", help="publish /clock (for use_sim_time)")
    play.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable")
    play.add_argument("--wait", type=float, default=0.0, help="wait up to this long for subscribers first")
    play.add_argument("--min-subscribers", nargs="+", type=_topic_count, default=[], metavar="TOPIC=N",
                      help="with --wait: subscribers to wait for per topic (default 1)")
    play.add_argument("--sync", nargs="+", metavar="TOPIC",
                      help="lockstep: after each camera frame wait for these (sensor_msgs/Image) outputs to carry "
                           "its stamp, e.g. --sync /lix/semantic /lix/teacher/semantic")
    play.add_argument("--sync-on", help="the camera topic that lockstep follows (default: /camera/image_raw)")
    play.add_argument("--sync-timeout", type=number(float, 0, low_open=True), default=10.0,
                      help="seconds to wait per frame")

    repair = sub.add_parser("repair", help="rewrite what is readable of a cut bag (killed recorder) as a normal bag")
    repair.add_argument("bag", type=Path)
    repair.add_argument("--out", type=Path, required=True)

    record = sub.add_parser("record", help="record live topics to a bag")
    record.add_argument("--out", type=Path, required=True)
    record.add_argument("--topics", nargs="+", required=True)
    record.add_argument("--duration", type=number(float, 0, low_open=True), help="seconds (default: until Ctrl-C)")
    record.add_argument("--stop-file", type=Path, help="stop when this file appears")
    record.add_argument("--ready-file", type=Path, help="create this file once the --ready-topics are subscribed")
    record.add_argument("--ready-topics", nargs="+", help="topics --ready-file waits for (default: all)")
    record.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")

    ev = sub.add_parser("eval", help="evaluate student/teacher on a bag offline; JSON + Markdown + HTML report")
    ev.add_argument("bag", type=Path)
    ev.add_argument("--out", type=Path, default=Path("out/bag_eval"))
    ev.add_argument("--mode", choices=("auto", "run", "recorded"), default="auto",
                    help="run the models, or read /lix/semantic etc. recorded in the bag (auto: recorded if present)")
    ev.add_argument("--student", help="student checkpoint (default: packaged)")
    ev.add_argument("--teacher", help="teacher checkpoint (default: packaged)")
    ev.add_argument("--camera", default=CAMERA)
    ev.add_argument("--gt", default=GT)
    ev.add_argument("--lidar-to-camera", type=_floats16, help="16 numbers; default: the bag's /tf_static")
    ev.add_argument("--max-frames", type=int)
    ev.add_argument("--samples", type=int, default=6)
    ev.add_argument("--quiet", action="store_true")
    return parser


@friendly_errors("lix-bag")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "synth":
        from lix_ros.bag.synth import write_synthetic_bag

        info = write_synthetic_bag(args.out, args.seed, args.frames, args.rate, args.width, args.height,
                                   args.storage, args.beams)
        print(f"wrote {args.out}: {args.frames} frames at {args.rate} Hz, topics "
              + ", ".join(f"{t}={n}" for t, n in info["topics"].items()))
    elif args.command == "play":
        from lix_ros.bag.play import PlayOptions, play_bag

        result = play_bag(args.bag, PlayOptions(
            rate=args.rate, loop=args.loop, start_s=args.start, topics=args.topics, clock=args.clock, qos=args.qos,
            wait_for_subscribers=args.wait, min_subscribers=dict(args.min_subscribers), sync_topics=args.sync,
            sync_on=args.sync_on, sync_timeout=args.sync_timeout))
        if result.get("sync", {}).get("timeouts"):
            return 4  # some frames got no answer: the caller should know the lockstep run is incomplete
    elif args.command == "repair":
        from lix_ros.bag.io import repair_bag

        counts = repair_bag(args.bag, args.out)
        print(f"repaired {sum(counts.values())} messages into {args.out}: "
              + ", ".join(f"{t}={n}" for t, n in counts.items()))
    elif args.command == "record":
        from lix_ros.bag.record import record_topics

        record_topics(args.out, args.topics, args.duration, args.storage, stop_file=args.stop_file,
                      ready_file=args.ready_file, ready_topics=args.ready_topics)
    else:
        from lix_ros.bag.evaluate import EvalOptions, evaluate_bag, write_report
        from lix_ros.bag.frames import TopicMap
        from lix_ros.bag.report import summary_lines

        options = EvalOptions(args.mode, args.student, args.teacher, args.lidar_to_camera, args.samples,
                              args.max_frames, args.quiet)
        report = evaluate_bag(args.bag, options, TopicMap(camera=args.camera, gt=args.gt))
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
