"""Every node parameter, declared once: name, default, type, description and range.

The nodes declare from these lists; `config/segmentation.yaml`, the launch file's arguments and the README
are checked against them by test/test_params_agree.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    runtime: bool = False  # may change while the node runs (`ros2 param set`); the others are read-only

    def allowed(self) -> str:
        """What the parameter accepts, for error messages."""
        kind = type(self.default).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        if self.min is not None:
            return f"{article} {kind} in [{self.min}, {self.max}]"
        if isinstance(self.default, list):
            return "a list of strings" if all(isinstance(v, str) for v in self.default) else "a list of 16 numbers"
        return f"{article} {kind}"

    def check(self, value: Any) -> Any:
        if type(self.default) is float and isinstance(value, int):
            value = float(value)
        if type(value) is not type(self.default):
            raise ValueError(f"parameter {self.name!r} must be {self.allowed()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"parameter {self.name!r} must be {self.allowed()}, got {value!r}")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ValueError(f"parameter {self.name!r} must be {self.allowed()}, got {value!r}")
        return value


AUTOSTART = Param("autostart", True, "Configure and activate at start; false: stay unconfigured until a lifecycle "
                  "manager (or ros2 lifecycle set) drives the node")

COMMON = [
    AUTOSTART,
    Param("device", "cpu", "Torch device for inference", choices=("cpu", "cuda")),
    Param("threads", 0, "Torch intra-op threads per process, the largest of its nodes' (0 = torch default)", 0, 64),
    Param("reliability", "best_effort", "QoS reliability of the image subscriptions (sensor data is best effort)",
          choices=("best_effort", "reliable")),
    Param("queue_depth", 1, "QoS history depth of the image subscriptions", 1, 100),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages", 0.1, 60.0, runtime=True),
    Param("warn_throttle", 5.0, "Seconds between repeated warnings about bad input", 0.1, 600.0, runtime=True),
    Param("enabled", True, "Run inference; false pauses it (frames are dropped, counted) without tearing down",
          runtime=True),
    Param("warn_hold", 10.0, "Seconds /diagnostics stays WARN after the last rejected frame", 0.0, 3600.0),
]

def model_params(default_description: str, packaged_example: str) -> list[Param]:
    return [
        Param("checkpoint", "", f"Checkpoint: a .pt path or a packaged name (e.g. {packaged_example}); empty = "
              f"{default_description}"),
        Param("input_height", 0, "Model input height in pixels (0 = the checkpoint's)", 0, 4096),
        Param("input_width", 0, "Model input width in pixels (0 = the checkpoint's)", 0, 4096),
        Param("resize_policy", "stretch", "stretch: resize to the input size; native: run at the frame's size",
              choices=("stretch", "native")),
        Param("backend", "onnxruntime", "Inference engine: onnxruntime (the checkpoint exported once to a cached "
              "ONNX file) or torch", choices=("onnxruntime", "torch")),
        Param("providers", ["CPUExecutionProvider"], "ONNX Runtime execution providers in order of preference "
              "(e.g. TensorrtExecutionProvider, CUDAExecutionProvider); ones not installed are skipped"),
    ]


SEGMENTATION = [
    *model_params("the packaged default distilled student", "student_wide"),
    Param("use_compressed", False, "Subscribe to image/compressed (sensor_msgs/CompressedImage) instead of image"),
    Param("overlay_alpha", 0.5, "Colour output: weight of the palette over the camera image (1 = palette only)",
          0.0, 1.0, runtime=True),
    *COMMON,
]

TEACHER = [
    *model_params("the packaged default depth teacher", "teacher_depth_small"),
    Param("geometry_source", "depth", "depth: a depth image; lidar: a PointCloud2 projected with camera_info",
          choices=("depth", "lidar")),
    Param("pair_queue_size", 10, "Messages kept per stream while pairing by stamp", 1, 1000),
    Param("pair_slop", 0.05, "Largest stamp difference (s) between paired camera, geometry and camera_info",
          0.0, 10.0),
    Param("lidar_to_camera", [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0],
          "Row-major 4x4 transform from the LiDAR frame to the camera optical frame"),
    *COMMON,
]

COMPARE = [
    AUTOSTART,
    Param("queue_size", 30, "Unmatched masks kept per stream while waiting for the same stamp", 1, 1000),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages", 0.1, 60.0, runtime=True),
    Param("hard_frame_bag", "", "Write frames where student and teacher disagree to this bag ('' = off)"),
    Param("hard_frame_threshold", 0.2, "Capture when the fraction of disagreeing pixels exceeds this", 0.0, 1.0,
          runtime=True),
    Param("hard_frame_max_mb", 500.0, "Stop capturing when the hard-frame bag reaches this size (MB)", 1.0, 100000.0),
    Param("geometry_source", "depth", "Which geometry topic to capture with hard frames", choices=("depth", "lidar")),
]

NODES = {"segmentation_node": SEGMENTATION, "teacher_node": TEACHER, "compare_node": COMPARE}


def declare(node, params: list[Param], on_change=None) -> dict[str, Any]:
    """Declare `params` on an rclpy node with descriptors and ranges; return their checked values.

    A value of the wrong type or out of range (from `-p` or a params file) raises ValueError naming the
    parameter and what it accepts; a parameter in the overrides that the node does not have gets a warning
    naming the closest known one (a misspelled key would otherwise be ignored silently). `runtime`
    parameters accept `ros2 param set` (checked the same way; refused with the reason otherwise), update the
    returned dict in place and call `on_change(name, value)`; the others are read-only."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import ParameterException

    values = {}
    for p in params:
        descriptor = ParameterDescriptor(description=p.description, read_only=not p.runtime)
        if p.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(p.choices)
        if p.min is not None and isinstance(p.default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(p.min), to_value=float(p.max),
                                                                  step=0.0)]
        elif p.min is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=1)]
        try:
            value = node.declare_parameter(p.name, p.default, descriptor).value
        except ParameterException as error:  # rclpy: wrong type or outside the descriptor's range
            given = getattr(node, "_parameter_overrides", {}).get(p.name)
            shown = given.value if given is not None else str(error).splitlines()[0]
            raise ValueError(f"parameter {p.name!r} must be {p.allowed()}, got {shown!r}") from None
        values[p.name] = p.check(list(value) if isinstance(p.default, list) else value)
    warn_unknown_overrides(node, [p.name for p in params])
    node.add_on_set_parameters_callback(lambda changes: _set_at_runtime(params, values, changes, on_change))
    return values


def _set_at_runtime(params: list[Param], values: dict[str, Any], changes, on_change):
    """All of `changes` are checked before any is applied: a refused set leaves the node as it was."""
    from rcl_interfaces.msg import SetParametersResult

    specs = {p.name: p for p in params}
    checked = {}
    for change in changes:
        spec = specs.get(change.name)
        if spec is None:
            continue  # rclpy's own parameters (use_sim_time)
        if not spec.runtime:
            return SetParametersResult(successful=False, reason=f"parameter {change.name!r} is read-only while the "
                                                                 "node runs; set it in the params file or with -p")
        try:
            checked[change.name] = spec.check(change.value)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
    for name, value in checked.items():
        values[name] = value
        if on_change is not None:
            on_change(name, value)
    return SetParametersResult(successful=True)


def warn_unknown_overrides(node, known: list[str]) -> list[str]:
    """Warn about overrides (params file / -p) the node does not declare, naming the closest known name."""
    import difflib

    unknown = [name for name in getattr(node, "_parameter_overrides", {})
               if name not in known and name != "use_sim_time" and not name.startswith("qos_overrides.")]
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
        node.get_logger().warning(f"unknown parameter {name!r} is ignored{hint}")
    return unknown
