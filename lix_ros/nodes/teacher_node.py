"""teacher_node: camera + depth (or LiDAR) + camera_info -> /lix/teacher/semantic (mono8, camera header).

Subscribes  image (sensor_msgs/Image), camera_info (sensor_msgs/CameraInfo), and
            depth (sensor_msgs/Image 32FC1 metres or 16UC1 millimetres)   when geometry_source = depth
            points (sensor_msgs/PointCloud2 with x, y, z)                  when geometry_source = lidar
            paired by stamp (approximate time: pair_queue_size, pair_slop)
Publishes   lix/teacher/semantic (mono8), lix/teacher/processing_time (Float32 ms), /diagnostics
"""

from __future__ import annotations

import sys
import threading

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from lix_ros.core.checkpoint import CheckpointError
from lix_ros.core.default_checkpoints import default_checkpoint, resolve_checkpoint
from lix_ros.core.inference import ANY_GEOMETRY, Segmenter
from lix_ros.core.pairing import ApproximateTimePairer
from lix_ros.core.teacher_inputs import teacher_inputs
from lix_ros.nodes.common import input_qos, stamp_seconds
from lix_ros.nodes.inference_node import InferenceNode
from lix_ros.nodes.params import TEACHER


class TeacherNode(InferenceNode):
    def __init__(self, **kwargs):
        super().__init__("teacher_node", TEACHER, "lix/teacher/semantic", "lix/teacher/processing_time", **kwargs)
        self.invalid_depth_pixels = 0
        self.source = self.p["geometry_source"]
        self.pairer = ApproximateTimePairer(3, self.p["pair_queue_size"], self.p["pair_slop"], self._paired)
        self._pair_lock = threading.Lock()

    def load(self) -> None:
        checkpoint = str(resolve_checkpoint(self.p["checkpoint"] or default_checkpoint("teacher")))
        T = np.array(self.p["lidar_to_camera"], np.float64)
        if T.size != 16 or not np.allclose(T.reshape(4, 4)[3], [0, 0, 0, 1]):
            raise ValueError(f"parameter 'lidar_to_camera' must be 16 numbers of a 4x4 rigid transform, got {T}")
        self.T_cam_from_lidar = T.reshape(4, 4)
        segmenter = Segmenter(checkpoint, self.p["device"], (self.p["input_height"], self.p["input_width"]),
                              self.p["resize_policy"], expect_modality=ANY_GEOMETRY, backend=self.p["backend"],
                              providers=self.p["providers"], threads=self.p["threads"])
        if (segmenter.modality == "lidar") != (self.source == "lidar"):
            needed = "lidar" if segmenter.modality == "lidar" else "depth"
            raise CheckpointError(f"{checkpoint}: field 'modalities' ends in {segmenter.modality!r}, which needs "
                                  f"geometry_source {needed!r}, not {self.source!r}")
        self.segmenter = segmenter
        self.checkpoint_path = checkpoint

    def subscribe(self) -> list:
        qos = input_qos(self.p["reliability"], self.p["queue_depth"])
        geometry = (Image, "depth") if self.source == "depth" else (PointCloud2, "points")
        return [self.create_subscription(Image, "image", lambda m: self._add(0, m), qos),
                self.create_subscription(*geometry, lambda m: self._add(1, m), qos),
                self.create_subscription(CameraInfo, "camera_info", lambda m: self._add(2, m), qos)]

    def on_activated(self) -> None:
        self.get_logger().info(f"teacher {self.checkpoint_path} ({'+'.join(self.segmenter.checkpoint['modalities'])}) "
                               f"pairing image + {self.source} + camera_info")

    def _add(self, stream: int, msg) -> None:
        with self._pair_lock:
            self.pairer.add(stream, stamp_seconds(msg.header.stamp), msg)

    def _paired(self, image, geometry, info) -> None:
        self.slot.put((image, geometry, info))

    def infer(self, item):
        image, geometry, info = item
        inputs = teacher_inputs(image, info, depth=geometry if self.source == "depth" else None,
                                points=geometry if self.source == "lidar" else None,
                                T_cam_from_lidar=self.T_cam_from_lidar)
        if inputs.invalid_depth_pixels:
            self.invalid_depth_pixels += inputs.invalid_depth_pixels
            self.get_logger().warning(f"{inputs.invalid_depth_pixels} NaN/inf/negative depth pixels treated as "
                                      "unknown", throttle_duration_sec=self.p["warn_throttle"])
        prediction = self.segmenter.predict(inputs.rgb, depth=inputs.depth, lidar_depth=inputs.lidar_depth,
                                            K=inputs.K)
        return image.header, prediction, None

    def diagnostics_values(self) -> dict:
        return {"frames_paired": self.pairer.matched, "unpaired_dropped": self.pairer.dropped,
                "invalid_depth_pixels": self.invalid_depth_pixels}


def main(args: list[str] | None = None) -> int:
    from lix_ros.nodes.runner import run_nodes

    return run_nodes([TeacherNode], args)


if __name__ == "__main__":
    sys.exit(main())
