"""KITTI semantic segmentation layout with velodyne scans and calibration.

  <root>/<split>/image_2/<name>.png     RGB (split: training or testing)
  <root>/<split>/semantic/<name>.png    Cityscapes label ids (mapped to train ids)
  <root>/<split>/velodyne/<name>.bin    float32 x, y, z, reflectance (velodyne frame)
  <root>/<split>/calib/<name>.txt       object-benchmark calib: P2, R0_rect, Tr_velo_to_cam

The velodyne points are projected with x_img = P2 * R0_rect * Tr_velo_to_cam * X into a sparse depth image;
the depth modalities use its densification (KITTI semantics has no stereo disparity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lix_ros.core.geometry import densify_sparse_depth, project_points_to_depth
from lix_ros.data.classes import label_ids_to_train_ids
from lix_ros.data.io import read_gray, read_rgb
from lix_ros.data.sample import DataError, Sample

EXPECTED_LAYOUT = "<root>/<split>/image_2/<name>.png (+ semantic/, velodyne/<name>.bin, calib/<name>.txt)"


def read_calib(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a KITTI calib file -> (K 3x3 of the rectified left colour camera, T_cam_from_velo 4x4)."""
    if not path.is_file():
        raise DataError(f"missing KITTI calib file {path}")
    values: dict[str, np.ndarray] = {}
    for line_number, line in enumerate(path.read_text().splitlines(), 1):
        if ":" not in line:
            continue
        key, _, rest = line.partition(":")
        try:
            values[key.strip()] = np.array([float(x) for x in rest.split()], np.float64)
        except ValueError:
            raise DataError(f"malformed number in {path} line {line_number} ({key.strip()})") from None
    for key, count in (("P2", 12), ("R0_rect", 9), ("Tr_velo_to_cam", 12)):
        if key not in values or values[key].size != count:
            raise DataError(f"KITTI calib file {path} needs {key} with {count} numbers")
    P2 = values["P2"].reshape(3, 4)
    R0 = np.eye(4)
    R0[:3, :3] = values["R0_rect"].reshape(3, 3)
    Tr = np.eye(4)
    Tr[:3, :] = values["Tr_velo_to_cam"].reshape(3, 4)
    K = P2[:, :3].copy()
    # P2 = K [I | t]: the colour camera is offset from the reference camera along x.
    offset = np.eye(4)
    offset[:3, 3] = np.linalg.solve(K, P2[:, 3])
    return K, offset @ R0 @ Tr


def read_velodyne(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing velodyne scan {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise DataError(f"velodyne scan {path} has {raw.size} floats, not a multiple of 4 (x, y, z, r)")
    return raw.reshape(-1, 4)


class KittiSemanticDataset:
    def __init__(self, root: str | Path, split: str = "training", require_lidar: bool = False):
        self.root = Path(root)
        self.split_dir = self.root / split
        image_dir = self.split_dir / "image_2"
        if not image_dir.is_dir():
            found = sorted(p.name for p in self.root.iterdir())[:8] if self.root.is_dir() else "nothing (missing)"
            raise DataError(f"not a KITTI semantic folder: expected {EXPECTED_LAYOUT}; {self.root} holds {found}")
        self.images = sorted(image_dir.glob("*.png"))
        if not self.images:
            raise DataError(f"no images in {image_dir}: expected {EXPECTED_LAYOUT}")
        self.require_lidar = require_lidar
        self.invalid_label_pixels = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        image_path = self.images[index]
        name = image_path.stem
        rgb = read_rgb(image_path)
        label = None
        label_path = self.split_dir / "semantic" / image_path.name
        if label_path.is_file():
            label, invalid = label_ids_to_train_ids(read_gray(label_path, np.uint8))
            self.invalid_label_pixels += invalid
            if label.shape != rgb.shape[:2]:
                raise DataError(f"{label_path} is {label.shape[::-1]} but its image is {rgb.shape[1::-1]}")
        calib_path = self.split_dir / "calib" / f"{name}.txt"
        velodyne_path = self.split_dir / "velodyne" / f"{name}.bin"
        lidar_depth = None
        K = None
        if calib_path.is_file():
            K, T_cam_from_velo = read_calib(calib_path)
            if velodyne_path.is_file():
                points = read_velodyne(velodyne_path)
                lidar_depth = project_points_to_depth(points, T_cam_from_velo, K, rgb.shape[:2])
        if lidar_depth is None and self.require_lidar:
            raise DataError(f"the lidar modality needs {velodyne_path} and {calib_path}")
        if K is None:
            raise DataError(f"missing KITTI calib file {calib_path} (needed for intrinsics)")
        # KITTI has no dense depth: the depth-based modalities use the densified scan.
        depth = densify_sparse_depth(lidar_depth, kernel=7, iterations=3) if lidar_depth is not None else None
        return Sample(rgb, label, K, depth, lidar_depth, name=name)
