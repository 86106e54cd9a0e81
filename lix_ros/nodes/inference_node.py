"""The part the student and teacher nodes share: a worker thread that takes the newest input from a slot
that drops stale ones (the node callbacks only store), runs the model, publishes the mask with the input's
header and its processing time, counts rejects and reports them on /diagnostics, and stops cleanly.
Both are lifecycle nodes (lix_ros.nodes.managed): the model loads on configure, serving runs while active."""

from __future__ import annotations

import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import Float32

from lix_ros.core.constants import DIAGNOSTICS
from lix_ros.core.frame_slot import LatestFrameSlot
from lix_ros.core.image_codec import ImageError
from lix_ros.core.inference import Prediction
from lix_ros.core.node_counters import InferenceCounters
from lix_ros.core.pointcloud import PointCloudError
from lix_ros.nodes.common import OUTPUT_QOS, diagnostic_array, mono8_msg, stamp_seconds
from lix_ros.nodes.managed import ManagedNode

# Bad input of one frame: counted and warned about, and the next frame is served.
INPUT_ERRORS = (ImageError, PointCloudError)


class InferenceNode(ManagedNode):
    def __init__(self, name: str, spec, mask_topic: str, time_topic: str, **kwargs):
        super().__init__(name, **kwargs)
        # Set before anything can fail, so destroy_node works after a start-up error.
        self.slot = LatestFrameSlot()
        self.counters = InferenceCounters()
        self._running = False
        self.worker: threading.Thread | None = None
        self.frames_paused = 0
        self.segmenter = None
        self.mask_topic, self.time_topic = mask_topic, time_topic
        self.p = self.declare_checked(spec, self.on_parameter_change)
        self.counters.warn_hold_s = self.p["warn_hold"]
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)

    # ------------------------------------------------------------------ what a node defines
    def load(self) -> None:
        """Load the model (self.segmenter) and what goes with it; raise on a bad checkpoint or parameter."""
        raise NotImplementedError

    def make_publishers(self) -> list:
        """Publishers beside the mask and the processing time."""
        return []

    def on_activated(self) -> None:
        """Called once serving (e.g. publish a latched message, log what is served)."""

    def infer(self, item: Any) -> tuple[Any, Prediction, Any]:
        """(header to copy, prediction, context for publish_extras) for one slot item; raise an
        INPUT_ERRORS exception for bad input."""
        raise NotImplementedError

    def publish_extras(self, header, prediction: Prediction, context: Any) -> None:
        """Optional outputs beside the mask."""

    def diagnostics_values(self) -> dict:
        """Node-specific counters, reported before the shared ones."""
        return {}

    # ------------------------------------------------------------------ shared
    def log_backend(self) -> None:
        """One line on the inference engine: ONNX Runtime's providers (and the requested ones not installed)."""
        segmenter = self.segmenter
        if segmenter.backend != "onnxruntime":
            self.get_logger().info("backend torch")
            return
        origin = "exported to" if segmenter.onnx_exported else "cached"
        self.get_logger().info(f"backend onnxruntime ({origin} {segmenter.onnx_path}) on {segmenter.providers}")
        if segmenter.skipped_providers:
            self.get_logger().info(f"execution providers not installed, skipped: {segmenter.skipped_providers}")

    def configure(self) -> list:
        self.load()
        self.log_backend()
        self.semantic_pub = self.create_lifecycle_publisher(Image, self.mask_topic, OUTPUT_QOS)
        self.time_pub = self.create_lifecycle_publisher(Float32, self.time_topic, OUTPUT_QOS)
        return [self.semantic_pub, self.time_pub, *self.make_publishers()]

    def release(self) -> None:
        self.segmenter = None

    def start_serving(self) -> None:
        self.slot.reopen()
        self._running = True
        self.worker = threading.Thread(target=self._work, name=f"{self.get_name()}_worker", daemon=True)
        self.worker.start()

    def on_activate(self, state):
        result = super().on_activate(state)
        self.on_activated()
        return result

    def stop_serving(self) -> None:
        self._running = False
        self.slot.close()
        if self.worker is not None:
            self.worker.join(timeout=2)
            self.worker = None

    def on_parameter_change(self, name: str, value) -> None:
        """A runtime parameter was set (already checked); warn_throttle and overlay_alpha are read per use."""
        if name == "diagnostics_period":
            self.set_diagnostics_period(value)
        self.get_logger().info(f"parameter {name} set to {value!r}")

    def reject(self, error: Exception) -> None:
        self.counters.reject(error)
        self.get_logger().warning(f"rejected frame: {error}", throttle_duration_sec=self.p["warn_throttle"])

    def _work(self) -> None:
        while self._running:
            item = self.slot.take(timeout=0.1)
            if item is None:
                continue
            if not self.p["enabled"]:  # paused: drop the frame, keep the node up
                self.frames_paused += 1
                continue
            self._serve(item)

    def _serve(self, item: Any) -> None:
        try:
            header, prediction, context = self.infer(item)
        except INPUT_ERRORS as error:
            self.reject(error)
            return
        except Exception as error:  # keep serving: a failed frame must not kill the node
            self.reject(RuntimeError(f"inference failed: {error}"))
            return
        self.semantic_pub.publish(mono8_msg(header, prediction.ids))
        self.publish_extras(header, prediction, context)
        now = self.get_clock().now().nanoseconds * 1e-9
        self.counters.record(prediction.seconds, now - stamp_seconds(header.stamp))
        self.time_pub.publish(Float32(data=float(prediction.seconds * 1000)))

    def publish_diagnostics(self) -> None:
        ok, message, values = self.counters.report()
        values = {**self.diagnostics_values(), "frames_dropped_stale": self.slot.dropped,
                  "frames_paused": self.frames_paused, "enabled": self.p["enabled"], **values}
        self.diagnostics_pub.publish(diagnostic_array(self, self.get_name(), ok, message, values))

    def destroy_node(self) -> None:
        self.stop_serving()
        super().destroy_node()
