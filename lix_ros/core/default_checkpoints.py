"""Paths of the packaged default checkpoints (importable without rclpy)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_CHECKPOINTS = {"student": "student_small.pt", "teacher": "teacher_depth_small.pt"}


def default_checkpoint(kind: str) -> str:
    return str(Path(str(resources.files("lix_ros"))) / "checkpoints" / DEFAULT_CHECKPOINTS[kind])
