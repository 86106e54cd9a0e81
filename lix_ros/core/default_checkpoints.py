"""Paths of the packaged checkpoints (importable without rclpy).

Besides a path, anything that takes a checkpoint accepts the name of a packaged one (`student_wide` or
`student_wide.pt`): the launch file's and lix-bringup's `checkpoint` parameter, lix-eval, lix-bag, lix-finetune,
so a pip install needs no path into site-packages.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_CHECKPOINTS = {"student": "student_small.pt", "teacher": "teacher_depth_small.pt"}


def package_root() -> Path:
    """The installed lix_ros package folder (its checkpoints/ holds the packaged defaults)."""
    return Path(str(resources.files("lix_ros")))


def default_checkpoint(kind: str) -> str:
    return str(package_root() / "checkpoints" / DEFAULT_CHECKPOINTS[kind])


def packaged_checkpoints() -> list[str]:
    """Names (without .pt) of the checkpoints shipped in the package."""
    return sorted(path.stem for path in (package_root() / "checkpoints").glob("*.pt"))


def resolve_checkpoint(path: str | Path) -> Path:
    """`path` if it names a file; else the packaged checkpoint of that name (a bare name, .pt optional); else
    `path` unchanged, for the reader to report as not found. A file in the working directory wins over a
    packaged checkpoint of the same name."""
    path = Path(path)
    if path.is_file() or path.parent != Path("."):
        return path
    packaged = package_root() / "checkpoints" / (path.stem + ".pt")
    return packaged if path.suffix in ("", ".pt") and packaged.is_file() else path
