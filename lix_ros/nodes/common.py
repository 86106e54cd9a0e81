"""Pieces shared by the nodes: QoS, message conversion, class table, diagnostics."""

from __future__ import annotations

import json

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from lix_ros.core.image_codec import encode_mono8, encode_rgb8
from lix_ros.data.classes import CITYSCAPES_CLASSES, IGNORE_ID


def input_qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort"
                      else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


# Outputs are reliable so both reliable and best-effort subscribers can receive them.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def image_msg(header, fields: tuple[int, int, str, int, bytes]) -> Image:
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.encoding, msg.step, data = fields
    msg.is_bigendian = 0
    msg.data = data
    return msg


def mono8_msg(header, ids: np.ndarray) -> Image:
    return image_msg(header, encode_mono8(ids))


def rgb8_msg(header, rgb: np.ndarray) -> Image:
    return image_msg(header, encode_rgb8(rgb))


def class_table_msg(names: list[str], output_classes: list[int] | None = None) -> String:
    """The class table as JSON; `predicted` is false for a class the model's training labels never contained
    (the node never publishes its id)."""
    colors = {c.name: list(c.color) for c in CITYSCAPES_CLASSES}
    table = {"ignore_id": IGNORE_ID, "encoding": "mono8 class ids",
             "classes": [{"id": i, "name": n, "color": colors.get(n, [0, 0, 0]),
                          "predicted": output_classes is None or i in output_classes} for i, n in enumerate(names)]}
    return String(data=json.dumps(table))


def diagnostic_array(node, name: str, level_ok: bool, message: str, values: dict, error: bool = False
                     ) -> DiagnosticArray:
    """One lix_ros status: OK, WARN when not level_ok, ERROR when `error` (a part of the node has stopped)."""
    status = DiagnosticStatus()
    status.level = DiagnosticStatus.ERROR if error else DiagnosticStatus.OK if level_ok else DiagnosticStatus.WARN
    status.name = f"lix_ros: {name}"
    status.hardware_id = node.get_fully_qualified_name()
    status.message = message
    status.values = [KeyValue(key=k, value=(f"{v:.3f}" if isinstance(v, float) else str(v))) for k, v in
                     values.items()]
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [status]
    return array


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9
