"""A pip (non-colcon) install made usable by ros2 launch: lix-ament-links completes the prefix."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ament_links_complete_a_pip_prefix(tmp_path):
    result = subprocess.run([str(Path(sys.executable).parent / "lix-ament-links"), "--prefix", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "AMENT_PREFIX_PATH" in result.stdout
    # the layout ros2 run / ros2 launch look up, checked by the same script CI runs on colcon installs
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "check_install_tree.py"), str(tmp_path)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    node = tmp_path / "lib" / "lix_ros" / "segmentation_node"
    assert node.is_symlink()
    usage = subprocess.run([str(node), "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "segmentation_node parameters:" in usage.stdout
    again = subprocess.run([str(Path(sys.executable).parent / "lix-ament-links"), "--prefix", str(tmp_path)],
                           capture_output=True, text=True)
    assert again.returncode == 0  # idempotent
