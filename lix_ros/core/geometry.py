"""Camera geometry without ROS: depth <-> disparity, surface normals, LiDAR -> sparse depth.

Conventions: camera frame is x right, y down, z forward (optical frame, REP 103 `_optical`); pixel
centres sit at integer coordinates (OpenCV, ROS CameraInfo), so pixel (u, v) covers [u-0.5, u+0.5).
A depth of 0 means "no measurement" everywhere (sky, LiDAR gaps, invalid disparity).
"""

from __future__ import annotations

import cv2
import numpy as np


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)


def _focal_baseline_over(values: np.ndarray, focal_px: float, baseline_m: float) -> np.ndarray:
    """f*b/x where x is a valid (finite, > 0) value, else 0: the same map takes depth to disparity and back."""
    values = np.asarray(values, np.float32)
    valid = np.isfinite(values) & (values > 0)
    out = np.zeros_like(values)
    out[valid] = focal_px * baseline_m / values[valid]
    return out


def depth_to_disparity(depth: np.ndarray, focal_px: float, baseline_m: float) -> np.ndarray:
    """Disparity in pixels d = f*b/z; 0 where depth is 0, negative or not finite."""
    return _focal_baseline_over(depth, focal_px, baseline_m)


def disparity_to_depth(disparity: np.ndarray, focal_px: float, baseline_m: float) -> np.ndarray:
    """Depth in metres z = f*b/d; 0 where disparity is 0, negative or not finite."""
    return _focal_baseline_over(disparity, focal_px, baseline_m)


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """HxW depth -> HxWx3 points in the camera frame (zeros where depth is 0)."""
    h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = (np.arange(w, dtype=np.float32) - cx) / fx
    v = (np.arange(h, dtype=np.float32) - cy) / fy
    z = depth.astype(np.float32)
    return np.stack([z * u[None, :], z * v[:, None], z], axis=-1)


def normals_from_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Unit surface normals (HxWx3, camera frame, facing the camera) from depth, by central differences.

    Pixels with no valid depth, or a neighbour without one, get a zero normal.
    """
    depth = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    depth = np.where(depth > 0, depth, 0.0).astype(np.float32)
    points = backproject(depth, K)
    du = np.zeros_like(points)
    dv = np.zeros_like(points)
    du[:, 1:-1] = points[:, 2:] - points[:, :-2]
    dv[1:-1, :] = points[2:, :] - points[:-2, :]
    normal = np.cross(du, dv)
    valid = depth > 0
    neighbours_valid = np.zeros_like(valid)
    neighbours_valid[1:-1, 1:-1] = (
        valid[1:-1, 2:] & valid[1:-1, :-2] & valid[2:, 1:-1] & valid[:-2, 1:-1] & valid[1:-1, 1:-1]
    )
    norm = np.linalg.norm(normal, axis=-1, keepdims=True)
    ok = neighbours_valid & (norm[..., 0] > 1e-12)
    normal = np.where(ok[..., None], normal / np.maximum(norm, 1e-12), 0.0)
    # Orient towards the camera: the normal and the viewing ray point in opposite directions.
    facing_away = np.sum(normal * points, axis=-1) > 0
    normal[facing_away] *= -1.0
    return normal.astype(np.float32)


def transform_points(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to Nx3 points."""
    points = np.asarray(points, np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def project_points_to_depth(
    points: np.ndarray,
    T_cam_from_lidar: np.ndarray,
    K: np.ndarray,
    image_size: tuple[int, int],
    min_depth: float = 0.1,
) -> np.ndarray:
    """Project LiDAR points into a sparse depth image (HxW float32, 0 = no return), z-buffered.

    points: Nx3 (or NxC, first three columns used) in the LiDAR frame; T_cam_from_lidar maps LiDAR
    coordinates into the camera optical frame; image_size is (height, width). Where several points fall
    on one pixel the nearest wins.
    """
    h, w = image_size
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be Nx3 (or NxC with C>=3), got shape {points.shape}")
    depth = np.zeros((h, w), np.float32)
    if len(points) == 0:
        return depth
    cam = transform_points(points[:, :3], T_cam_from_lidar)
    finite = np.all(np.isfinite(cam), axis=1)
    cam = cam[finite & (cam[:, 2] > min_depth)]
    uvw = cam @ np.asarray(K, np.float64).T
    u = np.floor(uvw[:, 0] / uvw[:, 2] + 0.5).astype(np.int64)
    v = np.floor(uvw[:, 1] / uvw[:, 2] + 0.5).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v, z = u[inside], v[inside], cam[inside, 2]
    if len(z) == 0:
        return depth
    pixel = v * w + u
    order = np.lexsort((z, pixel))  # by pixel, nearest first within a pixel
    pixel, z = pixel[order], z[order]
    first = np.ones(len(pixel), bool)
    first[1:] = pixel[1:] != pixel[:-1]
    depth.reshape(-1)[pixel[first]] = z[first]
    return depth


def densify_sparse_depth(sparse: np.ndarray, kernel: int = 5, iterations: int = 2) -> np.ndarray:
    """Fill holes of a sparse depth image from nearby returns, keeping the nearest (foreground) one.

    Dilation of inverse depth (a max filter) takes the closest neighbour, so edges of near objects are
    not smeared into the background. Measured pixels are never changed.
    """
    sparse = np.asarray(sparse, np.float32)
    inverse = np.where(sparse > 0, 1.0 / np.maximum(sparse, 1e-6), 0.0).astype(np.float32)
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    filled = inverse.copy()
    for _ in range(iterations):
        grown = cv2.dilate(filled, element)
        filled = np.where(filled > 0, filled, grown)
    return np.where(filled > 0, 1.0 / np.maximum(filled, 1e-6), 0.0).astype(np.float32)
