import numpy as np
import pytest

from lix_ros.core.geometry import backproject
from lix_ros.data.classes import TRAIN_ID
from lix_ros.data.synthetic import FAMILIES, LidarConfig, family_of, generate_scene, render, render_frame, split_seeds

ROAD, SIDEWALK, SKY = TRAIN_ID["road"], TRAIN_ID["sidewalk"], TRAIN_ID["sky"]


@pytest.fixture(scope="module")
def frame():
    return render_frame(11, 320, 160)


def test_same_seed_identical_arrays_other_seed_differs(frame):
    again = render_frame(11, 320, 160)
    for name in ("rgb", "depth", "label", "lidar_points", "lidar_depth", "K", "T_cam_from_lidar"):
        np.testing.assert_array_equal(getattr(frame, name), getattr(again, name), err_msg=name)
    other = render_frame(12, 320, 160)
    assert not np.array_equal(frame.rgb, other.rgb)


def test_outputs_shapes_and_types(frame):
    assert frame.rgb.shape == (160, 320, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (160, 320) and frame.depth.dtype == np.float32
    assert frame.label.dtype == np.uint8 and set(np.unique(frame.label)) <= set(range(19))
    assert frame.lidar_points.shape[1] == 4 and len(frame.lidar_points) > 1000
    assert frame.T_cam_from_lidar.shape == (4, 4)


def test_sky_has_no_depth_and_surfaces_have_depth(frame):
    sky = frame.label == SKY
    assert sky.any()
    assert np.all(frame.depth[sky] == 0)
    assert np.all(frame.depth[~sky] > 0)


def test_families_by_seed_range():
    assert family_of(0).name == "train" and family_of(999_999).name == "train"
    assert family_of(1_000_000).name == "val"
    assert family_of(2_500_000).name == "test"
    with pytest.raises(ValueError, match="outside"):
        family_of(3_000_000)
    assert split_seeds("test", 2) == [2_000_000, 2_000_001]
    assert FAMILIES["test"].fog_probability > FAMILIES["train"].fog_probability


def test_lidar_agrees_with_camera_depth_through_the_extrinsics():
    frame = render_frame(5, 320, 160, LidarConfig(range_noise_m=0.0, dropout=0.0))
    both = (frame.lidar_depth > 0) & (frame.depth > 0)
    assert both.sum() > 500
    relative = np.abs(frame.lidar_depth[both] - frame.depth[both]) / frame.depth[both]
    # Parallax between the two mounts makes a few edge pixels disagree, the rest agree closely.
    assert np.median(relative) < 0.01
    assert np.mean(relative < 0.05) > 0.9


def test_sidewalk_is_raised_above_the_road():
    scene = generate_scene(21)
    frame = render(scene, 320, 160)
    R_wc, position = scene.pose()
    world = backproject(frame.depth, frame.K).reshape(-1, 3) @ R_wc.T + position
    height = world[:, 1].reshape(frame.depth.shape)
    road = frame.label == ROAD
    walk = (frame.label == SIDEWALK) & (frame.depth < 30)
    assert road.sum() > 100 and walk.sum() > 100
    assert np.abs(np.median(height[road])) < 0.01
    assert np.median(height[walk]) > 0.07


def test_geometry_matters_road_and_sidewalk_share_colour_often():
    """In many scenes road and sidewalk look alike in RGB but sit at different heights."""
    ambiguous = 0
    seeds = split_seeds("train", 16)
    for seed in seeds:
        frame = render_frame(seed, 256, 128)
        road, walk = frame.label == ROAD, frame.label == SIDEWALK
        if road.sum() < 50 or walk.sum() < 50:
            continue
        colour_gap = np.abs(frame.rgb[road].mean(0) - frame.rgb[walk].mean(0)).max()
        if colour_gap < 12:
            ambiguous += 1
    assert ambiguous >= len(seeds) // 4


def test_drive_moves_the_camera_forward():
    scene = generate_scene(3)
    near = render(scene, 160, 80, z=0.0)
    ahead = render(scene, 160, 80, z=5.0)
    assert not np.array_equal(near.depth, ahead.depth)
