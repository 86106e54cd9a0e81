"""Bags through real nodes: synth -> play -> nodes -> record -> eval (the demo), hard frames -> lix-train."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from processes import run_module  # noqa: E402
from ros_probe import Probe  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from lix_ros.bag.dataset import bag_samples  # noqa: E402
from lix_ros.bag.frames import TopicMap  # noqa: E402
from lix_ros.bag.io import topic_counts  # noqa: E402
from lix_ros.bag.synth import START_NS, write_synthetic_bag  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = run_module("lix_ros.cli.demo", "--out", str(out), "--frames", "20", "--threshold", "0.0", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout


def test_demo_round_trips_a_synth_bag_through_the_nodes(demo):
    """Lockstep replay: every frame reaches both nodes and comes back, whatever the machine's load."""
    out, stdout = demo
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["mode"] == "recorded" and not report["partial"]
    assert report["frames"] == 20, f"only {report['frames']} of 20 frames came back from the nodes"
    assert len([f for f in report["per_frame"] if "teacher_pixel_accuracy" in f]) == 20
    assert report["student_vs_gt"]["miou"] > 0.4 and report["teacher_vs_gt"]["miou"] > 0.4
    assert report["latency"]["student"]["count"] == 20
    counts = topic_counts(out / "recorded")
    assert counts["/camera/image_raw"] == 20 and counts["/lix/ab/agreement"] == 20
    nodes = report["node_diagnostics"]
    assert nodes["segmentation_node"]["frames_processed"] == "20"
    assert nodes["segmentation_node"]["frames_dropped_stale"] == "0"
    assert nodes["teacher_node"]["frames_processed"] == "20" and nodes["compare_node"]["frames_compared"] == "20"
    assert "lockstep: 20 of 20 frames answered by both nodes (0 timeouts" in stdout
    assert "report:" in stdout and (out / "report" / "report.html").exists()


def test_demo_in_real_time_accounts_for_every_frame(tmp_path):
    """Real-time replay: the nodes may drop stale frames under load, but each one is processed or counted."""
    out = tmp_path / "demo"
    result = run_module("lix_ros.cli.demo", "--out", str(out), "--frames", "12", "--pace", "realtime", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report" / "report.json").read_text())
    student = {k: int(v) for k, v in report["node_diagnostics"]["segmentation_node"].items()
               if k in ("frames_received", "frames_processed", "frames_dropped_stale", "frames_rejected")}
    assert 0 < student["frames_received"] <= 12
    assert student["frames_processed"] + student["frames_dropped_stale"] + student["frames_rejected"] == \
        student["frames_received"]
    assert topic_counts(out / "recorded")["/lix/semantic"] == student["frames_processed"] == report["frames"]
    assert "lockstep" not in result.stdout


def test_hard_frames_train_a_student(demo, tmp_path):
    out, _ = demo
    hard = out / "hard_frames"
    samples, stats = bag_samples(hard)
    assert stats["pseudo_labelled"] >= 5 and stats["labelled_gt"] == 0  # no GT in a capture: teacher labels
    assert samples[0].depth is not None
    student = Path(__file__).resolve().parents[1] / "lix_ros" / "checkpoints" / "student_small.pt"
    result = run_module("lix_training.cli", "--set", "data.source=bag", "--set", f"data.root={hard}", "--set",
                        "steps=3", "--set", "batch_size=2", "--set", f"init_from={student}", "--set", "val_every=3",
                        "--out", str(tmp_path / "ft"), "--quiet", timeout=600)
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


def test_play_lockstep_waits_for_answers_and_counts_timeouts(tmp_path):
    """A responder answers each camera frame 0.3 s late and ignores the third: the player waits for every
    answer (the 20 Hz bag takes >= 1.2 s), gives the ignored frame up after --sync-timeout and says so."""
    bag = tmp_path / "short"
    write_synthetic_bag(bag, 2_000_021, 5, rate_hz=20, width=64, height=32, quiet=True)
    probe = Probe("lix_test_lockstep_responder")
    answer = probe.publisher(Image, "/lix/semantic", qos=10)
    pending: list[tuple[float, Image]] = []
    seen: list[int] = []

    def on_camera(msg: Image) -> None:
        seen.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        if len(seen) != 3:
            pending.append((time.monotonic() + 0.3, msg))

    probe.node.create_subscription(Image, "/camera/image_raw", on_camera, 10)
    player = subprocess.Popen([sys.executable, "-m", "lix_ros.bag.cli", "play", str(bag), "--topics",
                               "/camera/image_raw", "--wait", "20", "--sync", "/lix/semantic", "--sync-timeout",
                               "1.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while player.poll() is None and time.monotonic() < deadline:
            probe.spin(0.01)
            while pending and pending[0][0] <= time.monotonic():
                answer.publish(pending.pop(0)[1])
        stdout, stderr = player.communicate(timeout=10)
    finally:
        probe.close()
    assert player.returncode == 4, stderr  # an incomplete lockstep run is not a success
    assert len(seen) == 5 and seen == sorted(seen)
    assert "lockstep on /camera/image_raw: 4 of 5 frames answered on /lix/semantic (1 timeouts" in stdout
    waited = float(stdout.split(" s waited")[0].rsplit("(1 timeouts, ", 1)[1])
    assert waited >= 4 * 0.3 + 1.0 - 0.3  # four late answers and one timeout, less the bag's own spacing


def offered_qos(bag) -> dict[str, tuple[str, str]]:
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return {c.topic: (c.ext.offered_qos_profiles[0].reliability.name, c.ext.offered_qos_profiles[0].durability.name)
                for c in reader.connections}


def test_bags_carry_the_offered_qos(demo):
    """synth offers sensor-data QoS for sensors and a latched /tf_static; record stores what the live
    publishers offered (the player republishes the camera reliably; the nodes' outputs are reliable)."""
    out, _ = demo
    synth = offered_qos(out / "drive")
    assert synth["/tf_static"] == ("RELIABLE", "TRANSIENT_LOCAL")
    assert synth["/camera/image_raw"] == ("BEST_EFFORT", "VOLATILE") and synth["/lidar/points"][0] == "BEST_EFFORT"
    recorded = offered_qos(out / "recorded")
    assert recorded["/lix/semantic"] == ("RELIABLE", "VOLATILE")
    assert recorded["/diagnostics"][0] in ("RELIABLE", "BEST_EFFORT") and all(recorded.values())


def test_killed_recorder_loses_at_most_half_a_second_and_repair_recovers_the_rest(tmp_path):
    """SIGKILL mid-recording leaves an MCAP without footer or metadata.yaml; the recorder flushes a chunk
    every 0.5 s, so `lix-bag repair` gets back every frame published up to ~0.5 s before the kill."""
    import signal

    import numpy as np
    from ros_probe import image
    from rosbags.rosbag2 import Reader

    bag, topic = tmp_path / "cut", "/lix_test_kill/image"
    recorder = subprocess.Popen([sys.executable, "-m", "lix_ros.bag.cli", "record", "--out", str(bag), "--topics",
                                 topic, "--ready-file", str(tmp_path / "ready")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    probe = Probe("lix_test_kill_probe")
    publisher = probe.publisher(Image, topic, qos=10)
    sent = 0
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
            publisher.publish(image(probe.stamp(0), "warmup", np.zeros((120, 160, 3), np.uint8)))
            probe.spin(0.1)
        assert (tmp_path / "ready").exists(), "recorder never subscribed"
        probe.spin(1.0)
        start = time.monotonic()
        while time.monotonic() - start < 3.0 + np.random.default_rng().uniform(0, 0.5):  # a random kill time
            sent += 1
            publisher.publish(image(probe.stamp(sent), f"f{sent}", np.full((120, 160, 3), sent % 255, np.uint8)))
            probe.spin(0.1)  # 10 Hz
        recorder.send_signal(signal.SIGKILL)
        recorder.wait(timeout=10)
    finally:
        probe.close()
        if recorder.poll() is None:
            recorder.kill()
    assert not (bag / "metadata.yaml").exists()
    with pytest.raises(Exception):  # noqa: B017 - standard readers refuse a cut bag (the type varies)
        Reader(bag).open()
    repaired = tmp_path / "repaired"
    result = run_module("lix_ros.bag.cli", "repair", str(bag), "--out", str(repaired), timeout=120)
    assert result.returncode == 0, result.stderr
    from lix_ros.bag.hard_frames import cdr_header_stamp

    with Reader(repaired) as reader:  # a normal bag now
        stamps = [cdr_header_stamp(bytes(raw))[0] for _, _, raw in reader.messages()]
    numbered = sorted(s for s in stamps if s >= 1)  # warm-up frames have stamp 0
    assert numbered == list(range(1, len(numbered) + 1))  # what was recovered is complete up to the cut
    lost = sent - len(numbered)
    print(f"killed recorder: {sent} sent, {len(numbered)} recovered, {lost} lost")
    assert 0 <= lost <= 7, f"{sent} frames sent at 10 Hz before the kill, {len(numbered)} recovered ({lost} lost)"


def test_any_topic_names_synth_remap_eval_and_teacher_that_cannot_run(tmp_path):
    """A bag with other topic names: synth writes them, eval reads them with the same options and says when the
    teacher cannot run, play --remap publishes them under lix_ros's names."""
    bag = tmp_path / "named"
    names = ["--camera", "/front/image", "--camera-info", "/front/info", "--depth", "/front/depth",
             "--points", "/velodyne", "--labels", "/front/gt"]
    result = run_module("lix_ros.bag.cli", "synth", "--out", str(bag), "--frames", "3", "--width", "64", "--height",
                        "32", *names)
    assert result.returncode == 0, result.stderr
    assert set(topic_counts(bag)) == {"/front/image", "/front/info", "/front/depth", "/velodyne", "/front/gt",
                                      "/tf_static"}
    run = ["lix_ros.bag.cli", "eval", str(bag), "--quiet", "--max-frames", "3"]
    named = run_module(*run, "--out", str(tmp_path / "e1"), *names, timeout=120)
    assert named.returncode == 0, named.stderr
    report = json.loads((tmp_path / "e1" / "report.json").read_text())
    assert report["frames"] == 3 and report["student_vs_gt"] and report["teacher_vs_gt"]
    assert report["teacher_not_run"] is None
    # the default depth topic is not in this bag: the teacher cannot run, and eval says so
    no_depth = run_module(*run, "--out", str(tmp_path / "e2"), *names[:4], *names[6:], timeout=120)
    assert no_depth.returncode == 0, no_depth.stderr
    assert "NO TEACHER: the depth teacher did not run: the bag has no /camera/depth" in no_depth.stdout
    assert json.loads((tmp_path / "e2" / "report.json").read_text())["teacher_vs_gt"] is None

    probe = Probe("lix_test_remap_probe")
    try:
        probe.subscribe(Image, "/camera/image_raw")
        player = subprocess.Popen([sys.executable, "-m", "lix_ros.bag.cli", "play", str(bag), "--topics",
                                   "/front/image", "--camera", "/front/image", "--remap",
                                   "/front/image:=/camera/image_raw", "--wait", "20"], stdout=subprocess.PIPE,
                                  text=True)
        deadline = time.monotonic() + 60
        while player.poll() is None and time.monotonic() < deadline:
            probe.spin(0.05)
        probe.spin(0.5)
        output = player.stdout.read()
    finally:
        probe.close()
    assert player.returncode == 0
    assert "waiting up to 20 s for subscribers on /camera/image_raw (1)" in output
    assert len(probe.received["/camera/image_raw"]) == 3


def test_label_turns_a_raw_bag_into_training_data(tmp_path):
    """A drive without ground truth (its labels under a name nobody reads) gets the teacher's masks."""
    raw = tmp_path / "raw"
    write_synthetic_bag(raw, 2_000_030, 12, width=64, height=32, quiet=True, topics=TopicMap(gt="/unused/gt"))
    labelled = tmp_path / "labelled"
    result = run_module("lix_ros.bag.cli", "label", str(raw), "--out", str(labelled), "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "teacher masks on /lix/teacher/semantic for 12 of 12 camera frames" in result.stdout
    counts = topic_counts(labelled)
    assert counts["/lix/teacher/semantic"] == 12 and counts["/camera/image_raw"] == 12
    samples, stats = bag_samples(labelled)
    assert stats["pseudo_labelled"] == 12 and stats["labelled_gt"] == 0
    assert samples[0].label.shape == (32, 64) and samples[0].label.max() < 19
    again = run_module("lix_ros.bag.cli", "label", str(labelled), "--out", str(tmp_path / "twice"), timeout=120)
    assert again.returncode == 2 and "already has /lix/teacher/semantic" in again.stderr
    train = run_module("lix_training.cli", "--quiet", "--out", str(tmp_path / "run"), "--set", "data.source=bag",
                       "--set", f"data.root={labelled}", "--set", "steps=2", "--set", "model.preset=tiny", "--set",
                       "data.crop_size=[32, 64]", "--set", "threads=1", "--set", "data.workers=0")
    assert train.returncode == 0, train.stderr


def test_record_ready_file_does_not_wait_forever_for_an_unpublished_topic(tmp_path):
    from lix_ros.bag.record import record_topics

    ready = tmp_path / "ready"
    started = time.monotonic()
    result = record_topics(tmp_path / "rec", ["/nobody/publishes/this"], duration=6.0, discovery_timeout=2.0,
                           ready_file=ready, quiet=True)
    assert ready.exists() and time.monotonic() - started < 30
    assert result["counts"] == {"/nobody/publishes/this": 0}


def test_demo_runs_the_pipeline_on_your_bag_with_your_topic_names(tmp_path):
    bag = tmp_path / "yours"
    write_synthetic_bag(bag, 2_000_031, 8, quiet=True, topics=TopicMap(
        camera="/front/image", camera_info="/front/info", depth="/front/depth", points="/velodyne", gt="/front/gt"))
    out = tmp_path / "demo"
    result = run_module("lix_ros.cli.demo", "--out", str(out), "--bag", str(bag), "--camera", "/front/image",
                        "--camera-info", "/front/info", "--depth", "/front/depth", "--labels", "/front/gt", "--student",
                        "lix_ros/checkpoints/student_supervised_small.pt", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"your drive: {bag}" in result.stdout and "masks evaluated 8" in result.stdout
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["frames"] == 8 and report["student_vs_gt"] and report["teacher_vs_gt"]
    assert "student_supervised_small.pt" in (out / "bringup.log").read_text()
    wrong = run_module("lix_ros.cli.demo", "--out", str(tmp_path / "d2"), "--bag", str(bag), timeout=120)
    assert wrong.returncode == 2 and "has no /camera/image_raw, /camera/camera_info, /camera/depth" in wrong.stderr
