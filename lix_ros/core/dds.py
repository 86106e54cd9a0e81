"""DDS environment for lix_ros processes: the shipped Fast DDS profile and the rmw choice.

Must run before rclpy creates a context (Fast DDS reads the profile when the participant is made).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

PROFILE_NAME = "fastdds_profile.xml"


def share_dir() -> Path:
    """The directory holding `config/` and `launch/`: the colcon share dir, a pip prefix, or the source tree."""
    candidates = []
    try:  # colcon / apt install
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("lix_ros")))
    except Exception:
        pass
    candidates.append(Path(__file__).resolve().parents[2])  # source tree / editable install
    candidates.append(Path(sys.prefix) / "share" / "lix_ros")  # pip install (data_files)
    for candidate in candidates:
        if (candidate / "config" / PROFILE_NAME).is_file():
            return candidate
    raise FileNotFoundError(
        f"lix_ros config directory not found; looked for config/{PROFILE_NAME} under "
        + ", ".join(str(c) for c in candidates)
    )


def profile_path() -> Path:
    return share_dir() / "config" / PROFILE_NAME


def configure_dds_env(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Use the shipped Fast DDS profile and rmw_fastrtps_cpp unless the user chose otherwise."""
    env = os.environ if environ is None else environ
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if not env.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile_path())
    return env
