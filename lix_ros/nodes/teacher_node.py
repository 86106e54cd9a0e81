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
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32

from lix_ros.checkpoint import CheckpointError
from lix_ros.constants import DIAGNOSTICS
from lix_ros.frame_slot import LatestFrameSlot
from lix_ros.image_codec import ImageError, decode_color, decode_depth
from lix_ros.inference import Segmenter
from lix_ros.nodes.common import OUTPUT_QOS, diagnostic_array, input_qos, mono8_msg, stamp_seconds
from lix_ros.nodes.params import TEACHER, declare
from lix_ros.nodes_defaults import default_checkpoint
from lix_ros.pairing import ApproximateTimePairer
from lix_ros.pointcloud import PointCloudError, cloud_to_sparse_depth
from lix_ros.stats import InferenceCounters


class TeacherNode(Node):
    def __init__(self, **kwargs):
        super().__init__("teacher_node", **kwargs)
        self.p = declare(self, TEACHER)
        checkpoint = self.p["checkpoint"] or default_checkpoint("teacher")
        self.source = self.p["geometry_source"]
        modality = _checkpoint_modality(checkpoint)
        if (modality == "lidar") != (self.source == "lidar"):
            needed = "lidar" if modality == "lidar" else "depth"
            raise CheckpointError(f"{checkpoint}: field 'modalities' ends in {modality!r}, which needs "
                                  f"geometry_source {needed!r}, not {self.source!r}")
        self.segmenter = Segmenter(checkpoint, self.p["device"], (self.p["input_height"], self.p["input_width"]),
                                   self.p["resize_policy"], expect_modality=modality, threads=self.p["threads"])
        T = np.array(self.p["lidar_to_camera"], np.float64)
        if T.size != 16 or not np.allclose(T.reshape(4, 4)[3], [0, 0, 0, 1]):
            raise ValueError(f"parameter 'lidar_to_camera' must be 16 numbers of a 4x4 rigid transform, got {T}")
        self.T_cam_from_lidar = T.reshape(4, 4)
        qos = input_qos(self.p["reliability"], self.p["queue_depth"])
        self.pairer = ApproximateTimePairer(3, self.p["pair_queue_size"], self.p["pair_slop"], self._paired)
        self._pair_lock = threading.Lock()
        self.create_subscription(Image, "image", lambda m: self._add(0, m), qos)
        if self.source == "depth":
            self.create_subscription(Image, "depth", lambda m: self._add(1, m), qos)
        else:
            self.create_subscription(PointCloud2, "points", lambda m: self._add(1, m), qos)
        self.create_subscription(CameraInfo, "camera_info", lambda m: self._add(2, m), qos)
        self.semantic_pub = self.create_publisher(Image, "lix/teacher/semantic", OUTPUT_QOS)
        self.time_pub = self.create_publisher(Float32, "lix/teacher/processing_time", OUTPUT_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self.slot = LatestFrameSlot()
        self.counters = InferenceCounters()
        self.invalid_depth_pixels = 0
        self._running = True
        self.worker = threading.Thread(target=self._work, name="lix_teacher_worker", daemon=True)
        self.worker.start()
        self.create_timer(self.p["diagnostics_period"], self.publish_diagnostics)
        self.get_logger().info(f"teacher {checkpoint} ({'+'.join(self.segmenter.checkpoint['modalities'])}) "
                               f"pairing image + {self.source} + camera_info")

    def _add(self, stream: int, msg) -> None:
        with self._pair_lock:
            self.pairer.add(stream, stamp_seconds(msg.header.stamp), msg)

    def _paired(self, image, geometry, info) -> None:
        self.slot.put((image, geometry, info))

    def _reject(self, error: Exception) -> None:
        self.counters.reject(error)
        self.get_logger().warning(f"rejected frame: {error}", throttle_duration_sec=self.p["warn_throttle"])

    def _inputs(self, image, geometry, info):
        rgb = decode_color(image.encoding, image.height, image.width, image.step, image.data, image.is_bigendian)
        K = np.array(info.k, np.float64).reshape(3, 3)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ImageError(f"camera_info has no valid intrinsics (fx={K[0, 0]}, fy={K[1, 1]})")
        if info.width and info.height and (info.width, info.height) != (image.width, image.height):
            raise ImageError(f"camera_info is {info.width}x{info.height} but the image is "
                             f"{image.width}x{image.height}")
        if self.source == "depth":
            depth, invalid = decode_depth(geometry.encoding, geometry.height, geometry.width, geometry.step,
                                          geometry.data, geometry.is_bigendian)
            if depth.shape != rgb.shape[:2]:
                raise ImageError(f"depth is {depth.shape[1]}x{depth.shape[0]} but the camera image is "
                                 f"{rgb.shape[1]}x{rgb.shape[0]}")
            if invalid:
                self.invalid_depth_pixels += invalid
                self.get_logger().warning(f"{invalid} NaN/inf/negative depth pixels treated as unknown",
                                          throttle_duration_sec=self.p["warn_throttle"])
            return rgb, depth, None, K
        return rgb, None, cloud_to_sparse_depth(geometry, self.T_cam_from_lidar, K, rgb.shape[:2]), K

    def _work(self) -> None:
        while self._running:
            item = self.slot.take(timeout=0.1)
            if item is None:
                continue
            image, geometry, info = item
            try:
                rgb, depth, lidar, K = self._inputs(image, geometry, info)
                prediction = self.segmenter.predict(rgb, depth=depth, lidar_depth=lidar, K=K)
            except (ImageError, PointCloudError) as error:
                self._reject(error)
                continue
            except Exception as error:  # keep serving
                self._reject(RuntimeError(f"inference failed: {error}"))
                continue
            self.semantic_pub.publish(mono8_msg(image.header, prediction.ids))
            now = self.get_clock().now().nanoseconds * 1e-9
            self.counters.record(prediction.seconds, now - stamp_seconds(image.header.stamp))
            self.time_pub.publish(Float32(data=float(prediction.seconds * 1000)))

    def publish_diagnostics(self) -> None:
        ok, message, values = self.counters.report()
        values = {"frames_paired": self.pairer.matched, "unpaired_dropped": self.pairer.dropped,
                  "frames_dropped_stale": self.slot.dropped, "invalid_depth_pixels": self.invalid_depth_pixels,
                  **values}
        self.diagnostics_pub.publish(diagnostic_array(self, "teacher_node", ok, message, values))

    def destroy_node(self) -> None:
        self._running = False
        self.slot.close()
        self.worker.join(timeout=2)
        super().destroy_node()


def _checkpoint_modality(checkpoint: str) -> str:
    from lix_ros.checkpoint import geometry_modality, read_checkpoint

    ckpt = read_checkpoint(checkpoint)
    modality = geometry_modality(ckpt)
    if modality is None:
        raise CheckpointError(f"{checkpoint}: field 'modalities' is {ckpt['modalities']}; the teacher node needs an "
                              "RGB + X checkpoint")
    return modality


def main(args: list[str] | None = None) -> int:
    from lix_ros.nodes.runner import run_nodes

    return run_nodes([TeacherNode], args)


if __name__ == "__main__":
    sys.exit(main())
