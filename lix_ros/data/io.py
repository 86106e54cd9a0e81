"""Image file reading and writing that names the file when something is wrong."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lix_ros.data.sample import DataError


def read_image(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    if not Path(path).is_file():
        raise DataError(f"missing image file: {path}")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"corrupt or unreadable image file: {path}")
    return image


def read_rgb(path: Path) -> np.ndarray:
    image = read_image(path, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image[..., ::-1])


def read_gray(path: Path, dtype: type) -> np.ndarray:
    image = read_image(path, cv2.IMREAD_UNCHANGED)
    if image.ndim != 2:
        raise DataError(f"expected a single-channel image in {path}, got shape {image.shape}")
    if image.dtype != dtype:
        raise DataError(f"expected {np.dtype(dtype).name} pixels in {path}, got {image.dtype}")
    return image


def write_image(path: Path, image: np.ndarray, rgb: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image[..., ::-1] if rgb else image
    if not cv2.imwrite(str(path), np.ascontiguousarray(data)):
        raise DataError(f"could not write image file: {path}")
