"""`lix-ament-links`: make a pip (non-colcon) install usable by `ros2 run` / `ros2 launch`.

ros2 finds a package's executables in <prefix>/lib/<package>/ and its launch and config files through the
ament index under <prefix>/share. A wheel puts console scripts in <prefix>/bin and the share files (data_files)
in <prefix>/share, so one step is missing: this command links every lix_ros console script into
<prefix>/lib/lix_ros/ (and writes the share files if the install lacks them, e.g. an editable install).
Then, with the prefix on AMENT_PREFIX_PATH (`export AMENT_PREFIX_PATH=<prefix>:$AMENT_PREFIX_PATH`):
`ros2 launch lix_ros segmentation.launch.py`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import metadata
from pathlib import Path

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors
from lix_ros.core.dds import share_dir

PACKAGE = "lix_ros"


def console_scripts() -> list[str]:
    try:
        entry_points = metadata.distribution(PACKAGE).entry_points
    except metadata.PackageNotFoundError:
        raise CliError(f"{PACKAGE} is not installed in this environment (pip install .)") from None
    return sorted(ep.name for ep in entry_points if ep.group == "console_scripts")


def link(prefix: Path, bin_dir: Path) -> dict[str, list[str]]:
    done: dict[str, list[str]] = {"linked": [], "share": []}
    lib = prefix / "lib" / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    for name in console_scripts():
        script = bin_dir / name
        if not script.is_file():
            raise CliError(f"console script {script} not found (is {PACKAGE} installed with pip in this prefix?)")
        target = lib / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(script.resolve())
        done["linked"].append(name)
    source = share_dir()
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("")
        done["share"].append(str(marker.relative_to(prefix)))
    share = prefix / "share" / PACKAGE
    for relative in ["package.xml", *(str(p.relative_to(source)) for p in sorted((source / "launch").glob("*.py"))),
                     *(str(p.relative_to(source)) for p in sorted((source / "config").rglob("*")) if p.is_file())]:
        destination = share / relative
        if not destination.exists() and (source / relative).is_file():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination)
            done["share"].append(str(destination.relative_to(prefix)))
    return done


@friendly_errors("lix-ament-links")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-ament-links", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="install prefix to complete")
    parser.add_argument("--bin", type=Path, default=Path(sys.prefix) / "bin", help="where pip put the console scripts")
    args = parser.parse_args(argv)
    done = link(args.prefix, args.bin)
    print(f"linked {len(done['linked'])} executables into {args.prefix / 'lib' / PACKAGE}"
          + (f"; wrote {len(done['share'])} share files" if done["share"] else "")
          + f"\nnext: export AMENT_PREFIX_PATH={args.prefix}:$AMENT_PREFIX_PATH; "
            "ros2 launch lix_ros segmentation.launch.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
