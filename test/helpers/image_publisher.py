"""Separate-process publisher for the transport test: N deterministic 640x480 rgb8 frames.

Usage: image_publisher.py TOPIC COUNT RATE_HZ
"""

from __future__ import annotations

import sys
import time

from lix_ros.core.dds import configure_dds_env

configure_dds_env()

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402


def frame_bytes(index: int, height: int = 480, width: int = 640) -> bytes:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()


def main() -> int:
    topic, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("lix_test_image_publisher")
    publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
    deadline = time.monotonic() + 30
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print("no subscriber matched", file=sys.stderr)
            return 1
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the reader finish matching on both transports
    for index in range(count):
        msg = Image()
        msg.header.frame_id = f"frame_{index}"
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = 480, 640, "rgb8", 0, 640 * 3
        msg.data = frame_bytes(index)
        publisher.publish(msg)
        time.sleep(1.0 / rate)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
