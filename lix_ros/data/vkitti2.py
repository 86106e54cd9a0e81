"""Virtual KITTI 2 layout (the archives rgb, depth, classSegmentation and textgt unpacked into one root).

  <root>/<Scene>/<variation>/frames/rgb/Camera_<c>/rgb_<frame>.jpg                     RGB
  <root>/<Scene>/<variation>/frames/depth/Camera_<c>/depth_<frame>.png                 uint16 depth in cm
  <root>/<Scene>/<variation>/frames/classSegmentation/Camera_<c>/classgt_<frame>.png   RGB-coded classes
  <root>/<Scene>/<variation>/colors.txt       "Category r g b" per class (the table below when absent)
  <root>/<Scene>/<variation>/intrinsic.txt    "frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]" per frame and camera

Scenes are Scene01, 02, 06, 18, 20; variations clone, fog, morning, overcast, rain, sunset, 15/30-deg-left/right.
Depth saturates at 655.35 m (65535 = sky / far): such pixels are unknown (0) here. Classes map to the Cityscapes
train ids the way Cityscapes labels the same things (Tree -> vegetation, Van -> car); GuardRail, Misc and
Undefined have no Cityscapes train id and are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lix_ros.core.geometry import intrinsics_matrix
from lix_ros.data.classes import IGNORE_ID, TRAIN_ID
from lix_ros.data.io import read_gray, read_rgb
from lix_ros.data.sample import DataError, Sample

EXPECTED_LAYOUT = "<root>/<Scene>/<variation>/frames/rgb/Camera_<c>/rgb_<frame>.jpg (+ depth/, classSegmentation/)"
# The colour table of the Virtual KITTI 2 release (colors.txt).
DEFAULT_COLORS: dict[str, tuple[int, int, int]] = {
    "Terrain": (210, 0, 200), "Sky": (90, 200, 255), "Tree": (0, 199, 0), "Vegetation": (90, 240, 0),
    "Building": (140, 140, 140), "Road": (100, 60, 100), "GuardRail": (250, 100, 255),
    "TrafficSign": (255, 255, 0), "TrafficLight": (200, 200, 0), "Pole": (255, 130, 0), "Misc": (80, 80, 80),
    "Truck": (160, 60, 60), "Car": (255, 127, 80), "Van": (0, 139, 139), "Undefined": (0, 0, 0),
}
TO_CITYSCAPES: dict[str, str | None] = {
    "Terrain": "terrain", "Sky": "sky", "Tree": "vegetation", "Vegetation": "vegetation", "Building": "building",
    "Road": "road", "GuardRail": None, "TrafficSign": "traffic sign", "TrafficLight": "traffic light",
    "Pole": "pole", "Misc": None, "Truck": "truck", "Car": "car", "Van": "car", "Undefined": None,
}
DEPTH_SATURATED = 65535


def _table_rows(path: Path, header: str, layout: str, parse):
    """parse(fields) of each data row of a whitespace-separated text table (blank lines and the header row
    skipped); a row that does not parse is a DataError naming the file, line and `layout`."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] == header:
            continue
        try:
            yield parse(parts)
        except (ValueError, IndexError):
            raise DataError(f"{path} line {number}: expected {layout!r}, got {line!r}") from None


def read_colors(path: Path) -> dict[str, tuple[int, int, int]]:
    if not path.is_file():
        return dict(DEFAULT_COLORS)
    colors = dict(_table_rows(path, "Category", "Category r g b",
                              lambda p: (p[0], (int(p[1]), int(p[2]), int(p[3])))))
    unknown = sorted(set(colors) - set(TO_CITYSCAPES))
    if unknown:
        raise DataError(f"{path}: unknown Virtual KITTI 2 classes {unknown}; known: {sorted(TO_CITYSCAPES)}")
    return colors


def colors_to_train_ids(classgt: np.ndarray, colors: dict[str, tuple[int, int, int]]) -> tuple[np.ndarray, int]:
    """HxWx3 RGB class image -> HxW train ids; returns the ids and the count of pixels of no listed colour."""
    code = (classgt[..., 0].astype(np.int32) << 16) | (classgt[..., 1].astype(np.int32) << 8) | classgt[..., 2]
    out = np.full(code.shape, IGNORE_ID, np.uint8)
    matched = np.zeros(code.shape, bool)
    for name, (r, g, b) in colors.items():
        hit = code == (r << 16 | g << 8 | b)
        matched |= hit
        target = TO_CITYSCAPES[name]
        if target is not None:
            out[hit] = TRAIN_ID[target]
    return out, int((~matched).sum())


def read_intrinsics(path: Path) -> dict[tuple[int, int], np.ndarray]:
    """(frame, camera) -> K from intrinsic.txt."""
    if not path.is_file():
        raise DataError(f"missing Virtual KITTI 2 intrinsics {path} (from the textgt archive)")
    return dict(_table_rows(path, "frame", "frame cameraID fx fy cx cy",
                            lambda p: ((int(p[0]), int(p[1])),
                                       intrinsics_matrix(float(p[2]), float(p[3]), float(p[4]), float(p[5])))))


class VirtualKitti2Dataset:
    """Frames of the chosen scenes, variations and camera, in (scene, variation, frame) order; lazy."""

    def __init__(self, root: str | Path, scenes: list[str], variations: list[str], camera: int = 0):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"Virtual KITTI 2 root {self.root} does not exist")
        self.camera = camera
        self.images: list[tuple[Path, str, int]] = []  # (rgb path, scene/variation folder, frame number)
        missing = []
        for scene in scenes:
            for variation in variations:
                folder = self.root / scene / variation
                images = sorted((folder / "frames" / "rgb" / f"Camera_{camera}").glob("rgb_*.jpg"))
                if not images:
                    missing.append(f"{scene}/{variation}")
                self.images += [(p, f"{scene}/{variation}", int(p.stem.split("_")[1])) for p in images]
        if not self.images:
            found = sorted(p.name for p in self.root.iterdir())[:8]
            raise DataError(f"no Virtual KITTI 2 frames for {missing} under {self.root}: expected {EXPECTED_LAYOUT}; "
                            f"{self.root} holds {found or 'nothing'}")
        self._colors: dict[str, dict] = {}
        self._intrinsics: dict[str, dict] = {}
        self.invalid_label_pixels = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        image_path, where, frame = self.images[index]
        folder = self.root / where
        rgb = read_rgb(image_path)
        if where not in self._intrinsics:
            self._intrinsics[where] = read_intrinsics(folder / "intrinsic.txt")
            self._colors[where] = read_colors(folder / "colors.txt")
        K = self._intrinsics[where].get((frame, self.camera))
        if K is None:
            raise DataError(f"{folder / 'intrinsic.txt'} has no row for frame {frame} camera {self.camera}")
        frames = folder / "frames"
        label = None
        label_path = frames / "classSegmentation" / f"Camera_{self.camera}" / f"classgt_{frame:05d}.png"
        if label_path.is_file():
            label, unmatched = colors_to_train_ids(read_rgb(label_path), self._colors[where])
            self.invalid_label_pixels += unmatched
            _check_size(label, rgb, label_path)
        depth = None
        depth_path = frames / "depth" / f"Camera_{self.camera}" / f"depth_{frame:05d}.png"
        if depth_path.is_file():
            raw = read_gray(depth_path, np.uint16)
            _check_size(raw, rgb, depth_path)
            depth = np.where(raw == DEPTH_SATURATED, 0.0, raw / 100.0).astype(np.float32)
        name = f"{where.replace('/', '_')}_{frame:05d}"
        return Sample(rgb, label, K, depth, None, name=name)


def _check_size(array: np.ndarray, rgb: np.ndarray, path: Path) -> None:
    if array.shape[:2] != rgb.shape[:2]:
        raise DataError(f"{path} is {array.shape[1]}x{array.shape[0]} but its image is {rgb.shape[1]}x{rgb.shape[0]}")
