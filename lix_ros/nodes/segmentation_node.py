"""segmentation_node: camera image -> /lix/semantic (mono8 class ids at the input size, header copied).

Subscribes  image (sensor_msgs/Image: rgb8, bgr8, mono8, rgba8, bgra8) or image/compressed
Publishes   lix/semantic (mono8), lix/semantic_color (rgb8, only while subscribed),
            lix/confidence (mono8 0-255, only while subscribed), lix/class_table (std_msgs/String JSON,
            latched), lix/processing_time (std_msgs/Float32, ms), /diagnostics
"""

from __future__ import annotations

import sys
import threading

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float32, String

from lix_ros.constants import DIAGNOSTICS
from lix_ros.data.classes import palette
from lix_ros.frame_slot import LatestFrameSlot
from lix_ros.image_codec import ImageError, decode_color, decode_compressed
from lix_ros.inference import Segmenter
from lix_ros.nodes.common import (
    LATCHED_QOS,
    OUTPUT_QOS,
    class_table_msg,
    diagnostic_array,
    input_qos,
    mono8_msg,
    rgb8_msg,
    stamp_seconds,
)
from lix_ros.nodes.params import SEGMENTATION, declare
from lix_ros.nodes_defaults import default_checkpoint
from lix_ros.stats import InferenceCounters


class SegmentationNode(Node):
    def __init__(self, **kwargs):
        super().__init__("segmentation_node", **kwargs)
        self.p = declare(self, SEGMENTATION)
        checkpoint = self.p["checkpoint"] or default_checkpoint("student")
        self.segmenter = Segmenter(checkpoint, self.p["device"], (self.p["input_height"], self.p["input_width"]),
                                   self.p["resize_policy"], threads=self.p["threads"])
        self.palette = palette()
        qos = input_qos(self.p["reliability"], self.p["queue_depth"])
        if self.p["use_compressed"]:
            self.create_subscription(CompressedImage, "image/compressed", self.on_frame, qos)
        else:
            self.create_subscription(Image, "image", self.on_frame, qos)
        self.semantic_pub = self.create_publisher(Image, "lix/semantic", OUTPUT_QOS)
        self.color_pub = self.create_publisher(Image, "lix/semantic_color", OUTPUT_QOS)
        self.confidence_pub = self.create_publisher(Image, "lix/confidence", OUTPUT_QOS)
        self.time_pub = self.create_publisher(Float32, "lix/processing_time", OUTPUT_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self.create_publisher(String, "lix/class_table", LATCHED_QOS).publish(
            class_table_msg(self.segmenter.class_names))

        self.slot = LatestFrameSlot()
        self.counters = InferenceCounters()
        self._running = True
        self.worker = threading.Thread(target=self._work, name="lix_segmentation_worker", daemon=True)
        self.worker.start()
        self.create_timer(self.p["diagnostics_period"], self.publish_diagnostics)
        self.get_logger().info(f"segmenting {'image/compressed' if self.p['use_compressed'] else 'image'} with "
                               f"{checkpoint} on {self.p['device']} at {self.segmenter.input_size} "
                               f"({self.p['resize_policy']})")

    def on_frame(self, msg) -> None:
        self.slot.put(msg)  # only store: the worker does the work and skips stale frames

    def _reject(self, error: Exception) -> None:
        self.counters.reject(error)
        self.get_logger().warning(f"rejected frame: {error}", throttle_duration_sec=self.p["warn_throttle"])

    def _decode(self, msg) -> np.ndarray:
        if isinstance(msg, CompressedImage):
            return decode_compressed(msg.format, msg.data)
        return decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)

    def _work(self) -> None:
        while self._running:
            msg = self.slot.take(timeout=0.1)
            if msg is None:
                continue
            try:
                rgb = self._decode(msg)
            except ImageError as error:
                self._reject(error)
                continue
            want_color = self.color_pub.get_subscription_count() > 0
            want_confidence = self.confidence_pub.get_subscription_count() > 0
            try:
                prediction = self.segmenter.predict(rgb, with_confidence=want_confidence)
            except Exception as error:  # keep serving: a failed frame must not kill the node
                self._reject(RuntimeError(f"inference failed: {error}"))
                continue
            self.semantic_pub.publish(mono8_msg(msg.header, prediction.ids))
            if want_color:
                alpha = self.p["overlay_alpha"]
                colors = self.palette[prediction.ids].astype(np.float32)
                blended = alpha * colors + (1 - alpha) * rgb.astype(np.float32)
                self.color_pub.publish(rgb8_msg(msg.header, blended.astype(np.uint8)))
            if want_confidence:
                self.confidence_pub.publish(mono8_msg(msg.header, prediction.confidence))
            now = self.get_clock().now().nanoseconds * 1e-9
            self.counters.record(prediction.seconds, now - stamp_seconds(msg.header.stamp))
            self.time_pub.publish(Float32(data=float(prediction.seconds * 1000)))

    def publish_diagnostics(self) -> None:
        ok, message, values = self.counters.report()
        values = {"frames_received": self.slot.received, "frames_dropped_stale": self.slot.dropped, **values}
        self.diagnostics_pub.publish(diagnostic_array(self, "segmentation_node", ok, message, values))

    def destroy_node(self) -> None:
        self._running = False
        self.slot.close()
        self.worker.join(timeout=2)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    from lix_ros.nodes.runner import run_nodes

    return run_nodes([SegmentationNode], args)


if __name__ == "__main__":
    sys.exit(main())
