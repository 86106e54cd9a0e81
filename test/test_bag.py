"""Real ROS 2 bags written and read with rosbags: synth round trip, offline eval, bad and partial bags."""

import json
import os
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from processes import run_module

from lix_ros.bag.dataset import bag_samples
from lix_ros.bag.frames import BagFrames, tf_static_extrinsic
from lix_ros.bag.hard_frames import cdr_header_stamp
from lix_ros.bag.io import (
    TYPESTORE,
    BagWriter,
    image_depth,
    image_mono8,
    image_rgb,
    make_image,
    topic_counts,
)
from lix_ros.bag.synth import START_NS, write_synthetic_bag
from lix_ros.data.synthetic import drive


def lix_bag(*args):
    return run_module("lix_ros.bag.cli", *args, timeout=300)


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "drive"
    write_synthetic_bag(path, 2_000_010, 4, rate_hz=10, width=160, height=80, quiet=True)
    return path


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_synth_bag_round_trip(tmp_path, storage):
    path = tmp_path / storage
    write_synthetic_bag(path, 2_000_010, 3, rate_hz=5, width=160, height=80, storage=storage, quiet=True)
    expected = list(drive(2_000_010, 3, 5, width=160, height=80))
    assert topic_counts(path) == {"/tf_static": 1, "/camera/image_raw": 3, "/camera/camera_info": 3,
                                  "/camera/depth": 3, "/lidar/points": 3, "/lix/gt/semantic": 3}
    frames = list(BagFrames(path))
    assert [f.stamp for f in frames] == [START_NS + i * 200_000_000 for i in range(3)]
    for frame, truth in zip(frames, expected):
        m = frame.messages
        np.testing.assert_array_equal(image_rgb(m["camera"]), truth.rgb)
        np.testing.assert_array_equal(image_mono8(m["gt"]), truth.label)
        np.testing.assert_array_equal(image_depth(m["depth"]), truth.depth)
        assert m["camera"].header.frame_id == "camera_optical_frame" and m["points"].header.frame_id == "lidar"
        assert m["points"].width == len(truth.lidar_points)
        assert frame.log_times["camera"] == frame.stamp
    np.testing.assert_allclose(tf_static_extrinsic(path), expected[0].T_cam_from_lidar, atol=1e-6)


def test_bag_training_source_reproduces_lidar_depth(bag):
    samples, stats = bag_samples(bag)
    truth = list(drive(2_000_010, 4, 10, width=160, height=80))
    assert stats["labelled_gt"] == 4 and not stats["partial"]
    for sample, frame in zip(samples, truth):
        np.testing.assert_array_equal(sample.label, frame.label)
        np.testing.assert_allclose(sample.lidar_depth, frame.lidar_depth, atol=1e-4)


def test_eval_runs_models_and_writes_a_self_contained_report(bag, tmp_path):
    result = lix_bag("eval", str(bag), "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "run" and report["frames"] == 4 and not report["partial"]
    assert report["student_checkpoint"] == "packaged default (student_small.pt)"  # which file produced it
    assert 0.3 < report["student_vs_gt"]["miou"] <= 1 and 0.3 < report["teacher_vs_gt"]["miou"] <= 1
    assert report["latency"]["student"]["count"] == 4
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 + 4  # confusion matrices + sample frames
    assert "src='http" not in page and "<script src" not in page  # nothing fetched from elsewhere
    for shown in ("topic: camera", "Worst frames", "Over the drive", "reference pixels", "class='legend'"):
        assert shown in page
    assert all("student_miou" in f and "student_ms" in f for f in report["per_frame"])
    assert "| road |" in (tmp_path / "report.md").read_text()
    # Deterministic: the same bag gives the same numbers.
    again = lix_bag("eval", str(bag), "--out", str(tmp_path / "again"), "--quiet", "--threads", "1")
    assert again.returncode == 0
    assert json.loads((tmp_path / "again" / "report.json").read_text())["confusion"] == report["confusion"]


def test_truncated_bag_gives_a_partial_report(bag, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    (broken / mcap.name).write_bytes(data[: int(len(data) * 0.7)])
    (broken / "metadata.yaml").write_text((bag / "metadata.yaml").read_text())
    result = lix_bag("eval", str(broken), "--out", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 3, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["partial"] and 1 <= report["frames"] < 4
    assert "PARTIAL" in (tmp_path / "out" / "report.html").read_text()


def _garbage_bag(path):
    (path / "garbage").mkdir()
    (path / "garbage" / "metadata.yaml").write_text("x: [")
    return path / "garbage"


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "missing", "bag not found"),
    (_garbage_bag, "cannot open bag"),
])
def test_bad_paths_are_one_line(tmp_path, make, message):
    result = lix_bag("eval", str(make(tmp_path)))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_missing_topic_lists_what_the_bag_has(bag):
    result = lix_bag("eval", str(bag), "--camera", "/front/image")
    assert result.returncode == 2
    assert "has no topic /front/image" in result.stderr and "/camera/image_raw (sensor_msgs/msg/Image)" in result.stderr


def test_unknown_message_type_and_unsupported_encoding(tmp_path, bag):
    env = dict(os.environ)
    result = run_module("lix_ros.bag.cli", "play", str(bag), "--topics", "/tf_static", env=env, timeout=120)
    assert result.returncode == 2 and "unknown message type" in result.stderr
    assert "tf2_msgs/msg/TFMessage" in result.stderr
    odd = tmp_path / "odd"
    with BagWriter(odd) as writer:
        writer.write("/camera/image_raw", make_image(5, "cam", np.zeros((8, 8), np.uint16), "16UC1"), 5)
    result = lix_bag("eval", str(odd), "--mode", "run", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "16UC1" in result.stderr


def test_cdr_header_stamp_reads_the_serialised_header():
    msg = make_image(1_700_000_123_456_789_012, "cam", np.zeros((2, 2), np.uint8), "mono8")
    raw = TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image")
    assert cdr_header_stamp(bytes(raw)) == (1_700_000_123, 456_789_012)


@pytest.mark.parametrize("args, message", [
    (["synth", "--out", "{tmp}/s", "--width", "-5"], "lix-bag synth: error: argument --width: must be >= 16, got -5"),
    (["synth", "--out", "{tmp}/s", "--frames", "x"], "lix-bag synth: error: argument --frames: expected an integer"),
    (["record", "--out", "{tmp}/r", "--topics", "/x", "--duration", "-5"],
     "lix-bag record: error: argument --duration: must be > 0, got -5"),
])
def test_bad_arguments_are_one_line_and_leave_nothing(tmp_path, args, message):
    result = lix_bag(*[a.format(tmp=tmp_path) for a in args])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not any(tmp_path.iterdir())  # no half-made bag blocks a re-run


def test_play_start_past_the_end_is_an_error(tmp_path):
    assert lix_bag("synth", "--out", str(tmp_path / "short"), "--frames", "3").returncode == 0
    result = lix_bag("play", str(tmp_path / "short"), "--start", "100")
    assert result.returncode == 2 and "--start 100.0 s is past the end of" in result.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_every_image(bag, tmp_path):
    result = lix_bag("eval", str(bag), "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom", page], capture_output=True, text=True,
                         timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    images = int(re.search(r'data-images="(\d+)"', body.group()).group(1))
    assert images == (tmp_path / "report.html").read_text().count("<img")
    assert 'data-broken-images="0"' in body.group(), body.group()  # every image decoded
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1400,4000", f"--screenshot={shot}", page], capture_output=True,
                   timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (4000, 1400)
    assert image.std() > 20  # a rendered page, not a blank one


def test_a_teacher_that_cannot_run_is_not_warmed_up(bag, monkeypatch):
    """Eval on a bag without the teacher's geometry reads the teacher's modality but spends no inference on it."""
    from lix_ros.bag.evaluate import EvalOptions, load_teacher
    from lix_ros.bag.frames import TopicMap
    from lix_ros.core.inference import Segmenter

    warmed = []
    real = Segmenter.warm_up
    monkeypatch.setattr(Segmenter, "warm_up", lambda self: (warmed.append(self.modality), real(self)))
    options = EvalOptions(backend="torch")
    elsewhere = TopicMap(depth="/not/recorded")
    frames = BagFrames(bag, elsewhere)
    try:
        models = load_teacher(bag, frames, options, elsewhere)
    finally:
        frames.reader.close()
    assert models.teacher is None and "/not/recorded" in models.teacher_not_run and warmed == []
    frames = BagFrames(bag)
    try:
        models = load_teacher(bag, frames, options, TopicMap())
    finally:
        frames.reader.close()
    assert models.teacher is not None and models.teacher_not_run is None and warmed == ["depth"]
