"""Real data layouts built here in their exact formats, and the synthetic -> Cityscapes round trip."""

import json

import cv2
import numpy as np
import pytest

from lix_ros.core.geometry import intrinsics_matrix, normals_from_depth
from lix_ros.data.augment import Augment, crop_sample, flip_sample, resize_sample
from lix_ros.data.cityscapes import CityscapesDataset, export_frames
from lix_ros.data.classes import IGNORE_ID, label_id_to_train_id_lut
from lix_ros.data.kitti import KittiSemanticDataset
from lix_ros.data.sample import DataError, Sample, encode_modality, sample_modality
from lix_ros.data.synthetic import LidarConfig, render_frame

BASELINE = 0.22


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    frames = [render_frame(s, 256, 128, LidarConfig(beams=16)) for s in (2_000_000, 2_000_001)]
    export_frames(frames, root, "test", baseline=BASELINE)
    return root, frames


def test_synthetic_round_trip_labels_exact_depth_within_quantisation(exported):
    root, frames = exported
    dataset = CityscapesDataset(root, "test")
    assert len(dataset) == 2
    for frame, sample in zip(frames, dataset):
        np.testing.assert_array_equal(sample.label, frame.label)
        np.testing.assert_array_equal(sample.rgb, frame.rgb)
        np.testing.assert_allclose(sample.K, frame.K, rtol=1e-12)
        fb = frame.K[0, 0] * BASELINE
        valid = frame.depth > 0
        assert np.array_equal(sample.depth > 0, valid)
        # Disparity is stored in 1/256 px steps: the recovered disparity is within half a step.
        disparity_error = np.abs(fb / sample.depth[valid] - fb / frame.depth[valid])
        assert disparity_error.max() <= 0.5 / 256 + 1e-4
        lidar = frame.lidar_depth > 0
        assert np.array_equal(sample.lidar_depth > 0, lidar)
        assert np.abs(sample.lidar_depth[lidar] - frame.lidar_depth[lidar]).max() <= 0.5 / 256 + 1e-6
        assert dataset.invalid_label_pixels == 0


def test_wrong_folder_names_expected_layout_and_what_was_found(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"leftImg8bit/<split>.*holds \['images'\]"):
        CityscapesDataset(tmp_path, "train")


def test_corrupt_image_names_the_file(exported, tmp_path):
    root, _ = exported
    dataset = CityscapesDataset(root, "test")
    broken = tmp_path / "leftImg8bit" / "test" / "c" / "c_000000_000000_leftImg8bit.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x89PNG not really")
    dataset.images = [broken]
    dataset.root = tmp_path
    with pytest.raises(DataError, match=r"c_000000_000000_leftImg8bit\.png"):
        dataset[0]


def test_out_of_table_label_ids_become_ignore_and_are_counted(tmp_path):
    city = "x"
    for folder, name, image in (
        ("leftImg8bit", "_leftImg8bit.png", np.zeros((4, 6, 3), np.uint8)),
        ("gtFine", "_gtFine_labelIds.png", np.array([[7, 8, 99, 200, 0, 26]] * 4, np.uint8)),
    ):
        path = tmp_path / folder / "val" / city / f"{city}_000001_000002{name}"
        path.parent.mkdir(parents=True)
        cv2.imwrite(str(path), image)
    camera = tmp_path / "camera" / "val" / city / f"{city}_000001_000002_camera.json"
    camera.parent.mkdir(parents=True)
    camera.write_text(json.dumps({"intrinsic": {"fx": 2, "fy": 2, "u0": 3, "v0": 2}, "extrinsic": {"baseline": 0.2}}))
    dataset = CityscapesDataset(tmp_path, "val")
    sample = dataset[0]
    assert sample.label[0].tolist() == [0, 1, IGNORE_ID, IGNORE_ID, IGNORE_ID, 13]
    assert dataset.invalid_label_pixels == 8  # 99 and 200 in 4 rows; 0 'unlabeled' is in the table
    assert sample.depth is None


def test_label_lut_matches_cityscapes_scripts():
    lut = label_id_to_train_id_lut()
    assert lut[7] == 0 and lut[26] == 13 and lut[33] == 18 and lut[23] == 10
    assert lut[0] == IGNORE_ID and lut[6] == IGNORE_ID and lut[34] == IGNORE_ID


def write_kitti(root, name="000000_10", points=None):
    split = root / "training"
    for d in ("image_2", "semantic", "velodyne", "calib"):
        (split / d).mkdir(parents=True, exist_ok=True)
    rgb = np.full((40, 60, 3), 90, np.uint8)
    cv2.imwrite(str(split / "image_2" / f"{name}.png"), rgb)
    cv2.imwrite(str(split / "semantic" / f"{name}.png"), np.full((40, 60), 26, np.uint8))
    # P2 = K [I | t] with t = (0.06 * fx, 0, 0): the colour camera sits 6 cm left of the reference camera.
    fx, cx, cy = 50.0, 30.0, 20.0
    p2 = [fx, 0, cx, 0.06 * fx, 0, fx, cy, 0, 0, 0, 1, 0]
    tr = [0, -1, 0, 0, 0, 0, -1, 0, 1, 0, 0, 0]  # velodyne (x fwd, y left, z up) -> camera
    lines = ["P0: " + " ".join(["0"] * 12), "P2: " + " ".join(map(str, p2)),
             "R0_rect: 1 0 0 0 1 0 0 0 1", "Tr_velo_to_cam: " + " ".join(map(str, tr))]
    (split / "calib" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    if points is None:
        points = np.array([[10.0, 0.06, 0.0, 0.5]], np.float32)
    points.astype(np.float32).tofile(split / "velodyne" / f"{name}.bin")
    return split


def test_kitti_velodyne_lands_on_known_pixel(tmp_path):
    write_kitti(tmp_path)
    sample = KittiSemanticDataset(tmp_path)[0]
    # Velodyne (10, 0.06, 0) -> reference camera (-0.06, 0, 10) -> colour camera (0, 0, 10) -> pixel (30, 20).
    assert sample.lidar_depth[20, 30] == pytest.approx(10.0)
    assert np.count_nonzero(sample.lidar_depth) == 1
    assert (sample.label == 13).all()
    assert sample.depth[20, 30] == pytest.approx(10.0)  # densified depth keeps the measurement
    assert sample_modality(sample, "lidar").shape == (40, 60, 2)


def test_kitti_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="expected <root>/<split>/image_2"):
        KittiSemanticDataset(tmp_path)
    split = write_kitti(tmp_path, points=np.zeros((1, 4)))
    np.zeros(5, np.float32).tofile(split / "velodyne" / "000000_10.bin")
    with pytest.raises(DataError, match="not a multiple of 4"):
        KittiSemanticDataset(tmp_path)[0]
    (split / "calib" / "000000_10.txt").write_text("P2: 1 2 3\n")
    with pytest.raises(DataError, match="needs P2 with 12 numbers"):
        KittiSemanticDataset(tmp_path)[0]


def _sample_with_label_coded_rgb(seed=0):
    frame = render_frame(seed, 128, 64)
    rgb = np.repeat(frame.label[..., None] * 10, 3, axis=2).astype(np.uint8)
    return Sample(rgb, frame.label, frame.K, frame.depth, frame.lidar_depth)


def test_augment_applies_one_transform_to_every_modality():
    sample = _sample_with_label_coded_rgb()
    out = Augment((48, 96), scale_range=(0.6, 1.6))(sample, np.random.default_rng(3))
    assert out.rgb.shape[:2] == out.label.shape == out.depth.shape == out.lidar_depth.shape == (48, 96)
    # Away from label edges the RGB still encodes the label it came with.
    eroded = cv2.erode((out.label != IGNORE_ID).astype(np.uint8), np.ones((3, 3))) > 0
    edges = cv2.morphologyEx(out.label, cv2.MORPH_GRADIENT, np.ones((3, 3))) > 0
    interior = eroded & ~edges
    assert interior.sum() > 500
    # (bilinear RGB may still blend across a one-pixel pole when downscaling: allow a few such pixels)
    assert np.mean(out.rgb[interior, 0] == out.label[interior] * 10) > 0.99
    # Nearest-neighbour for labels and LiDAR: no invented values.
    assert set(np.unique(out.label)) <= set(np.unique(sample.label)) | {IGNORE_ID}
    assert set(np.unique(out.lidar_depth)) <= set(np.unique(sample.lidar_depth))


def test_flip_and_resize_keep_geometry_consistent():
    frame = render_frame(7, 128, 64)
    sample = Sample(frame.rgb, frame.label, frame.K, frame.depth, frame.lidar_depth)
    flipped = flip_sample(sample)
    n = normals_from_depth(sample.depth, sample.K)
    nf = normals_from_depth(flipped.depth, flipped.K)
    # Mirroring negates the x component of every normal.
    np.testing.assert_allclose(nf[:, ::-1][5:-5, 5:-5, 0], -n[5:-5, 5:-5, 0], atol=1e-4)
    np.testing.assert_allclose(nf[:, ::-1][5:-5, 5:-5, 1:], n[5:-5, 5:-5, 1:], atol=1e-4)
    # Doubling the resolution doubles the focal length; normals of a plane stay the same.
    big = resize_sample(sample, (128, 256))
    assert big.K[0, 0] == pytest.approx(2 * sample.K[0, 0])
    road = (big.label == 0) & (cv2.erode((big.label == 0).astype(np.uint8), np.ones((5, 5))) > 0)
    nb = normals_from_depth(big.depth, big.K)[road]
    np.testing.assert_allclose(np.median(nb, axis=0), np.median(n[(sample.label == 0)], axis=0), atol=0.02)


def test_crop_pads_with_ignore_and_unknown_depth():
    sample = _sample_with_label_coded_rgb()
    out = crop_sample(sample, -4, -8, (72, 140))
    assert (out.label[:4] == IGNORE_ID).all() and (out.depth[:, :8] == 0).all()
    assert out.K[0, 2] == pytest.approx(sample.K[0, 2] + 8)


def test_modality_encodings():
    K = intrinsics_matrix(100, 100, 10, 10)
    depth = np.full((20, 20), 4.0, np.float32)
    depth[0, 0] = 0
    assert encode_modality("depth", K, depth)[1, 1, 0] == pytest.approx(0.25)
    assert encode_modality("depth", K, depth)[0, 0, 0] == 0
    assert encode_modality("disparity", K, depth, baseline=0.2)[1, 1, 0] == pytest.approx(100 * 0.2 / 4 / 64)
    assert encode_modality("normals", K, depth).shape == (20, 20, 3)
    with pytest.raises(DataError, match="LiDAR"):
        encode_modality("lidar", K, depth)
    with pytest.raises(ValueError, match="unknown modality"):
        encode_modality("thermal", K, depth)
