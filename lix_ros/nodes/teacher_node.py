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
from lix_ros.core.default_checkpoints import default_checkpoint
from lix_ros.core.image_codec import ImageError, decode_color, decode_depth
from lix_ros.core.inference import Segmenter
from lix_ros.core.pairing import ApproximateTimePairer
from lix_ros.core.pointcloud import cloud_to_sparse_depth
from lix_ros.nodes.common import input_qos, stamp_seconds
from lix_ros.nodes.inference_node import InferenceNode
from lix_ros.nodes.params import TEACHER


class TeacherNode(InferenceNode):
    def __init__(self, **kwargs):
        super().__init__("teacher_node", TEACHER, "lix/teacher/semantic", "lix/teacher/processing_time", **kwargs)
        self.invalid_depth_pixels = 0
        checkpoint = self.p["checkpoint"] or default_checkpoint("teacher")
        self.source = self.p["geometry_source"]
        modality = _checkpoint_modality(checkpoint)
        if (modality == "lidar") != (self.source == "lidar"):
            needed = "lidar" if modality == "lidar" else "depth"
            raise CheckpointError(f"{checkpoint}: field 'modalities' ends in {modality!r}, which needs "
                                  f"geometry_source {needed!r}, not {self.source!r}")
        self.segmenter = Segmenter(checkpoint, self.p["device"], (self.p["input_height"], self.p["input_width"]),
                                   self.p["resize_policy"], expect_modality=modality)
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
        self.start_worker()
        self.get_logger().info(f"teacher {checkpoint} ({'+'.join(self.segmenter.checkpoint['modalities'])}) "
                               f"pairing image + {self.source} + camera_info")

    def _add(self, stream: int, msg) -> None:
        with self._pair_lock:
            self.pairer.add(stream, stamp_seconds(msg.header.stamp), msg)

    def _paired(self, image, geometry, info) -> None:
        self.slot.put((image, geometry, info))

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

    def infer(self, item):
        image, geometry, info = item
        rgb, depth, lidar, K = self._inputs(image, geometry, info)
        return image.header, self.segmenter.predict(rgb, depth=depth, lidar_depth=lidar, K=K), None

    def diagnostics_values(self) -> dict:
        return {"frames_paired": self.pairer.matched, "unpaired_dropped": self.pairer.dropped,
                "invalid_depth_pixels": self.invalid_depth_pixels}


def _checkpoint_modality(checkpoint: str) -> str:
    from lix_ros.core.checkpoint import geometry_modality, read_checkpoint

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
