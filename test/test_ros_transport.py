"""Two processes exchange 640x480 sensor_msgs/Image over real rclpy + Fast DDS with sensor-data QoS."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from image_publisher import frame_bytes  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

pytestmark = pytest.mark.ros
COUNT = 40


def test_shipped_profile_is_in_use():
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("config/fastdds_profile.xml")
    assert os.environ["ROS_DOMAIN_ID"].isdigit()


def test_images_cross_processes_intact():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("lix_test_image_subscriber", context=context)
    received: dict[int, Image] = {}

    def on_image(msg: Image) -> None:
        received[int(msg.header.frame_id.split("_")[1])] = msg

    node.create_subscription(Image, "lix_test/image", on_image, qos_profile_sensor_data)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    publisher = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "helpers" / "image_publisher.py"), "lix_test/image", str(COUNT),
         "15"], env=os.environ.copy(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(received) < COUNT and time.monotonic() < deadline and publisher.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        for _ in range(10):  # drain what is in flight after the publisher exits
            executor.spin_once(timeout_sec=0.05)
        assert publisher.wait(timeout=30) == 0, publisher.stderr.read()
    finally:
        publisher.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert sorted(received) == list(range(COUNT))
    for index, msg in received.items():
        assert (msg.height, msg.width, msg.encoding, msg.step) == (480, 640, "rgb8", 1920)
        assert bytes(msg.data) == frame_bytes(index), f"frame {index} corrupted"
