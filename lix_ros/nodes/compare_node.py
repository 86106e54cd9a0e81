"""compare_node: online A/B of the student against the teacher, frame by frame (same stamp).

Subscribes  lix/semantic, lix/teacher/semantic (mono8 class ids)
            and, with hard_frame_bag set, image, depth or points, camera_info (raw) to capture hard frames
Publishes   lix/ab/agreement (std_msgs/Float32MultiArray, labels in layout.dim:
            pixel_agreement, miou, running_pixel_agreement, running_miou), /diagnostics
mIoU treats the teacher as the reference; pixels that either side marks 255 are left out.
Hard frames (disagreement > hard_frame_threshold) go to a size-capped bag that lix-train reads.
"""

from __future__ import annotations

import contextlib
import sys
import threading

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from lix_ros.bag.hard_frames import HardFrameRecorder
from lix_ros.core.constants import DIAGNOSTICS
from lix_ros.core.metrics import confusion_matrix, empty_confusion, scores_from_confusion
from lix_ros.core.pairing import ExactTimePairer
from lix_ros.data.classes import IGNORE_ID, NUM_CLASSES
from lix_ros.nodes.common import OUTPUT_QOS, diagnostic_array, input_qos
from lix_ros.nodes.managed import ManagedNode
from lix_ros.nodes.params import COMPARE

AGREEMENT_FIELDS = ("pixel_agreement", "miou", "running_pixel_agreement", "running_miou")


def mask_array(msg: Image) -> np.ndarray:
    if msg.encoding != "mono8" or msg.step < msg.width or len(msg.data) < msg.height * msg.step:
        raise ValueError(f"expected a mono8 mask, got {msg.encoding} {msg.width}x{msg.height} step {msg.step}")
    return np.frombuffer(memoryview(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width]


def agreement(student: np.ndarray, teacher: np.ndarray, num_classes: int = NUM_CLASSES
              ) -> tuple[float, np.ndarray]:
    """(pixel agreement over pixels both label, confusion with the teacher as reference)."""
    valid = (student != IGNORE_ID) & (teacher != IGNORE_ID)
    pixel = float(np.mean(student[valid] == teacher[valid])) if valid.any() else float("nan")
    target = np.where(valid, teacher, IGNORE_ID)
    return pixel, confusion_matrix(target, student, num_classes)


class CompareNode(ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("compare_node", **kwargs)
        self.hard_frames = None  # before anything can fail, so destroy_node works after a start-up error
        self.lock = threading.Lock()
        self.p = self.declare_checked(COMPARE, self.on_parameter_change)
        self.pairer = ExactTimePairer(self.p["queue_size"])
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self.total_confusion = empty_confusion(NUM_CLASSES)
        self.agree_pixels = 0
        self.valid_pixels = 0
        self.frames = 0
        self.rejected = 0
        self.last = {}
        self.last_error = ""
        self.capture_error = ""
        self.capture_errors = 0

    def configure(self) -> list:
        if self.p["hard_frame_bag"]:
            self.hard_frames = HardFrameRecorder(self.p["hard_frame_bag"], self.p["hard_frame_threshold"],
                                                 int(self.p["hard_frame_max_mb"] * 1e6))
            self.get_logger().info(f"capturing hard frames (disagreement > {self.p['hard_frame_threshold']}) "
                                   f"to {self.hard_frames.path}")
        self.agreement_pub = self.create_lifecycle_publisher(Float32MultiArray, "lix/ab/agreement", OUTPUT_QOS)
        return [self.agreement_pub]

    def subscribe(self) -> list:
        subscriptions = [
            self.create_subscription(Image, "lix/semantic", lambda m: self._add(0, m), OUTPUT_QOS),
            self.create_subscription(Image, "lix/teacher/semantic", lambda m: self._add(1, m), OUTPUT_QOS)]
        if self.hard_frames is not None:
            qos = input_qos("best_effort", 5)
            geometry = ("depth", Image) if self.p["geometry_source"] == "depth" else ("points", PointCloud2)
            for role, msg_type in (("image", Image), geometry, ("camera_info", CameraInfo)):
                subscriptions.append(self.create_subscription(msg_type, role, lambda raw, r=role: self._input(r, raw),
                                                              qos, raw=True))
        return subscriptions

    def release(self) -> None:
        if self.hard_frames is not None:
            with self.lock:
                self.hard_frames.close()
                self.hard_frames = None

    def _input(self, role: str, raw: bytes) -> None:
        with self.lock:
            if self.hard_frames is None:  # capture stopped after a write failure
                return
            try:
                self.hard_frames.add_input(role, raw)
            except ValueError as error:
                self.get_logger().warning(f"hard-frame input {role}: {error}", throttle_duration_sec=5.0)

    def _add(self, stream: int, msg: Image) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
        with self.lock:
            pair = self.pairer.add(stream, key, msg)
        if pair is not None:
            self._compare(*pair)

    def _compare(self, student_msg: Image, teacher_msg: Image) -> None:
        try:
            student, teacher = mask_array(student_msg), mask_array(teacher_msg)
            if student.shape != teacher.shape:
                raise ValueError(f"student mask {student.shape[::-1]} and teacher mask {teacher.shape[::-1]} differ")
        except ValueError as error:
            self.rejected += 1
            self.last_error = str(error)
            self.get_logger().warning(f"cannot compare: {error}", throttle_duration_sec=5.0)
            return
        pixel, confusion = agreement(student, teacher)
        with self.lock:
            self.total_confusion += confusion
            diag = int(np.trace(confusion))
            self.agree_pixels += diag
            self.valid_pixels += int(confusion.sum())
            self.frames += 1
            running_pixel = self.agree_pixels / max(self.valid_pixels, 1)
            running_miou = scores_from_confusion(self.total_confusion).miou
        frame_miou = scores_from_confusion(confusion).miou
        self.last = dict(zip(AGREEMENT_FIELDS, (pixel, frame_miou, running_pixel, running_miou)))
        if self.hard_frames is not None and np.isfinite(pixel):
            self._capture(student_msg, teacher_msg, 1.0 - pixel)
        msg = Float32MultiArray()
        msg.layout.dim = [MultiArrayDimension(label=",".join(AGREEMENT_FIELDS), size=4, stride=4)]
        msg.data = [float(v) for v in self.last.values()]
        self.agreement_pub.publish(msg)

    def _capture(self, student_msg: Image, teacher_msg: Image, disagreement: float) -> None:
        """Offer the frame to the hard-frame bag; a write failure (disk full, folder removed) stops the
        capture with an ERROR in /diagnostics, never the node or the others in its process."""
        stamp = (student_msg.header.stamp.sec, student_msg.header.stamp.nanosec)
        with self.lock:
            try:
                self.hard_frames.offer(stamp, disagreement, serialize_message(student_msg),
                                       serialize_message(teacher_msg))
            except Exception as error:
                self.capture_error = f"hard-frame capture stopped: {type(error).__name__}: {error}"
                self.capture_errors += 1
                self.get_logger().error(self.capture_error)
                with contextlib.suppress(Exception):
                    self.hard_frames.close()
                self.hard_frames = None

    def on_parameter_change(self, name: str, value) -> None:
        """A runtime parameter was set (already checked by declare)."""
        if name == "diagnostics_period":
            self.set_diagnostics_period(value)
        if name == "hard_frame_threshold" and self.hard_frames is not None:
            self.hard_frames.threshold = value
        self.get_logger().info(f"parameter {name} set to {value!r}")

    def publish_diagnostics(self) -> None:
        values = {"frames_compared": self.frames, "unmatched_dropped": self.pairer.dropped,
                  "frames_rejected": self.rejected, **{k: float(v) for k, v in self.last.items()},
                  "last_error": self.last_error}
        if self.hard_frames is not None:
            values.update(hard_frames_captured=self.hard_frames.captured,
                          hard_frames_skipped_size_cap=self.hard_frames.skipped_for_size,
                          hard_frame_bag=str(self.hard_frames.path))
        if self.capture_errors:
            values.update(hard_frame_write_errors=self.capture_errors)
        message = self.capture_error or self.last_error or "ok"
        self.diagnostics_pub.publish(diagnostic_array(self, "compare_node", self.rejected == 0 or not self.last_error,
                                                      message, values, error=bool(self.capture_error)))


    def destroy_node(self) -> None:
        self.release()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    from lix_ros.nodes.runner import run_nodes

    return run_nodes([CompareNode], args)


if __name__ == "__main__":
    sys.exit(main())
