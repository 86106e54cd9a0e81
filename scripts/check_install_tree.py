"""Check a colcon install tree of lix_ros: executables in lib/lix_ros, launch/config/package.xml in
share/lix_ros, the ament index marker, the training harness as `lix_training` (never a top-level
`training`). Exit 1 naming every missing path.

    python scripts/check_install_tree.py <install>/lix_ros
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def expected_paths() -> list[str]:
    scripts = re.findall(r'"([\w-]+) = [\w.]+:main"', (ROOT / "setup.py").read_text())
    if not scripts:
        raise SystemExit("check_install_tree: no console_scripts found in setup.py")
    paths = [f"lib/lix_ros/{name}" for name in scripts]
    paths += ["share/lix_ros/package.xml", "share/ament_index/resource_index/packages/lix_ros"]
    paths += [f"share/lix_ros/launch/{p.name}" for p in (ROOT / "launch").glob("*.launch.py")]
    paths += [f"share/lix_ros/config/{p.name}" for p in (ROOT / "config").iterdir() if p.is_file()]
    paths += [f"share/lix_ros/config/training/{p.name}" for p in (ROOT / "config" / "training").glob("*.yaml")]
    return paths


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    prefix = Path(sys.argv[1])
    missing = [p for p in expected_paths() if not (prefix / p).exists()]
    for site in prefix.glob("lib/python*/site-packages"):
        if (site / "training").exists():
            missing.append(f"no top-level 'training' package (found {site / 'training'})")
        if not list(site.glob("*.egg-link")) and not (site / "lix_training" / "__init__.py").exists():
            missing.append(f"{site.relative_to(prefix)}/lix_training")
    if missing:
        print(f"check_install_tree: {prefix} lacks {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"check_install_tree: {prefix}: {len(expected_paths())} expected paths present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
