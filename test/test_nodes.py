"""Real nodes (lix-bringup in another process) over real Fast DDS, with the committed default checkpoints."""

import gc
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from processes import run_module  # noqa: E402
from ros_probe import Bringup, Probe, camera_info, image, point_fields  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Float32MultiArray, String  # noqa: E402

from lix_ros.core.default_checkpoints import default_checkpoint  # noqa: E402
from lix_ros.data.synthetic import LidarConfig, render_frame  # noqa: E402

pytestmark = pytest.mark.ros


NS = "/t_nodes"


@pytest.fixture(scope="module")
def frames():
    return [render_frame(2_000_100 + i, 320, 160, LidarConfig(beams=32)) for i in range(3)]


@pytest.fixture(scope="module")
def system():
    """Student + depth teacher + A/B in one bring-up process; a probe node here."""
    bringup = Bringup("--teacher", "--ab", "--namespace", NS, "--image", f"{NS}/camera/image",
                      "--depth", f"{NS}/camera/depth", "--camera-info", f"{NS}/camera/info")
    probe = Probe("lix_test_probe")
    for topic in ("lix/semantic", "lix/teacher/semantic", "lix/semantic_color", "lix/confidence"):
        probe.subscribe(Image, f"{NS}/{topic}")
    probe.subscribe(Float32MultiArray, f"{NS}/lix/ab/agreement")
    probe.subscribe(DiagnosticArray, "/diagnostics")
    probe.subscribe(String, f"{NS}/lix/class_table", latched=True)
    probe.publisher(Image, f"{NS}/camera/image")
    probe.publisher(Image, f"{NS}/camera/depth")
    probe.publisher(CameraInfo, f"{NS}/camera/info")
    try:
        probe.wait_matched(f"{NS}/camera/image", timeout=60)
        probe.wait_matched(f"{NS}/camera/depth")
        # One frame through student and teacher before any test: every path is live from then on.
        warm = render_frame(2_000_001, 320, 160)
        assert probe.retry(lambda: send_frame(probe, warm, "warmup", 1.0),
                           lambda: masks(probe, "lix/semantic", "warmup") and masks(probe, "lix/teacher/semantic",
                                                                                      "warmup"))
        yield probe
    finally:
        probe.close()
        code, stderr = bringup.stop()
        assert code == 0, stderr[-2000:]


def masks(probe, topic, frame_id):
    return [m for m in probe.received[f"{NS}/{topic}"] if m.header.frame_id == frame_id]


def send_frame(probe, frame, frame_id, t, depth=True):
    stamp = probe.stamp(t)
    probe.publishers[f"{NS}/camera/image"].publish(image(stamp, frame_id, frame.rgb))
    if depth:
        probe.publishers[f"{NS}/camera/depth"].publish(image(stamp, frame_id, frame.depth, "32FC1"))
        probe.publishers[f"{NS}/camera/info"].publish(camera_info(stamp, frame_id, frame.K, 160, 320))
    return stamp


def last_diagnostics(probe, node_name):
    for msg in reversed(probe.received["/diagnostics"]):
        status = msg.status[0]
        if status.name == f"lix_ros: {node_name}" and NS in status.hardware_id:
            return {kv.key: kv.value for kv in status.values}
    return {}


def test_student_mask_has_exact_header_size_encoding_and_plausible_content(system, frames):
    for i, frame in enumerate(frames):
        stamp = send_frame(system, frame, f"good{i}", 1000 + i)
        assert system.wait_for(lambda i=i: masks(system, "lix/semantic", f"good{i}")), f"no mask for frame {i}"
        mask = masks(system, "lix/semantic", f"good{i}")[0]
        assert (mask.header.stamp.sec, mask.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)
        assert (mask.height, mask.width, mask.encoding, mask.step) == (160, 320, "mono8", 320)
        ids = np.frombuffer(mask.data, np.uint8).reshape(160, 320)
        accuracy = np.mean(ids[frame.label != 255] == frame.label[frame.label != 255])
        assert accuracy > 0.6, f"student pixel accuracy {accuracy:.2f} on a test frame"
        system.spin(0.2)


def test_teacher_with_depth_publishes_with_the_camera_header(system, frames):
    frame = frames[0]
    stamp = send_frame(system, frame, "teacher0", 2000)
    assert system.wait_for(lambda: masks(system, "lix/teacher/semantic", "teacher0"))
    mask = masks(system, "lix/teacher/semantic", "teacher0")[0]
    assert (mask.header.stamp.sec, mask.header.stamp.nanosec, mask.encoding) == (stamp.sec, stamp.nanosec, "mono8")
    ids = np.frombuffer(mask.data, np.uint8).reshape(160, 320)
    assert np.mean(ids[frame.label != 255] == frame.label[frame.label != 255]) > 0.7


def test_ab_node_publishes_agreement(system, frames):
    send_frame(system, frames[1], "ab0", 3000)
    assert system.wait_for(lambda: len(system.received[f"{NS}/lix/ab/agreement"]) > 0)
    values = system.received[f"{NS}/lix/ab/agreement"][-1]
    assert values.layout.dim[0].label.split(",")[:2] == ["pixel_agreement", "miou"]
    assert all(0.0 <= v <= 1.0 for v in values.data) and values.data[0] > 0.5


def test_optional_outputs_and_latched_class_table(system, frames):
    frame = frames[2]
    send_frame(system, frame, "color0", 4000, depth=False)
    assert system.wait_for(lambda: masks(system, "lix/semantic_color", "color0") and
                           masks(system, "lix/confidence", "color0"))
    color = masks(system, "lix/semantic_color", "color0")[0]
    assert (color.encoding, color.height, color.width) == ("rgb8", 160, 320)
    table = json.loads(system.received[f"{NS}/lix/class_table"][0].data)
    assert [c["name"] for c in table["classes"]][:3] == ["road", "sidewalk", "building"]
    assert len(table["classes"]) == 19 and table["ignore_id"] == 255
    # the committed student's training labels hold 13 of the 19 classes: the other 6 are never published
    never = [c["name"] for c in table["classes"] if not c["predicted"]]
    assert never == ["traffic light", "rider", "bus", "train", "motorcycle", "bicycle"]


def test_other_encodings_and_input_sizes(system, frames):
    frame = frames[0]
    bgr = np.ascontiguousarray(frame.rgb[..., ::-1])
    big = cv2.resize(frame.rgb, (640, 480))
    mono = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
    for frame_id, array, encoding in (("bgr", bgr, "bgr8"), ("big", big, "rgb8"), ("mono", mono, "mono8")):
        system.publishers[f"{NS}/camera/image"].publish(image(system.stamp(5000), frame_id, array, encoding))
        assert system.wait_for(lambda f=frame_id: masks(system, "lix/semantic", f)), frame_id
        mask = masks(system, "lix/semantic", frame_id)[0]
        assert (mask.height, mask.width) == array.shape[:2]
        system.spin(0.2)
    bgr_ids = np.frombuffer(masks(system, "lix/semantic", "bgr")[0].data, np.uint8).reshape(160, 320)
    rgb_ids = np.frombuffer(masks(system, "lix/semantic", "good0")[0].data, np.uint8).reshape(160, 320)
    assert np.mean(bgr_ids == rgb_ids) > 0.99  # bgr8 was converted, not read as rgb


BAD_IMAGES = {
    "wrong_encoding": dict(array=np.zeros((16, 16), np.uint16), encoding="16UC1"),
    "step_too_small": dict(array=np.zeros((16, 16, 3), np.uint8), step=10),
    "data_too_short": dict(array=np.zeros((16, 16, 3), np.uint8), data=bytes(100)),
    "zero_size": dict(array=np.zeros((0, 0, 3), np.uint8)),
    "huge_8000": dict(array=np.zeros((1, 1, 3), np.uint8), height=8000, width=8000, step=24000, data=bytes(3)),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_rejected_counted_and_node_keeps_serving(system, frames, case):
    before = int(last_diagnostics(system, "segmentation_node").get("frames_rejected", 0))
    system.publishers[f"{NS}/camera/image"].publish(image(system.stamp(6000), f"bad_{case}", **BAD_IMAGES[case]))
    system.spin(0.5)
    send_frame(system, frames[0], f"after_{case}", 6001, depth=False)
    assert system.wait_for(lambda: masks(system, "lix/semantic", f"after_{case}")), "node stopped serving"
    assert not masks(system, "lix/semantic", f"bad_{case}"), "published a mask for a bad frame"
    assert system.wait_for(lambda: int(last_diagnostics(system, "segmentation_node").get("frames_rejected", 0))
                           > before, timeout=5)
    assert last_diagnostics(system, "segmentation_node")["last_error"]


def test_nan_and_negative_depth_are_counted_but_served(system, frames):
    frame = frames[1]
    depth = frame.depth.copy()
    depth[:10] = np.nan
    depth[10:20] = -1.0
    stamp = system.stamp(7000)
    system.publishers[f"{NS}/camera/image"].publish(image(stamp, "nan_depth", frame.rgb))
    system.publishers[f"{NS}/camera/depth"].publish(image(stamp, "nan_depth", depth, "32FC1"))
    system.publishers[f"{NS}/camera/info"].publish(camera_info(stamp, "nan_depth", frame.K, 160, 320))
    assert system.wait_for(lambda: masks(system, "lix/teacher/semantic", "nan_depth"))
    assert system.wait_for(lambda: int(last_diagnostics(system, "teacher_node").get("invalid_depth_pixels", 0))
                           >= 20 * 320, timeout=5)


def test_depth_of_another_size_is_rejected(system, frames):
    frame = frames[1]
    stamp = system.stamp(8000)
    system.publishers[f"{NS}/camera/image"].publish(image(stamp, "size_mismatch", frame.rgb))
    system.publishers[f"{NS}/camera/depth"].publish(image(stamp, "size_mismatch", frame.depth[:80, :160].copy(),
                                                          "32FC1"))
    system.publishers[f"{NS}/camera/info"].publish(camera_info(stamp, "size_mismatch", frame.K, 160, 320))
    assert system.wait_for(lambda: "depth is 160x80" in last_diagnostics(system, "teacher_node").get("last_error", ""),
                           timeout=10)
    assert not masks(system, "lix/teacher/semantic", "size_mismatch")
    send_frame(system, frame, "teacher_after", 8001)
    assert system.wait_for(lambda: masks(system, "lix/teacher/semantic", "teacher_after"))


@pytest.fixture(scope="module")
def lidar_teacher(tmp_path_factory):
    """A tiny LiDAR teacher trained here (the packaged default teacher uses depth)."""
    out = tmp_path_factory.mktemp("lidar_teacher")
    cache = tmp_path_factory.mktemp("cache")
    result = run_module("lix_training.cli", "--set", "model.kind=teacher", "--set", "model.preset=tiny", "--set",
                        "model.modality=lidar", "--set", "steps=2", "--set", f"data.cache_dir={cache}", "--set",
                        "data.train_count=4", "--set", "data.val_count=2", "--set", "data.render_size=[160, 320]",
                        "--out", str(out), "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    return out / "final.pt"


def test_teacher_with_lidar_and_bad_point_clouds(lidar_teacher, frames, tmp_path):
    ns = "/t_lidar"
    frame = frames[0]
    params = tmp_path / "params.yaml"
    T = frame.T_cam_from_lidar.reshape(-1).tolist()
    params.write_text("/**/segmentation_node:\n  ros__parameters: {}\n/**/teacher_node:\n  ros__parameters:\n"
                      f"    checkpoint: {lidar_teacher}\n    geometry_source: lidar\n    lidar_to_camera: {T}\n")
    bringup = Bringup("--params", str(params), "--teacher", "--namespace", ns, "--image", f"{ns}/image",
                      "--points", f"{ns}/points", "--camera-info", f"{ns}/info")
    probe = Probe("lix_test_lidar_probe")
    try:
        probe.subscribe(Image, f"{ns}/lix/teacher/semantic")
        probe.subscribe(DiagnosticArray, "/diagnostics")
        for topic, msg_type in ((f"{ns}/image", Image), (f"{ns}/points", PointCloud2), (f"{ns}/info", CameraInfo)):
            probe.publisher(msg_type, topic)
        probe.wait_matched(f"{ns}/points", timeout=60)

        def send(frame_id, t, cloud):
            stamp = probe.stamp(t)
            probe.publishers[f"{ns}/image"].publish(image(stamp, frame_id, frame.rgb))
            cloud.header.stamp, cloud.header.frame_id = stamp, "lidar"
            probe.publishers[f"{ns}/points"].publish(cloud)
            probe.publishers[f"{ns}/info"].publish(camera_info(stamp, frame_id, frame.K, 160, 320))

        def cloud(points, point_step=16, fields=None):
            msg = PointCloud2()
            msg.height, msg.width = 1, len(points)
            msg.fields = point_fields() if fields is None else fields
            msg.point_step, msg.row_step = point_step, point_step * len(points)
            msg.is_dense = True
            msg.data = np.ascontiguousarray(points, np.float32).tobytes()
            return msg

        def errors():
            for msg in reversed(probe.received["/diagnostics"]):
                if msg.status[0].name == "lix_ros: teacher_node" and ns in msg.status[0].hardware_id:
                    return {kv.key: kv.value for kv in msg.status[0].values}
            return {}

        assert probe.retry(lambda: send("lidar_ok", 100, cloud(frame.lidar_points)),
                           lambda: any(m.header.frame_id == "lidar_ok"
                                       for m in probe.received[f"{ns}/lix/teacher/semantic"]))
        send("lidar_empty", 101, cloud(np.zeros((0, 4))))
        assert probe.wait_for(lambda: "empty PointCloud2" in errors().get("last_error", ""), timeout=10)
        send("lidar_malformed", 102, cloud(frame.lidar_points[:10], fields=point_fields()[2:]))
        assert probe.wait_for(lambda: "no field(s) ['x', 'y']" in errors().get("last_error", ""), timeout=10)
        send("lidar_after", 103, cloud(frame.lidar_points))
        assert probe.wait_for(lambda: any(m.header.frame_id == "lidar_after"
                                          for m in probe.received[f"{ns}/lix/teacher/semantic"]), timeout=20)
        names = [m.header.frame_id for m in probe.received[f"{ns}/lix/teacher/semantic"]]
        assert "lidar_empty" not in names and "lidar_malformed" not in names
    finally:
        probe.close()
        code, stderr = bringup.stop()
        assert code == 0, stderr[-2000:]


@pytest.mark.parametrize("problem", ["missing", "corrupt", "teacher_as_student"])
def test_bad_checkpoint_is_a_startup_error(tmp_path, problem):
    path = {"missing": tmp_path / "nope.pt", "corrupt": tmp_path / "bad.pt",
            "teacher_as_student": Path(default_checkpoint("teacher"))}[problem]
    if problem == "corrupt":
        path.write_bytes(b"\x00" * 100)
    result = run_module("lix_ros.cli.bringup", "--checkpoint", str(path), "--namespace", "/t_bad", timeout=60)
    assert result.returncode == 2
    assert {"missing": "not found", "corrupt": "not a readable checkpoint",
            "teacher_as_student": "field 'modalities'"}[problem] in result.stderr


def bringup_with(tmp_path, node: str, parameters: dict, *args: str) -> Bringup:
    """lix-bringup with a params file setting `parameters` on `node`."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({f"/**/{node}": {"ros__parameters": parameters}}))
    return Bringup("--params", str(params), *args)


def test_compressed_input(tmp_path, frames):
    ns = "/t_compressed"
    bringup = bringup_with(tmp_path, "segmentation_node", {"use_compressed": True}, "--namespace", ns, "--image",
                           f"{ns}/cam")
    probe = Probe("lix_test_compressed_probe")
    try:
        probe.subscribe(Image, f"{ns}/lix/semantic")
        publisher = probe.publisher(CompressedImage, f"{ns}/cam/compressed")
        probe.wait_matched(f"{ns}/cam/compressed", timeout=60)
        msg = CompressedImage()
        msg.header.stamp, msg.header.frame_id, msg.format = probe.stamp(1), "jpeg0", "jpeg"
        msg.data = cv2.imencode(".jpg", frames[0].rgb[..., ::-1])[1].tobytes()
        assert probe.retry(lambda: publisher.publish(msg), lambda: probe.received[f"{ns}/lix/semantic"])
        mask = probe.received[f"{ns}/lix/semantic"][0]
        assert (mask.header.frame_id, mask.width, mask.height) == ("jpeg0", 320, 160)
    finally:
        probe.close()
        assert bringup.stop()[0] == 0


def test_packaged_checkpoint_by_name(frames):
    """checkpoint:=student_wide (a packaged name, no path into the install) serves the wide student."""
    ns = "/t_packaged"
    bringup = Bringup("--checkpoint", "student_wide", "--namespace", ns, "--image", f"{ns}/cam")
    probe = Probe("lix_test_packaged_probe")
    try:
        probe.subscribe(Image, f"{ns}/lix/semantic")
        publisher = probe.publisher(Image, f"{ns}/cam")
        probe.wait_matched(f"{ns}/cam", timeout=60)
        msg = image(probe.stamp(1), "packaged0", frames[0].rgb)
        assert probe.retry(lambda: publisher.publish(msg), lambda: probe.received[f"{ns}/lix/semantic"])
        mask = probe.received[f"{ns}/lix/semantic"][0]
        assert (mask.header.frame_id, mask.width, mask.height) == ("packaged0", 320, 160)
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0, stderr[-2000:]
    assert str(Path(default_checkpoint("student")).with_name("student_wide.pt")) in stderr


@pytest.mark.parametrize("node, override, message", [
    ("segmentation_node", "threads:=-1", "parameter 'threads' must be an int in [0, 64], got -1"),
    ("segmentation_node", "threads:=abc", "parameter 'threads' must be an int in [0, 64], got 'abc'"),
    ("segmentation_node", "input_height:=5000", "parameter 'input_height' must be an int in [0, 4096]"),
    ("teacher_node", "pair_slop:=-1.0", "parameter 'pair_slop' must be a float in [0.0, 10.0], got -1.0"),
    ("compare_node", "hard_frame_threshold:=2.0", "parameter 'hard_frame_threshold' must be a float in [0.0, 1.0]"),
])
def test_bad_parameter_is_one_line_and_exit_2(node, override, message):
    result = run_module(f"lix_ros.nodes.{node}", "--ros-args", "-p", override, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lix_ros: startup error: {message}"), result.stderr[-2000:]


@pytest.mark.parametrize("threshold", [0.5, 2.0])
def test_a_destroyed_or_failed_node_leaves_the_graph(threshold):
    """destroy_node frees the rcl node now (0.5), and a constructor that fails on a parameter destroys its node
    before raising (2.0): none is left for the garbage collector to free after rclpy.shutdown, at exit (such a
    process once hung in CI)."""
    from rclpy.parameter import Parameter

    from lix_ros.nodes.compare_node import CompareNode

    context = rclpy.context.Context()
    rclpy.init(context=context)
    observer = rclpy.create_node("lix_test_graph_observer", context=context)
    gc.disable()  # a node that was not destroyed stays in the graph until collected
    try:
        overrides = [Parameter("hard_frame_threshold", value=threshold)]
        if threshold > 1.0:
            with pytest.raises(ValueError, match="'hard_frame_threshold' must be a float in"):
                CompareNode(context=context, parameter_overrides=overrides)
        else:
            node = CompareNode(context=context, parameter_overrides=overrides)
            assert observer_sees(observer, "compare_node", True)
            node.destroy_node()
        assert observer_sees(observer, "compare_node", False)
    finally:
        gc.enable()
        observer.destroy_node()
        rclpy.shutdown(context=context)


def observer_sees(observer, name: str, present: bool, timeout: float = 5.0) -> bool:
    """Wait until `name` is (present) or is not in the graph `observer` sees; whether it happened in time."""
    deadline = time.monotonic() + timeout
    while (name in observer.get_node_names()) != present and time.monotonic() < deadline:
        time.sleep(0.05)
    return (name in observer.get_node_names()) == present


def test_bad_yaml_values_and_misspelled_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    diagnostics_period: 0.0\n")
    result = run_module("lix_ros.nodes.segmentation_node", "--ros-args", "--params-file", str(bad), timeout=60)
    assert result.returncode == 2 and "parameter 'diagnostics_period' must be a float in [0.1, 60.0]" in result.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("/**:\n  ros__parameters:\n    treads: 1\n    queue_depth: '5'\n")
    result = run_module("lix_ros.nodes.segmentation_node", "--ros-args", "--params-file", str(typo), timeout=60)
    assert result.returncode == 2 and "parameter 'queue_depth' must be an int in [1, 100], got '5'" in result.stderr
    typo.write_text("/**:\n  ros__parameters:\n    treads: 1\n")
    process = subprocess.Popen([sys.executable, "-m", "lix_ros.nodes.segmentation_node", "--ros-args",
                                "--params-file", str(typo)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        output = ""
        deadline = time.monotonic() + 60
        while "segmenting" not in output and time.monotonic() < deadline:
            output += process.stdout.readline()
        assert "unknown parameter 'treads' is ignored; did you mean 'threads'?" in output
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_node_help_prints_usage_without_starting():
    result = run_module("lix_ros.nodes.teacher_node", "--help", timeout=60)
    assert result.returncode == 0
    assert "teacher_node parameters:" in result.stdout and "pair_slop (default 0.05; a float in [0.0, 10.0])" in \
        result.stdout


def capture_bringup(tmp_path, ns: str, bag: Path, probe_name: str):
    """Student + teacher + A/B capturing every disagreeing frame to `bag`; a probe with the camera topics."""
    bringup = bringup_with(tmp_path, "compare_node", {"hard_frame_bag": str(bag), "hard_frame_threshold": 0.0},
                           "--teacher", "--ab", "--namespace", ns, "--image", f"{ns}/image", "--depth", f"{ns}/depth",
                           "--camera-info", f"{ns}/info")
    probe = Probe(probe_name)
    probe.subscribe(Image, f"{ns}/lix/semantic")
    probe.subscribe(Float32MultiArray, f"{ns}/lix/ab/agreement")
    probe.subscribe(DiagnosticArray, "/diagnostics")
    for topic, msg_type in ((f"{ns}/image", Image), (f"{ns}/depth", Image), (f"{ns}/info", CameraInfo)):
        probe.publisher(msg_type, topic)
    probe.wait_matched(f"{ns}/depth", timeout=60)
    return bringup, probe


def send_camera(probe, ns: str, frame_id: str, t: float, frame) -> None:
    stamp = probe.stamp(t)
    probe.publishers[f"{ns}/image"].publish(image(stamp, frame_id, frame.rgb))
    probe.publishers[f"{ns}/depth"].publish(image(stamp, frame_id, frame.depth, "32FC1"))
    probe.publishers[f"{ns}/info"].publish(camera_info(stamp, frame_id, frame.K, 160, 320))


def test_hard_frame_bag_failure_stops_capture_not_the_stack(tmp_path, frames):
    """A capture folder that becomes a regular file after start-up: the first hard frame fails to open the
    bag; capture stops with an ERROR in /diagnostics, and the student and the A/B node keep serving."""
    ns = "/lix_test_capture"
    capture_dir = tmp_path / "capture"
    bringup, probe = capture_bringup(tmp_path, ns, capture_dir / "bag", "lix_test_capture_probe")
    try:
        assert capture_dir.is_dir()  # made at start-up
        capture_dir.rmdir()
        capture_dir.write_text("not a folder any more")

        def send(frame_id, t, frame):
            send_camera(probe, ns, frame_id, t, frame)

        def compare_status():
            for msg in reversed(probe.received["/diagnostics"]):
                status = msg.status[0]
                if status.name == "lix_ros: compare_node" and ns in status.hardware_id:
                    return status
            return None

        error_level = 2  # diagnostic_msgs/DiagnosticStatus.ERROR
        assert probe.retry(lambda: send("first", 1, frames[0]),
                           lambda: (status := compare_status()) is not None and ord(status.level) == error_level,
                           timeout=90)
        status = compare_status()
        assert "hard-frame capture stopped" in status.message
        assert {kv.key: kv.value for kv in status.values}["hard_frame_write_errors"] == "1"
        # Still serving: a new frame gets its mask and its agreement.
        before = len(probe.received[f"{ns}/lix/ab/agreement"])
        assert probe.retry(lambda: send("after", 2, frames[1]),
                           lambda: any(m.header.frame_id == "after" for m in probe.received[f"{ns}/lix/semantic"])
                           and len(probe.received[f"{ns}/lix/ab/agreement"]) > before, timeout=60)
        assert bringup.process.poll() is None
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0, stderr[-2000:]


def test_hard_frame_bag_under_a_file_is_a_startup_error(tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_module("lix_ros.nodes.compare_node", "--ros-args", "-p",
                        f"hard_frame_bag:={tmp_path / 'file' / 'sub' / 'bag'}", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lix_ros: startup error: parameter 'hard_frame_bag': cannot create folder {tmp_path / 'file' / 'sub'} "
        "(Not a directory)"]


def test_two_sigints_shut_down_cleanly_and_close_the_hard_frame_bag(tmp_path, frames):
    """As `ros2 launch` does on Ctrl-C: SIGINT twice in a row. Exit 0, no traceback, the capture bag complete."""
    from lix_ros.bag.io import topic_counts

    ns = "/lix_test_sigint"
    bag = tmp_path / "hard"
    bringup, probe = capture_bringup(tmp_path, ns, bag, "lix_test_sigint_probe")
    try:
        def send():
            send_camera(probe, ns, "f", 3, frames[0])

        assert probe.retry(send, lambda: len(probe.received[f"{ns}/lix/ab/agreement"]) > 0, timeout=90)
        probe.spin(0.5)
    finally:
        probe.close()
    bringup.process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    bringup.process.send_signal(signal.SIGINT)
    code = bringup.process.wait(timeout=30)
    stderr = bringup.process.stderr.read()
    assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert topic_counts(bag).get("/camera/image_raw", 0) >= 1  # a readable, finished bag


def test_burst_of_malformed_frames_is_counted_and_the_next_good_frame_served(tmp_path, frames):
    """20 malformed frames back to back over a reliable, deep queue: each is accounted for (rejected, or
    dropped as stale by the newest-frame slot), none is published, and the good frame after them is served."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    ns = "/lix_test_burst"
    bringup = bringup_with(tmp_path, "segmentation_node", {"reliability": "reliable", "queue_depth": 50},
                           "--namespace", ns, "--image", f"{ns}/image")
    probe = Probe("lix_test_burst_probe")
    try:
        probe.subscribe(Image, f"{ns}/lix/semantic")
        probe.subscribe(DiagnosticArray, "/diagnostics")
        publisher = probe.publisher(Image, f"{ns}/image", qos=QoSProfile(depth=50,
                                                                         reliability=ReliabilityPolicy.RELIABLE))
        probe.wait_matched(f"{ns}/image", timeout=60)
        rgb = frames[0].rgb
        bad = [image(probe.stamp(1), "bad", rgb, encoding="16UC1"), image(probe.stamp(1), "bad", rgb, step=10),
               image(probe.stamp(1), "bad", rgb, data=b"\x00" * 100), image(probe.stamp(1), "bad", rgb, height=0)]

        def diag():
            for msg in reversed(probe.received["/diagnostics"]):
                status = msg.status[0]
                if status.name == "lix_ros: segmentation_node" and ns in status.hardware_id:
                    return {kv.key: kv.value for kv in status.values}
            return {}

        # One malformed frame alone is rejected (in a burst the newest-frame slot may drop them all as stale
        # before the worker looks at one: both are accounted for, checked below).
        publisher.publish(bad[0])
        assert probe.wait_for(lambda: int(diag().get("frames_rejected", 0)) == 1, timeout=60), diag()
        for i in range(1, 20):
            publisher.publish(bad[i % len(bad)])
        publisher.publish(image(probe.stamp(2), "good", rgb))

        assert probe.wait_for(lambda: int(diag().get("frames_received", 0)) == 21
                              and int(diag().get("frames_processed", 0)) == 1, timeout=60), diag()
        values = diag()
        assert int(values["frames_rejected"]) + int(values["frames_dropped_stale"]) == 20, values
        assert int(values["frames_rejected"]) >= 1
        # the mask and /diagnostics are separate topics: the count can arrive before the mask does
        assert probe.wait_for(lambda: probe.received[f"{ns}/lix/semantic"], timeout=10)
        answered = [m.header.frame_id for m in probe.received[f"{ns}/lix/semantic"]]
        assert answered == ["good"]
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0, stderr[-2000:]


def test_runtime_parameters_change_validated_and_read_only_ones_refuse(tmp_path, frames):
    """`ros2 param set` over DDS: enabled pauses and resumes serving, overlay_alpha / diagnostics_period change,
    bad values and read-only parameters are refused with the reason."""
    from ros_probe import set_parameter

    ns = "/t_runtime"
    bringup = bringup_with(tmp_path, "segmentation_node", {"diagnostics_period": 0.2}, "--namespace", ns,
                           "--image", f"{ns}/cam")
    node = f"{ns}/segmentation_node"
    probe = Probe("lix_test_runtime_probe")
    try:
        probe.subscribe(Image, f"{ns}/lix/semantic")
        probe.subscribe(DiagnosticArray, "/diagnostics")
        publisher = probe.publisher(Image, f"{ns}/cam")
        probe.wait_matched(f"{ns}/cam", timeout=60)
        first = image(probe.stamp(1), "on0", frames[0].rgb)
        assert probe.retry(lambda: publisher.publish(first), lambda: probe.received[f"{ns}/lix/semantic"])

        assert set_parameter(probe, node, "enabled", False).successful
        probe.received[f"{ns}/lix/semantic"].clear()
        for i in range(5):
            publisher.publish(image(probe.stamp(2 + i), f"off{i}", frames[0].rgb))
            probe.spin(0.3)
        probe.spin(1.0)
        assert not probe.received[f"{ns}/lix/semantic"], "a paused node published"
        status = next(s for m in reversed(probe.received["/diagnostics"]) for s in m.status
                      if s.hardware_id == node)
        values = {kv.key: kv.value for kv in status.values}
        assert int(values["frames_paused"]) >= 1 and values["enabled"] == "False"

        assert set_parameter(probe, node, "enabled", True).successful
        again = image(probe.stamp(20), "on1", frames[0].rgb)
        assert probe.retry(lambda: publisher.publish(again), lambda: probe.received[f"{ns}/lix/semantic"])

        assert set_parameter(probe, node, "overlay_alpha", 0.25).successful
        refused = set_parameter(probe, node, "overlay_alpha", 5.0)
        assert not refused.successful and "overlay_alpha" in refused.reason
        wrong_type = set_parameter(probe, node, "warn_throttle", "often")
        assert not wrong_type.successful and wrong_type.reason
        read_only = set_parameter(probe, node, "threads", 3)
        assert not read_only.successful and "read-only" in read_only.reason

        assert set_parameter(probe, node, "diagnostics_period", 5.0).successful
        probe.spin(1.0)
        probe.received["/diagnostics"].clear()
        probe.spin(2.5)  # at 0.2 s there would be ~12 messages; at 5 s at most one
        ours = [m for m in probe.received["/diagnostics"] if any(s.hardware_id == node for s in m.status)]
        assert len(ours) <= 1
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0, stderr[-2000:]
    assert "parameter overlay_alpha set to 0.25" in stderr


def test_lifecycle_transitions_over_dds(tmp_path, frames):
    """autostart false: the node waits unconfigured; configure / activate / deactivate / activate / cleanup over
    the standard ~/change_state service; nothing is subscribed or published unless active."""
    from lifecycle_msgs.msg import Transition
    from ros_probe import change_state, lifecycle_state

    ns = "/t_lifecycle"
    bringup = bringup_with(tmp_path, "segmentation_node", {"autostart": False}, "--namespace", ns,
                           "--image", f"{ns}/cam")
    node = f"{ns}/segmentation_node"
    probe = Probe("lix_test_lifecycle_probe")

    def state() -> str:
        return lifecycle_state(probe, node)

    def change(transition: int) -> bool:
        return change_state(probe, node, transition, timeout=60)

    def served(frame_id: str, seconds: float) -> bool:
        msg = image(probe.stamp(time.time()), frame_id, frames[0].rgb)
        return probe.retry(lambda: publisher.publish(msg),
                           lambda: any(m.header.frame_id == frame_id for m in probe.received[f"{ns}/lix/semantic"]),
                           timeout=seconds)

    try:
        probe.subscribe(Image, f"{ns}/lix/semantic")
        publisher = probe.publisher(Image, f"{ns}/cam")
        assert state() == "unconfigured"
        assert publisher.get_subscription_count() == 0
        assert change(Transition.TRANSITION_CONFIGURE) and state() == "inactive"
        probe.spin(1.0)
        assert publisher.get_subscription_count() == 0  # inactive: not subscribed
        assert change(Transition.TRANSITION_ACTIVATE) and state() == "active"
        probe.wait_matched(f"{ns}/cam", timeout=30)
        assert served("active1", 60)
        assert change(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
        assert probe.wait_for(lambda: publisher.get_subscription_count() == 0, 10)
        probe.received[f"{ns}/lix/semantic"].clear()
        assert not served("inactive", 3)  # nothing published while inactive
        assert change(Transition.TRANSITION_ACTIVATE) and state() == "active"
        probe.wait_matched(f"{ns}/cam", timeout=30)
        assert served("active2", 60)  # reactivation serves again
        assert change(Transition.TRANSITION_DEACTIVATE) and change(Transition.TRANSITION_CLEANUP)
        assert state() == "unconfigured"
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0, stderr[-2000:]


def test_configure_failure_leaves_the_node_unconfigured_with_the_reason(tmp_path):
    from lifecycle_msgs.msg import Transition
    from ros_probe import change_state, lifecycle_state

    ns = "/t_lifecycle_bad"
    bringup = bringup_with(tmp_path, "segmentation_node", {"autostart": False,
                                                            "checkpoint": str(tmp_path / "missing.pt")},
                           "--namespace", ns)
    node = f"{ns}/segmentation_node"
    probe = Probe("lix_test_lifecycle_bad_probe")
    try:
        assert not change_state(probe, node, Transition.TRANSITION_CONFIGURE)
        assert lifecycle_state(probe, node) == "unconfigured"
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0  # the node stays up for a manager to retry
    assert "configure failed" in stderr and "missing.pt" in stderr


def test_one_student_per_camera(frames):
    """--cameras front,rear (launch: cameras:=front,rear): a student per camera in its namespace."""
    bringup = Bringup("--cameras", "t_front,t_rear", "--namespace", "t_cams")
    probe = Probe("lix_test_cameras_probe")
    try:
        for camera in ("t_front", "t_rear"):
            probe.subscribe(Image, f"/t_cams/{camera}/lix/semantic")
            probe.publisher(Image, f"/{camera}/image_raw")
        for camera in ("t_front", "t_rear"):
            probe.wait_matched(f"/{camera}/image_raw", timeout=60)
            msg = image(probe.stamp(5), f"{camera}_0", frames[0].rgb)
            topic = f"/t_cams/{camera}/lix/semantic"
            assert probe.retry(lambda m=msg, c=camera: probe.publishers[f"/{c}/image_raw"].publish(m),
                               lambda t=topic: probe.received[t])
        for camera in ("t_front", "t_rear"):  # each camera's masks come from its own frames only
            assert {m.header.frame_id for m in probe.received[f"/t_cams/{camera}/lix/semantic"]} == {f"{camera}_0"}
    finally:
        probe.close()
        code, stderr = bringup.stop()
    assert code == 0, stderr[-2000:]
    bad = run_module("lix_ros.cli.bringup", "--cameras", "front,front", timeout=60)
    assert bad.returncode == 2 and "argument 'cameras'" in bad.stderr
