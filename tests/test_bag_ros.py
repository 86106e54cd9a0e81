"""Bags through real nodes: synth -> play -> nodes -> record -> eval (the demo), hard frames -> lix-train."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from ros_probe import Probe  # noqa: E402

from lix_ros.bag.dataset import bag_samples  # noqa: E402
from lix_ros.bag.io import open_reader  # noqa: E402
from lix_ros.bag.synth import START_NS, write_synthetic_bag  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = subprocess.run([sys.executable, "-m", "lix_ros.demo", "--out", str(out), "--frames", "20",
                             "--threshold", "0.0"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout


def test_demo_round_trips_a_synth_bag_through_the_nodes(demo):
    out, stdout = demo
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["mode"] == "recorded" and not report["partial"]
    assert report["frames"] >= 15, f"only {report['frames']} of 20 frames came back from the nodes"
    assert report["student_vs_gt"]["miou"] > 0.4 and report["teacher_vs_gt"]["miou"] > 0.4
    assert report["latency"]["student"]["count"] == report["frames"]
    reader = open_reader(out / "recorded")
    counts = {c.topic: c.msgcount for c in reader.connections}
    reader.close()
    assert counts["/camera/image_raw"] == 20 and counts["/lix/ab/agreement"] >= 10
    assert "report:" in stdout and (out / "report" / "report.html").exists()


def test_hard_frames_train_a_student(demo, tmp_path):
    out, _ = demo
    hard = out / "hard_frames"
    samples, stats = bag_samples(hard)
    assert stats["pseudo_labelled"] >= 5 and stats["labelled_gt"] == 0  # no GT in a capture: teacher labels
    assert samples[0].depth is not None
    student = Path(__file__).resolve().parents[1] / "lix_ros" / "checkpoints" / "student_small.pt"
    result = subprocess.run([sys.executable, "-m", "training.cli", "--set", "data.source=bag", "--set",
                             f"data.root={hard}", "--set", "steps=3", "--set", "batch_size=2", "--set",
                             f"init_from={student}", "--set", "val_every=3", "--out", str(tmp_path / "ft"), "--quiet"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["step"] == 3 and summary["best_val_miou"] > 0.3  # started from the shipped student


def test_play_options_loop_start_topics_clock(tmp_path):
    bag = tmp_path / "short"
    write_synthetic_bag(bag, 2_000_020, 4, rate_hz=20, width=64, height=32, quiet=True)
    probe = Probe("lix_test_play_probe")
    try:
        probe.subscribe(Image, "/lix/gt/semantic")
        probe.subscribe(Image, "/camera/image_raw")
        probe.subscribe(Clock, "/clock")
        player = subprocess.Popen([sys.executable, "-c",
                                   "import json,sys; from lix_ros.bag.play import play_bag; "
                                   f"r = play_bag('{bag}', rate=2.0, loop=True, max_loops=2, start_s=0.1, "
                                   "topics=['/lix/gt/semantic'], clock=True, wait_for_subscribers=20, quiet=True); "
                                   "print(json.dumps(r))"], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while player.poll() is None and time.monotonic() < deadline:
            probe.spin(0.05)
        probe.spin(0.5)
        result = json.loads(player.stdout.read().strip().splitlines()[-1])
    finally:
        probe.close()
    assert result["loops"] == 2 and result["published"] == 2 * 2  # start 0.1 s skips 2 of 4 frames at 20 Hz
    assert result["timing_error_ms"]["median"] < 50
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in probe.received["/lix/gt/semantic"]]
    assert stamps == [START_NS + 100_000_000, START_NS + 150_000_000] * 2
    assert not probe.received["/camera/image_raw"]  # --topics filters
    assert probe.received["/clock"]
