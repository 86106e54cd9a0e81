"""A labelled frame with its geometry, and the encodings of the teacher's "X" modalities."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lix_ros.core.constants import STEREO_BASELINE_M
from lix_ros.core.geometry import depth_to_disparity, normals_from_depth


class DataError(Exception):
    """Bad input data: the message names the file or field and what was expected."""


# Teacher "X" inputs and their channel counts.
MODALITY_CHANNELS: dict[str, int] = {"depth": 1, "disparity": 1, "normals": 3, "lidar": 2}
DEFAULT_BASELINE_M = STEREO_BASELINE_M  # used to turn depth into disparity when a data set has none
_MAX_INVERSE_DEPTH = 2.0  # 1/m: anything nearer than 0.5 m saturates
_DISPARITY_SCALE = 1.0 / 64.0  # px -> network units


@dataclass
class Sample:
    rgb: np.ndarray  # HxWx3 uint8 RGB
    label: np.ndarray | None  # HxW uint8 train ids, 255 = ignore
    K: np.ndarray  # 3x3 intrinsics
    depth: np.ndarray | None = None  # HxW float32 metres, 0 = unknown
    lidar_depth: np.ndarray | None = None  # HxW float32 sparse metres, 0 = no return
    baseline: float = DEFAULT_BASELINE_M
    name: str = ""
    meta: dict = field(default_factory=dict)


def check_modality(modality: str) -> str:
    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(MODALITY_CHANNELS)}")
    return modality


def _inverse_depth(depth: np.ndarray) -> np.ndarray:
    depth = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    out = np.zeros_like(depth)
    valid = depth > 0
    out[valid] = np.minimum(1.0 / depth[valid], _MAX_INVERSE_DEPTH)
    return out


def encode_modality(modality: str, K: np.ndarray, depth: np.ndarray | None = None,
                    lidar_depth: np.ndarray | None = None, baseline: float = DEFAULT_BASELINE_M) -> np.ndarray:
    """HxWxC float32 network input for a modality.

    depth: inverse depth (1/m, 0 = unknown or sky); disparity: f*b/z in units of 64 px; normals: unit
    camera-frame normals from depth; lidar: sparse inverse depth plus a validity mask.
    """
    check_modality(modality)
    if modality == "lidar":
        if lidar_depth is None:
            raise DataError("modality 'lidar' needs a LiDAR sparse depth image, the sample has none")
        inv = _inverse_depth(lidar_depth)
        return np.stack([inv, (inv > 0).astype(np.float32)], axis=-1)
    if depth is None:
        raise DataError(f"modality {modality!r} needs a depth image, the sample has none")
    if modality == "depth":
        return _inverse_depth(depth)[..., None]
    if modality == "disparity":
        disparity = depth_to_disparity(np.nan_to_num(depth, nan=0.0), float(K[0, 0]), baseline)
        return (disparity * _DISPARITY_SCALE)[..., None].astype(np.float32)
    return normals_from_depth(depth, K)


def sample_modality(sample: Sample, modality: str) -> np.ndarray:
    return encode_modality(modality, sample.K, sample.depth, sample.lidar_depth, sample.baseline)
