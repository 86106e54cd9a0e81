"""Test session setup: the shipped Fast DDS profile and a ROS domain of this session's own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lix_ros.core.dds import configure_dds_env

sys.path.insert(0, str(Path(__file__).parent / "helpers"))  # processes.py, ros_probe.py, image_publisher.py


def pytest_configure(config):
    # Before anything imports rclpy: children inherit these through the environment.
    if "LIX_TEST_DOMAIN_FIXED" not in os.environ:
        os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 200)
        os.environ["LIX_TEST_DOMAIN_FIXED"] = "1"
    configure_dds_env()
