"""`lix-bringup`: the launch file's nodes in one process, from the same params YAML (for pip installs,
where `launch` / `ros2 launch` are not available). Options mirror the launch arguments."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import yaml

from lix_ros.cli.common import CliError, friendly_errors
from lix_ros.core.constants import CAMERA, CAMERA_INFO, DEPTH, POINTS
from lix_ros.core.dds import share_dir

# (launch argument, default, description): the launch file imports this table too.
LAUNCH_ARGUMENTS: list[tuple[str, str, str]] = [
    ("params_file", "", "Parameters YAML (default: the package's config/segmentation.yaml)"),
    ("checkpoint", "", "Student checkpoint (path or packaged name); empty keeps the params file's value (or the "
     "packaged default)"),
    ("image", CAMERA, "Camera image topic (sensor_msgs/Image)"),
    ("depth", DEPTH, "Depth image topic for the teacher (32FC1 m or 16UC1 mm)"),
    ("points", POINTS, "LiDAR PointCloud2 topic for the teacher (geometry_source: lidar)"),
    ("camera_info", CAMERA_INFO, "CameraInfo topic for the teacher"),
    ("use_teacher", "false", "Also run teacher_node (camera + depth/LiDAR)"),
    ("use_ab", "false", "Also run compare_node (student vs teacher agreement)"),
    ("namespace", "", "Namespace of all nodes and their relative topics"),
    ("use_sim_time", "false", "Use /clock (bag replay)"),
    ("device", "", "Torch device for all models (cpu or cuda); empty keeps the params file's value"),
    ("cameras", "", "Comma-separated camera names: one student per camera in namespace <name>, reading "
                    "/<name>/image_raw (empty: one student on `image`)"),
]


def default_params_file() -> Path:
    return share_dir() / "config" / "segmentation.yaml"


def _truthy(text: str, name: str = "") -> bool:
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off", ""):
        return False
    raise CliError(f"{f'argument {name!r}: ' if name else ''}expected true or false, got {text!r}")


def launch_settings(value: dict[str, str]) -> dict:
    """The launch file's arguments checked (ROS-free, so it is tested without launch_ros): the params file
    must exist (launch_ros would drop a missing one with a warning and run on defaults), switches must be
    true/false (naming the argument otherwise)."""
    params_file = Path(value["params_file"]) if value["params_file"] else default_params_file()
    if not params_file.is_file():
        raise CliError(f"argument 'params_file': {params_file} does not exist")
    return {"params_file": str(params_file), "cameras": camera_names(value.get("cameras", "")),
            **{name: _truthy(value[name], name) for name in ("use_teacher", "use_ab", "use_sim_time")}}


def camera_names(text: str) -> list[str]:
    """'front, rear' -> ['front', 'rear']; each must be a valid ROS name token, no repeats."""
    names = [n.strip().strip("/") for n in text.split(",") if n.strip()]
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*", n)]
    if bad or len(set(names)) != len(names):
        raise CliError(f"argument 'cameras': expected distinct names like front,rear (letters, digits, _), "
                       f"got {text!r}")
    return names


def camera_namespace(namespace: str, camera: str) -> str:
    return "/" + "/".join(part for part in (namespace.strip("/"), camera) if part)


def resolve_params(params_file: Path, checkpoint: str, device: str, use_sim_time: bool) -> dict:
    """Load the params YAML (safe_load), check its shape, and apply the command-line overrides."""
    if not params_file.is_file():
        raise CliError(f"params file not found: {params_file}")
    try:
        data = yaml.safe_load(params_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise CliError(f"{params_file}: invalid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        raise CliError(f"{params_file}: expected '<node>: ros__parameters: {{...}}' sections")
    for section, body in data.items():
        params = body["ros__parameters"]
        if section.endswith("segmentation_node") and checkpoint:
            params["checkpoint"] = checkpoint
        if device and "device" in params:
            params["device"] = device
        params["use_sim_time"] = use_sim_time
    return data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lix-bringup", description=__doc__)
    parser.add_argument("--params", type=Path, default=None, help="parameters YAML (launch: params_file)")
    parser.add_argument("--teacher", action="store_true", help="also run teacher_node (launch: use_teacher)")
    parser.add_argument("--ab", action="store_true", help="also run compare_node (launch: use_ab)")
    for name, default, description in LAUNCH_ARGUMENTS:
        if name in ("params_file", "use_teacher", "use_ab"):
            continue
        parser.add_argument(f"--{name.replace('_', '-')}", default=default, help=f"{description} [{default!r}]")
    return parser


def ros_arguments(args, params_path: Path, per_camera: bool = False) -> list[str]:
    out = ["--ros-args", "--params-file", str(params_path)]
    for topic in ("image", "depth", "points", "camera_info"):
        out += ["-r", f"{topic}:={getattr(args, topic)}"]
        if topic == "image":
            out += ["-r", f"image/compressed:={args.image}/compressed"]
    if args.namespace and not per_camera:  # per camera, each node gets <namespace>/<camera> itself
        out += ["-r", f"__ns:={'/' + args.namespace.strip('/')}"]
    return out


def camera_student(namespace: str, camera: str):
    """A factory for the student of one camera: its namespace, reading /<camera>/image_raw."""
    from lix_ros.nodes.segmentation_node import SegmentationNode

    topic = f"/{camera}/image_raw"

    def make():
        remap = ["--ros-args", "-r", f"image:={topic}", "-r", f"image/compressed:={topic}/compressed"]
        return SegmentationNode(namespace=camera_namespace(namespace, camera), cli_args=remap)

    return make


@friendly_errors("lix-bringup")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = resolve_params(args.params or default_params_file(), args.checkpoint, args.device,
                            _truthy(args.use_sim_time))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="lix_bringup_", delete=False) as handle:
        yaml.safe_dump(params, handle)
    from lix_ros.nodes.compare_node import CompareNode
    from lix_ros.nodes.runner import run_nodes
    from lix_ros.nodes.segmentation_node import SegmentationNode
    from lix_ros.nodes.teacher_node import TeacherNode

    cameras = camera_names(args.cameras)
    if cameras and (args.teacher or args.ab):
        raise CliError("--cameras runs students only; start teacher / A/B separately (one per camera namespace)")
    students = [camera_student(args.namespace, c) for c in cameras] if cameras else [SegmentationNode]
    factories = students + ([TeacherNode] if args.teacher else []) + ([CompareNode] if args.ab else [])
    try:
        return run_nodes(factories, ros_arguments(args, Path(handle.name), per_camera=bool(cameras)))
    finally:
        Path(handle.name).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
