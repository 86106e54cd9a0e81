"""README, launch arguments, lix-bringup options and config/segmentation.yaml agree with the declarations."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from lix_ros.cli.bringup import LAUNCH_ARGUMENTS, build_parser
from lix_ros.nodes.params import NODES

REPO = Path(__file__).resolve().parents[1]


def test_yaml_declares_every_parameter_with_its_default():
    data = yaml.safe_load((REPO / "config" / "segmentation.yaml").read_text())
    assert set(data) == {f"/**/{name}" for name in NODES}
    for node, params in NODES.items():
        section = data[f"/**/{node}"]["ros__parameters"]
        assert list(section) == [p.name for p in params], node
        for p in params:
            assert section[p.name] == p.default and type(section[p.name]) is type(p.default), (node, p.name)
            p.check(section[p.name])


def test_launch_file_uses_the_shared_argument_table():
    source = (REPO / "launch" / "segmentation.launch.py").read_text()
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert "LAUNCH_ARGUMENTS" in imported and "DeclareLaunchArgument" in imported
    names = [name for name, _, _ in LAUNCH_ARGUMENTS]
    assert names == ["params_file", "checkpoint", "image", "depth", "points", "camera_info", "use_teacher", "use_ab",
                     "namespace", "use_sim_time", "device", "cameras"]
    for name in names:  # every declared argument is used when the nodes are built (checked ones via settings)
        assert f'value["{name}"]' in source or f'settings["{name}"]' in source, f"launch file ignores argument {name}"


def test_launch_arguments_are_checked(tmp_path):
    """What the launch file runs before it builds nodes (ROS-free, so it runs without launch_ros)."""
    from lix_ros.cli.bringup import launch_settings
    from lix_ros.cli.common import CliError

    value = {name: default for name, default, _ in LAUNCH_ARGUMENTS}
    settings = launch_settings(value)
    assert Path(settings["params_file"]).is_file() and settings["use_teacher"] is False
    with pytest.raises(CliError, match=r"argument 'params_file': /missing\.yaml does not exist"):
        launch_settings(dict(value, params_file="/missing.yaml"))
    with pytest.raises(CliError, match="argument 'use_teacher': expected true or false, got 'maybe'"):
        launch_settings(dict(value, use_teacher="maybe"))


def test_bringup_options_mirror_launch_arguments():
    options = {a.dest for a in build_parser()._actions}
    for name, _, _ in LAUNCH_ARGUMENTS:
        expected = {"params_file": "params", "use_teacher": "teacher", "use_ab": "ab"}.get(name, name)
        assert expected in options, name


def _readme_table(heading: str) -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = re.split(r"\n##+ ", text.split(heading, 1)[1], maxsplit=1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_readme_lists_launch_arguments_with_defaults():
    rows = {r[0]: r[1] for r in _readme_table("### Launch arguments")}
    assert list(rows) == [name for name, _, _ in LAUNCH_ARGUMENTS]
    for name, default, _ in LAUNCH_ARGUMENTS:
        assert rows[name] == (default or '""'), name


def test_readme_tables_and_yaml_are_what_the_generator_writes():
    """Defaults, ranges and descriptions too: scripts/gen_params_docs.py rewrites both tables' rows and the
    YAML from the declarations, so a hand edit of either (or a new declaration not regenerated) fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_params_docs", REPO / "scripts" / "gen_params_docs.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    readme = (REPO / "README.md").read_text()
    assert generator.readme_with_tables(readme) == readme
    assert generator.params_yaml() == (REPO / "config" / "segmentation.yaml").read_text()
    assert generator.readme_with_tables(readme.replace("| Torch device for inference |", "| Torch device |")) == readme


@pytest.mark.parametrize("node", sorted(NODES))
def test_readme_lists_every_parameter(node):
    rows = {(r[0], r[1]) for r in _readme_table("### Parameters")}
    for p in NODES[node]:
        assert (node, p.name) in rows, f"README misses {node}.{p.name}"


def test_launch_file_imports_when_launch_ros_is_installed():
    pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI; runs on a ROS 2 install")
    import importlib.util

    spec = importlib.util.spec_from_file_location("lix_launch", REPO / "launch" / "segmentation.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [a.name for a in description.entities if type(a).__name__ == "DeclareLaunchArgument"]
    assert declared == [name for name, _, _ in LAUNCH_ARGUMENTS]


def test_readme_commands_exist():
    text = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", text, flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"README names make {target}"
