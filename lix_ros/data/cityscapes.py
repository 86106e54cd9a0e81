"""Cityscapes layout: loader (also for synthetic exports) and the synthetic -> Cityscapes exporter.

Layout (per split and city):
  leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png   8-bit RGB
  gtFine/<split>/<city>/<...>_gtFine_labelIds.png                   label ids (mapped to train ids)
  disparity/<split>/<city>/<...>_disparity.png                      uint16, d = (p - 1) / 256, p = 0 invalid
  camera/<split>/<city>/<...>_camera.json                           intrinsic fx, fy, u0, v0; extrinsic baseline
  lidarDepth/<split>/<city>/<...>_lidarDepth.png   (lix_ros extension) uint16 sparse depth, z = p / 256 m
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lix_ros.core.constants import STEREO_BASELINE_M
from lix_ros.core.geometry import depth_to_disparity, disparity_to_depth, intrinsics_matrix
from lix_ros.data.classes import label_ids_to_train_ids, train_id_to_label_id_lut
from lix_ros.data.io import read_gray, read_rgb, write_image
from lix_ros.data.sample import DataError, Sample
from lix_ros.data.synthetic import Frame

IMAGE_SUFFIX = "_leftImg8bit.png"
EXPECTED_LAYOUT = "<root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png"


def _describe(path: Path) -> str:
    if not path.exists():
        return f"{path} does not exist"
    entries = sorted(p.name for p in path.iterdir())[:8]
    return f"{path} holds {entries or 'nothing'}"


class CityscapesDataset:
    """Frames of one split of a Cityscapes-layout folder, with depth from disparity when present.

    `invalid_label_pixels` counts label ids that are not in the Cityscapes table (they become 255).
    """

    def __init__(self, root: str | Path, split: str = "train", require_depth: bool = False,
                 require_lidar: bool = False):
        self.root = Path(root)
        self.split = split
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            where = self.root / "leftImg8bit" if (self.root / "leftImg8bit").is_dir() else self.root
            raise DataError(f"not a Cityscapes folder for split {split!r}: expected {EXPECTED_LAYOUT}; "
                            f"{_describe(where)}")
        self.images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not self.images:
            raise DataError(f"no images in {image_dir}: expected {EXPECTED_LAYOUT}; {_describe(image_dir)}")
        self.require_depth = require_depth
        self.require_lidar = require_lidar
        self.invalid_label_pixels = 0

    def __len__(self) -> int:
        return len(self.images)

    def _companion(self, image: Path, folder: str, suffix: str) -> Path:
        stem = image.name[: -len(IMAGE_SUFFIX)]
        return self.root / folder / self.split / image.parent.name / f"{stem}{suffix}"

    def __getitem__(self, index: int) -> Sample:
        image_path = self.images[index]
        rgb = read_rgb(image_path)
        label = None
        label_path = self._companion(image_path, "gtFine", "_gtFine_labelIds.png")
        if label_path.is_file():
            label_ids = read_gray(label_path, np.uint8)
            label, invalid = label_ids_to_train_ids(label_ids)
            self.invalid_label_pixels += invalid
            _check_size(label, rgb, label_path)

        camera_path = self._companion(image_path, "camera", "_camera.json")
        K, baseline = _read_camera(camera_path, rgb.shape[:2])
        depth = None
        disparity_path = self._companion(image_path, "disparity", "_disparity.png")
        if disparity_path.is_file():
            raw = read_gray(disparity_path, np.uint16).astype(np.float32)
            _check_size(raw, rgb, disparity_path)
            disparity = np.where(raw > 0, (raw - 1.0) / 256.0, 0.0)
            depth = disparity_to_depth(disparity, float(K[0, 0]), baseline)
        elif self.require_depth:
            raise DataError(f"missing disparity file {disparity_path} (a depth modality was requested)")
        lidar_depth = None
        lidar_path = self._companion(image_path, "lidarDepth", "_lidarDepth.png")
        if lidar_path.is_file():
            lidar_depth = read_gray(lidar_path, np.uint16).astype(np.float32) / 256.0
            _check_size(lidar_depth, rgb, lidar_path)
        elif self.require_lidar:
            raise DataError(f"missing LiDAR depth file {lidar_path} (the lidar modality was requested)")
        return Sample(rgb, label, K, depth, lidar_depth, baseline, image_path.name[: -len(IMAGE_SUFFIX)])


def _check_size(array: np.ndarray, rgb: np.ndarray, path: Path) -> None:
    if array.shape[:2] != rgb.shape[:2]:
        raise DataError(f"{path} is {array.shape[1]}x{array.shape[0]} but its image is {rgb.shape[1]}x{rgb.shape[0]}")


def _read_camera(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    if not path.is_file():
        raise DataError(f"missing camera file {path} (needed for intrinsics)")
    try:
        camera = json.loads(path.read_text())
        intrinsic = camera["intrinsic"]
        K = intrinsics_matrix(float(intrinsic["fx"]), float(intrinsic["fy"]), float(intrinsic["u0"]),
                              float(intrinsic["v0"]))
        baseline = float(camera["extrinsic"]["baseline"])
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"malformed camera file {path}: {error!r} (expected intrinsic fx, fy, u0, v0 and "
                        "extrinsic baseline)") from None
    return K, baseline


def quantize_disparity(disparity: np.ndarray) -> np.ndarray:
    """Cityscapes encoding: p = round(d * 256) + 1 for d > 0, 0 for invalid; saturates at 65535."""
    p = np.where(disparity > 0, np.round(disparity * 256.0) + 1.0, 0.0)
    return np.clip(p, 0, 65535).astype(np.uint16)


def export_frames(frames: Iterable[Frame], root: str | Path, split: str, city: str | None = None,
                  baseline: float = STEREO_BASELINE_M) -> list[Path]:
    """Write synthetic frames in the Cityscapes layout (plus lidarDepth); returns the image paths."""
    root = Path(root)
    written = []
    to_label_id = train_id_to_label_id_lut()
    for frame in frames:
        city_name = city or f"synth{frame.family}"
        stem = f"{city_name}_{frame.seed % 1_000_000:06d}_{round(frame.stamp * 1000) % 1_000_000:06d}"
        image_path = root / "leftImg8bit" / split / city_name / f"{stem}{IMAGE_SUFFIX}"
        write_image(image_path, frame.rgb, rgb=True)
        write_image(root / "gtFine" / split / city_name / f"{stem}_gtFine_labelIds.png", to_label_id[frame.label])
        fx = float(frame.K[0, 0])
        disparity = depth_to_disparity(frame.depth, fx, baseline)
        write_image(root / "disparity" / split / city_name / f"{stem}_disparity.png", quantize_disparity(disparity))
        lidar = np.clip(np.round(frame.lidar_depth * 256.0), 0, 65535).astype(np.uint16)
        write_image(root / "lidarDepth" / split / city_name / f"{stem}_lidarDepth.png", lidar)
        camera = {
            "extrinsic": {"baseline": baseline, "pitch": 0.0, "roll": 0.0, "yaw": 0.0, "x": 0.0, "y": 0.0, "z": 0.0},
            "intrinsic": {"fx": fx, "fy": float(frame.K[1, 1]), "u0": float(frame.K[0, 2]), "v0": float(frame.K[1, 2])},
        }
        camera_path = root / "camera" / split / city_name / f"{stem}_camera.json"
        camera_path.parent.mkdir(parents=True, exist_ok=True)
        camera_path.write_text(json.dumps(camera, indent=2))
        written.append(image_path)
    return written
