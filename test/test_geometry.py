import numpy as np
import pytest

from lix_ros.core.geometry import (
    backproject,
    densify_sparse_depth,
    depth_to_disparity,
    disparity_to_depth,
    intrinsics_matrix,
    normals_from_depth,
    project_points_to_depth,
)

K = intrinsics_matrix(200.0, 200.0, 80.0, 60.0)


def plane_depth(normal, offset, size=(120, 160)):
    """Depth image of the plane n . X = offset seen by camera K."""
    h, w = size
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    with np.errstate(divide="ignore"):
        return (offset / (rays @ np.asarray(normal, float))).astype(np.float32)


def test_disparity_round_trip_and_invalid():
    depth = np.array([[1.0, 10.0, 0.0, np.nan, -3.0]], np.float32)
    disparity = depth_to_disparity(depth, 500.0, 0.2)
    np.testing.assert_allclose(disparity[0, :2], [100.0, 10.0])
    assert (disparity[0, 2:] == 0).all()
    np.testing.assert_allclose(disparity_to_depth(disparity, 500.0, 0.2)[0, :2], [1.0, 10.0], rtol=1e-6)
    assert (disparity_to_depth(disparity, 500.0, 0.2)[0, 2:] == 0).all()


@pytest.mark.parametrize("normal", [(0.0, 0.0, -1.0), (0.0, -1.0, 0.0), (0.3, -0.8, -0.52)])
def test_plane_has_constant_normals(normal):
    normal = np.array(normal) / np.linalg.norm(normal)
    # Plane n . X = -d with the camera on the side the normal points to.
    depth = plane_depth(normal, -5.0)
    valid_region = depth > 0
    depth = np.where(valid_region, depth, 0)
    normals = normals_from_depth(depth, K)
    inner = normals[2:-2, 2:-2][np.linalg.norm(normals[2:-2, 2:-2], axis=-1) > 0]
    assert len(inner) > 1000
    np.testing.assert_allclose(inner, np.broadcast_to(normal, inner.shape), atol=1e-3)


def test_normals_zero_where_depth_missing():
    depth = plane_depth((0, 0, -1), -5.0)
    depth[50:60, 70:90] = 0
    normals = normals_from_depth(depth, K)
    assert np.all(normals[50:60, 70:90] == 0)
    assert np.all(normals[0] == 0) and np.all(normals[:, -1] == 0)  # borders have no central difference


def test_backproject_inverts_projection():
    depth = np.full((120, 160), 4.0, np.float32)
    points = backproject(depth, K)
    assert points[60, 80].tolist() == pytest.approx([0.0, 0.0, 4.0])
    assert points[60, 100, 0] == pytest.approx(20 * 4.0 / 200.0)


def test_point_lands_on_known_pixel_with_known_depth():
    # LiDAR frame x forward, y left, z up; camera 0.5 m below and 1 m behind the LiDAR.
    T_cam_from_lidar = np.array([[0, -1, 0, 0.0], [0, 0, -1, 0.5], [1, 0, 0, 1.0], [0, 0, 0, 1]], float)
    # A camera-frame point (1, 0.5, 10) -> pixel (80 + 200*1/10, 60 + 200*0.5/10) = (100, 70).
    cam = np.array([1.0, 0.5, 10.0])
    lidar_point = np.linalg.inv(T_cam_from_lidar) @ np.append(cam, 1.0)
    depth = project_points_to_depth(lidar_point[None, :3], T_cam_from_lidar, K, (120, 160))
    assert depth[70, 100] == pytest.approx(10.0)
    assert np.count_nonzero(depth) == 1


def test_z_buffer_keeps_nearest_and_drops_points_behind_or_outside():
    T = np.eye(4)
    points = np.array([[0.0, 0.0, 10.0], [0.0, 0.0, 5.0], [0.0, 0.0, 7.0],  # same pixel
                       [0.0, 0.0, -5.0],  # behind the camera
                       [100.0, 0.0, 1.0],  # outside the image
                       [np.nan, 0, 3.0]])
    depth = project_points_to_depth(points, T, K, (120, 160))
    assert depth[60, 80] == pytest.approx(5.0)
    assert np.count_nonzero(depth) == 1


def test_projection_rejects_bad_shape():
    with pytest.raises(ValueError, match="Nx3"):
        project_points_to_depth(np.zeros((4, 2)), np.eye(4), K, (10, 10))


def test_densify_fills_holes_with_foreground_and_keeps_measurements():
    sparse = np.zeros((20, 20), np.float32)
    sparse[10, 10] = 2.0
    sparse[10, 12] = 20.0
    dense = densify_sparse_depth(sparse, kernel=3, iterations=1)
    assert dense[10, 10] == 2.0 and dense[10, 12] == 20.0  # measured pixels unchanged
    assert dense[10, 11] == pytest.approx(2.0)  # between a near and a far return: the near one
    assert dense[0, 0] == 0.0  # far from any return stays unknown
