"""Regenerate config/segmentation.yaml and the README's launch-argument and parameter tables from
lix_ros/nodes/params.py and lix_ros/cli/bringup.py (test/test_params_agree.py checks they agree)."""

from __future__ import annotations

import re
from pathlib import Path

from lix_ros.cli.bringup import LAUNCH_ARGUMENTS
from lix_ros.nodes.params import NODES

REPO = Path(__file__).resolve().parents[1]
EMPTY = '""'


def yaml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return repr(value)


def params_yaml() -> str:
    lines = ["# lix_ros node parameters (ros2 launch lix_ros segmentation.launch.py params_file:=...; "
             "lix-bringup --params ...).",
             "# Every parameter is declared in lix_ros/nodes/params.py with the same default, description and range;",
             "# test/test_params_agree.py keeps this file, the launch file and the README in agreement.", ""]
    for node, params in NODES.items():
        lines += [f"/**/{node}:", "  ros__parameters:"]
        for p in params:
            choices = f" ({' | '.join(p.choices)})" if p.choices else ""
            extra = f" [{p.min}, {p.max}]" if p.min is not None else choices
            lines += [f"    # {p.description}{extra}", f"    {p.name}: {yaml_value(p.default)}"]
        lines.append("")
    return "\n".join(lines)


def readme_tables() -> str:
    out = ["### Launch arguments", "",
           "Same names for `ros2 launch lix_ros segmentation.launch.py NAME:=VALUE` and `lix-bringup --NAME VALUE` "
           "(there: `--params`, `--teacher`, `--ab` for the first and the two switches, dashes for underscores).", "",
           "| argument | default | meaning |", "|---|---|---|"]
    out += [f"| `{name}` | `{default or EMPTY}` | {desc} |" for name, default, desc in LAUNCH_ARGUMENTS]
    out += ["", "### Parameters", "",
            "Declared once in `lix_ros/nodes/params.py` (typed, with ranges; read-only), mirrored in "
            "`config/segmentation.yaml`.", "", "| node | parameter | default | range | meaning |",
            "|---|---|---|---|---|"]
    for node, params in NODES.items():
        for p in params:
            rng = f"[{p.min}, {p.max}]" if p.min is not None else (" \\| ".join(p.choices) if p.choices else "")
            default = "identity 4x4" if isinstance(p.default, list) else (p.default if p.default != "" else EMPTY)
            out.append(f"| `{node}` | `{p.name}` | `{default}` | {rng} | {p.description} |")
    return "\n".join(out) + "\n"


def main() -> None:
    (REPO / "config" / "segmentation.yaml").write_text(params_yaml())
    readme = (REPO / "README.md").read_text()
    pattern = re.compile(r"### Launch arguments\n.*?(?=\n##+ (?!Parameters))", re.S)  # up to the next section
    if not pattern.search(readme):
        raise SystemExit("README has no '### Launch arguments' section to replace")
    (REPO / "README.md").write_text(pattern.sub(lambda _: readme_tables(), readme, count=1))
    print("regenerated config/segmentation.yaml and the README tables")


if __name__ == "__main__":
    main()
