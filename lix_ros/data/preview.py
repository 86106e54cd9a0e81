"""A PNG mosaic for a person to look at: RGB | depth | normals | LiDAR depth | labels, one row a frame."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from lix_ros.core.geometry import normals_from_depth
from lix_ros.data.classes import colorize
from lix_ros.data.sample import Sample

COLUMNS = ("RGB", "depth", "normals", "LiDAR depth", "labels")


def colorize_depth(depth: np.ndarray | None, shape: tuple[int, int], max_inverse: float = 0.5) -> np.ndarray:
    """Turbo colour map of inverse depth (near = red, far = blue); unknown depth is black."""
    if depth is None:
        return np.zeros((*shape, 3), np.uint8)
    inv = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0)
    scaled = np.clip(np.sqrt(inv / max_inverse) * 255, 0, 255).astype(np.uint8)
    out = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)[..., ::-1].copy()
    out[~(depth > 0)] = 0
    return out


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    return np.clip((normals * 0.5 + 0.5) * 255, 0, 255).astype(np.uint8) * (np.abs(normals).sum(-1, keepdims=True) > 0)


def mosaic_row(sample: Sample) -> np.ndarray:
    shape = sample.rgb.shape[:2]
    normals = normals_from_depth(sample.depth, sample.K) if sample.depth is not None else np.zeros((*shape, 3))
    lidar = colorize_depth(sample.lidar_depth, shape)
    if sample.lidar_depth is not None:  # thicken the sparse returns so a person can see them
        lidar = cv2.dilate(lidar, np.ones((3, 3), np.uint8))
    labels = colorize(sample.label) if sample.label is not None else np.zeros((*shape, 3), np.uint8)
    tiles = [sample.rgb, colorize_depth(sample.depth, shape), colorize_normals(normals), lidar, labels]
    return np.concatenate(tiles, axis=1)


def mosaic(samples: Iterable[Sample]) -> np.ndarray:
    rows = [mosaic_row(s) for s in samples]
    if not rows:
        raise ValueError("no frames to preview")
    width = rows[0].shape[1]
    tile_w = width // len(COLUMNS)
    header = np.full((22, width, 3), 255, np.uint8)
    for i, title in enumerate(COLUMNS):
        cv2.putText(header, title, (i * tile_w + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [cv2.resize(r, (width, r.shape[0] * width // r.shape[1])) if r.shape[1] != width else r for r in rows]
    return np.concatenate([header, *rows], axis=0)
