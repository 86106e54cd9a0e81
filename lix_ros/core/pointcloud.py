"""sensor_msgs/PointCloud2 <-> numpy for x, y, z (+ intensity) float32 fields, without sensor_msgs_py."""

from __future__ import annotations

import numpy as np

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32
_DATATYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


class PointCloudError(ValueError):
    pass


def read_xyz(fields, height: int, width: int, point_step: int, row_step: int, data, is_bigendian: bool = False
             ) -> np.ndarray:
    """N x 3 float32 finite points from a PointCloud2's fields (each with name, offset, datatype, count)."""
    by_name = {f.name: f for f in fields}
    missing = [n for n in ("x", "y", "z") if n not in by_name]
    if missing:
        raise PointCloudError(f"PointCloud2 has no field(s) {missing}; fields are {sorted(by_name)}")
    count = height * width
    if count == 0:
        raise PointCloudError("empty PointCloud2 (0 points)")
    if point_step <= 0 or row_step < width * point_step:
        raise PointCloudError(f"malformed PointCloud2: point_step {point_step}, row_step {row_step}, width {width}")
    if len(data) < height * row_step:
        raise PointCloudError(f"PointCloud2 data holds {len(data)} bytes, expected height*row_step = "
                              f"{height * row_step}")
    dtype_fields = {}
    for name in ("x", "y", "z"):
        field = by_name[name]
        if field.datatype not in _DATATYPES:
            raise PointCloudError(f"PointCloud2 field {name!r} has unknown datatype {field.datatype}")
        size = np.dtype(_DATATYPES[field.datatype]).itemsize
        if field.offset + size > point_step:
            raise PointCloudError(f"PointCloud2 field {name!r} at offset {field.offset} overruns point_step "
                                  f"{point_step}")
        dtype_fields[name] = (np.dtype(_DATATYPES[field.datatype]).newbyteorder(">" if is_bigendian else "<"),
                              field.offset)
    raw = np.frombuffer(memoryview(data), np.uint8, count=height * row_step).reshape(height, row_step)
    raw = np.ascontiguousarray(raw[:, : width * point_step]).reshape(-1)
    structured = np.dtype({"names": list(dtype_fields), "formats": [v[0] for v in dtype_fields.values()],
                           "offsets": [v[1] for v in dtype_fields.values()], "itemsize": point_step})
    points = raw.view(structured)
    xyz = np.stack([points[n].astype(np.float32) for n in ("x", "y", "z")], axis=1)
    return xyz[np.all(np.isfinite(xyz), axis=1)]


def cloud_to_sparse_depth(cloud, T_cam_from_lidar: np.ndarray, K: np.ndarray, image_shape: tuple[int, int]
                          ) -> np.ndarray:
    """A PointCloud2 (an rclpy or a rosbags message: anything with its fields) -> the teacher's sparse
    depth image (H x W metres, 0 = no return), through the LiDAR-to-camera extrinsic and the intrinsics.
    The one conversion used by the teacher node, `lix-bag eval` and bag training data."""
    from lix_ros.core.geometry import project_points_to_depth

    xyz = read_xyz(cloud.fields, cloud.height, cloud.width, cloud.point_step, cloud.row_step, cloud.data,
                   cloud.is_bigendian)
    return project_points_to_depth(xyz, T_cam_from_lidar, K, image_shape)


def pack_xyzi(points: np.ndarray) -> tuple[list[tuple[str, int, int, int]], int, bytes]:
    """N x 4 float32 (x, y, z, intensity) -> (fields as (name, offset, datatype, count), point_step, data)."""
    points = np.ascontiguousarray(points, dtype="<f4")
    if points.ndim != 2 or points.shape[1] != 4:
        raise PointCloudError(f"expected N x 4 points, got {points.shape}")
    fields = [(name, 4 * i, FLOAT32, 1) for i, name in enumerate(("x", "y", "z", "intensity"))]
    return fields, 16, points.tobytes()
