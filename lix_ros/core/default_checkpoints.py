"""Paths of the packaged default checkpoints (importable without rclpy)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_CHECKPOINTS = {"student": "student_small.pt", "teacher": "teacher_depth_small.pt"}


def package_root() -> Path:
    """The installed lix_ros package folder (its checkpoints/ holds the packaged defaults)."""
    return Path(str(resources.files("lix_ros")))


def default_checkpoint(kind: str) -> str:
    return str(package_root() / "checkpoints" / DEFAULT_CHECKPOINTS[kind])
