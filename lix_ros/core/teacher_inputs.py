"""Teacher inputs from sensor messages (ROS-free): camera image + camera_info + a depth image or a
PointCloud2 -> what the teacher model takes. The one conversion used by the teacher node (rclpy
messages), `lix-bag eval` and bag training data (rosbags messages): both carry the same fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lix_ros.core.image_codec import ImageError, decode_color, decode_depth
from lix_ros.core.pointcloud import cloud_to_sparse_depth


@dataclass
class TeacherInputs:
    rgb: np.ndarray  # H x W x 3 uint8
    K: np.ndarray  # 3 x 3 intrinsics
    depth: np.ndarray | None = None  # H x W metres, 0 = unknown
    lidar_depth: np.ndarray | None = None  # H x W sparse metres, 0 = no return
    invalid_depth_pixels: int = 0  # NaN / inf / negative depth pixels, treated as unknown


def camera_intrinsics(info, image_width: int, image_height: int) -> np.ndarray:
    """K from a CameraInfo, checked: positive focal lengths, and the image's size when the info has one."""
    K = np.array(info.k, np.float64).reshape(3, 3)
    if not np.isfinite(K).all() or not (K[0, 0] > 0 and K[1, 1] > 0):  # NaN fails every comparison
        raise ImageError(f"camera_info has no valid intrinsics (fx={K[0, 0]}, fy={K[1, 1]}, finite: "
                         f"{bool(np.isfinite(K).all())})")
    if info.width and info.height and (info.width, info.height) != (image_width, image_height):
        raise ImageError(f"camera_info is {info.width}x{info.height} but the image is {image_width}x{image_height}")
    return K


def teacher_inputs(image, info, depth=None, points=None, T_cam_from_lidar: np.ndarray | None = None,
                   rgb: np.ndarray | None = None) -> TeacherInputs:
    """Decode and check one paired frame; raises ImageError / PointCloudError naming what is wrong.
    `rgb`: the image already decoded by the caller (it is not decoded again)."""
    if rgb is None:
        rgb = decode_color(image.encoding, image.height, image.width, image.step, image.data, image.is_bigendian)
    out = TeacherInputs(rgb, camera_intrinsics(info, image.width, image.height))
    if depth is not None:
        out.depth, out.invalid_depth_pixels = decode_depth(depth.encoding, depth.height, depth.width, depth.step,
                                                           depth.data, depth.is_bigendian)
        if out.depth.shape != rgb.shape[:2]:
            raise ImageError(f"depth is {out.depth.shape[1]}x{out.depth.shape[0]} but the camera image is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}")
    if points is not None and T_cam_from_lidar is not None:
        out.lidar_depth = cloud_to_sparse_depth(points, T_cam_from_lidar, out.K, rgb.shape[:2])
    return out
