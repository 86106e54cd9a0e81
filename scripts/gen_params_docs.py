"""Regenerate config/segmentation.yaml and the README's launch-argument and parameter tables from
lix_ros/nodes/params.py and lix_ros/cli/bringup.py (test/test_params_agree.py checks they agree)."""

from __future__ import annotations

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


LAUNCH_HEADER = "| argument | default | meaning |"
PARAMS_HEADER = "| node | parameter | default | range | meaning |"


def markdown_default(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return EMPTY
    if isinstance(value, list) and len(value) == 16:
        return "identity 4x4"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def launch_rows() -> list[str]:
    return [f"| `{name}` | `{default or EMPTY}` | {desc} |" for name, default, desc in LAUNCH_ARGUMENTS]


def parameter_rows() -> list[str]:
    rows = []
    for node, params in NODES.items():
        for p in params:
            rng = f"[{p.min}, {p.max}]" if p.min is not None else (" \\| ".join(p.choices) if p.choices else "")
            rows.append(f"| `{node}` | `{p.name}` | `{markdown_default(p.default)}` | {rng} | {p.description} |")
    return rows


def replace_table(text: str, header: str, rows: list[str]) -> str:
    """`text` with the body of the Markdown table under `header` replaced by `rows` (prose around it kept)."""
    lines = text.split("\n")
    if lines.count(header) != 1:
        raise SystemExit(f"README needs exactly one table headed {header!r}")
    first = lines.index(header) + 2  # after the header and its |---| line
    last = first
    while last < len(lines) and lines[last].startswith("| "):
        last += 1
    return "\n".join(lines[:first] + rows + lines[last:])


def readme_with_tables(text: str) -> str:
    return replace_table(replace_table(text, LAUNCH_HEADER, launch_rows()), PARAMS_HEADER, parameter_rows())


def main() -> None:
    (REPO / "config" / "segmentation.yaml").write_text(params_yaml())
    readme = REPO / "README.md"
    readme.write_text(readme_with_tables(readme.read_text()))
    print("regenerated config/segmentation.yaml and the README's launch-argument and parameter tables")


if __name__ == "__main__":
    main()
