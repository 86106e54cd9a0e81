"""Joint augmentation of RGB, geometry and labels: the same random scale, crop and flip for all.

RGB and dense depth are resized bilinearly; labels and sparse LiDAR depth with nearest neighbour (an
interpolated label or LiDAR return would be invented). Intrinsics follow every step, so modalities
derived afterwards (normals, disparity) stay consistent with the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from lix_ros.data.classes import IGNORE_ID
from lix_ros.data.sample import Sample


def _resize(array: np.ndarray | None, size: tuple[int, int], nearest: bool) -> np.ndarray | None:
    if array is None:
        return None
    h, w = size
    return cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def _resize_depth(depth: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """Bilinear where all four neighbours are valid, nearest elsewhere (no blending with 'unknown' = 0)."""
    if depth is None:
        return None
    linear = _resize(depth, size, nearest=False)
    nearest = _resize(depth, size, nearest=True)
    valid_fraction = _resize((depth > 0).astype(np.float32), size, nearest=False)
    return np.where(valid_fraction > 0.999, linear, nearest).astype(np.float32)


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    h0, w0 = sample.rgb.shape[:2]
    h, w = size
    K = sample.K.copy()
    sx, sy = w / w0, h / h0
    # Pixel centres at integers: u' = (u + 0.5) * s - 0.5.
    K[0, 0] *= sx
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return replace(
        sample,
        rgb=_resize(sample.rgb, size, nearest=False),
        label=_resize(sample.label, size, nearest=True),
        depth=_resize_depth(sample.depth, size),
        lidar_depth=_resize(sample.lidar_depth, size, nearest=True),
        K=K,
    )


def _crop_pad(array: np.ndarray | None, top: int, left: int, size: tuple[int, int], fill: float) -> np.ndarray | None:
    if array is None:
        return None
    h, w = size
    out = np.full((h, w, *array.shape[2:]), fill, array.dtype)
    src = array[max(top, 0): top + h, max(left, 0): left + w]
    out[max(-top, 0): max(-top, 0) + src.shape[0], max(-left, 0): max(-left, 0) + src.shape[1]] = src
    return out


def crop_sample(sample: Sample, top: int, left: int, size: tuple[int, int]) -> Sample:
    """Crop (negative offsets or a size past the border pad: RGB 0, depth 0, labels 255)."""
    K = sample.K.copy()
    K[0, 2] -= left
    K[1, 2] -= top
    return replace(
        sample,
        rgb=_crop_pad(sample.rgb, top, left, size, 0),
        label=_crop_pad(sample.label, top, left, size, IGNORE_ID),
        depth=_crop_pad(sample.depth, top, left, size, 0.0),
        lidar_depth=_crop_pad(sample.lidar_depth, top, left, size, 0.0),
        K=K,
    )


def flip_sample(sample: Sample) -> Sample:
    """Mirror left-right; the principal point mirrors too (u' = W - 1 - u, pixel centres at integers)."""
    w = sample.rgb.shape[1]
    K = sample.K.copy()
    K[0, 2] = w - 1 - K[0, 2]

    def flip(a):
        return None if a is None else np.ascontiguousarray(a[:, ::-1])

    return replace(sample, rgb=flip(sample.rgb), label=flip(sample.label), depth=flip(sample.depth),
                   lidar_depth=flip(sample.lidar_depth), K=K)


@dataclass(frozen=True)
class Augment:
    """Random scale in `scale_range`, a random `crop_size` (h, w) crop, and a horizontal flip with p=0.5."""

    crop_size: tuple[int, int]
    scale_range: tuple[float, float] = (0.75, 1.5)
    flip: bool = True

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        h0, w0 = sample.rgb.shape[:2]
        scale = rng.uniform(*self.scale_range)
        size = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        sample = resize_sample(sample, size)
        ch, cw = self.crop_size
        top = int(rng.integers(0, size[0] - ch + 1)) if size[0] > ch else (size[0] - ch) // 2
        left = int(rng.integers(0, size[1] - cw + 1)) if size[1] > cw else (size[1] - cw) // 2
        sample = crop_sample(sample, top, left, self.crop_size)
        if self.flip and rng.random() < 0.5:
            sample = flip_sample(sample)
        return sample
