"""`make demo` / `lix-demo`: the whole loop on one machine in about a minute.

synthetic drive bag -> lix-bringup (student + teacher + A/B with hard-frame capture) -> lix-bag play ->
lix-bag record of the node outputs -> lix-bag eval of the recording -> printed summary and report path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lix_ros.cli.common import CliError, friendly_errors
from lix_ros.core.constants import AB_OUT, CAMERA, CAMERA_INFO, DEPTH, DIAGNOSTICS, GT, STUDENT_OUT, TEACHER_OUT
from lix_ros.core.dds import configure_dds_env

NODE_OUTPUTS = [STUDENT_OUT, TEACHER_OUT, AB_OUT, DIAGNOSTICS]
RECORDED = [*NODE_OUTPUTS, CAMERA, GT]
PLAYED = [CAMERA, CAMERA_INFO, DEPTH, GT]
# who listens to what the player publishes: student + teacher + recorder on the camera, the teacher on
# depth and camera_info, the recorder on the ground truth
SUBSCRIBERS = {CAMERA: 3, DEPTH: 1, CAMERA_INFO: 1, GT: 1}


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
    parser = argparse.ArgumentParser(prog="lix-demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate of the synthetic drive (Hz)")
    parser.add_argument("--pace", choices=("lockstep", "realtime"), default="lockstep",
                        help="lockstep: the player waits for both nodes' masks of each frame before the next, so "
                             "every frame is evaluated on any machine; realtime: recorded timing, and nodes that "
                             "cannot keep up drop stale frames (counted in their diagnostics)")
    parser.add_argument("--seed", type=int, default=2_000_042, help="scene of the held-out test family")
    parser.add_argument("--threshold", type=float, default=0.1, help="hard-frame disagreement threshold")
    return parser


def _start_bringup(out: Path, threshold: float, env: dict) -> tuple[subprocess.Popen, Path]:
    """lix-bringup: student + depth teacher + A/B node capturing hard frames, in another process."""
    params = out / "params.yaml"
    params.write_text("/**/compare_node:\n  ros__parameters:\n"
                      f"    hard_frame_bag: {out / 'hard_frames'}\n    hard_frame_threshold: {threshold}\n")
    log_path = out / "bringup.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "lix_ros.cli.bringup", "--params", str(params), "--teacher",
                                    "--ab", "--image", CAMERA, "--depth", DEPTH, "--camera-info", CAMERA_INFO],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, log_path


def _play_through_nodes(drive_bag: Path, out: Path, pace: str, env: dict, bringup: subprocess.Popen,
                        bringup_log: Path) -> tuple[dict, Path, str]:
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
        played = play_bag(drive_bag, topics=PLAYED, wait_for_subscribers=30, min_subscribers=SUBSCRIBERS,
                          sync_topics=sync, quiet=True)
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
    from lix_ros.bag.io import topic_counts
    from lix_ros.bag.report import summary_lines
    from lix_ros.bag.synth import write_synthetic_bag

    drive_bag = args.out / "drive"
    print(f"[1/5] synthetic drive: {args.frames} frames at {args.rate} Hz -> {drive_bag}", flush=True)
    write_synthetic_bag(drive_bag, args.seed, args.frames, args.rate, quiet=True)
    print("[2/5] lix-bringup: student + teacher (depth) + A/B with hard-frame capture", flush=True)
    bringup, bringup_log = _start_bringup(args.out, args.threshold, env)
    played, recorded_bag, recorder_out = _play_through_nodes(drive_bag, args.out, args.pace, env, bringup,
                                                             bringup_log)
    _print_replay(played, recorder_out)

    print("[4/5] evaluating the recording (node outputs vs ground truth, student vs teacher)", flush=True)
    report = evaluate_bag(recorded_bag, EvalOptions(mode="recorded", quiet=True))
    paths = write_report(report, args.out / "report")
    hard = args.out / "hard_frames"
    captured = topic_counts(hard).get(CAMERA, 0) if hard.exists() else 0
    print("[5/5] summary")
    for line in summary_lines(report):
        print(f"      {line}")
    print(f"      frames played {args.frames}, masks evaluated {report['frames']}, hard frames captured {captured} "
          f"(disagreement > {args.threshold:.0%}) in {hard}")
    print(f"      report: {paths['html'].resolve()}")
    print(f"      total {time.perf_counter() - started:.0f} s")
    if report["frames"] == 0:
        raise CliError("no node output was recorded; see " + str(bringup_log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
