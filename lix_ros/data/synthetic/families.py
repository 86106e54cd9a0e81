"""Families of scenes (train, val, test), evaluation splits, class ids and the LiDAR configuration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lix_ros.core.constants import LIDAR_BEAMS
from lix_ros.data.classes import TRAIN_ID

SKY_FACE = -1
_NEAR = 0.05

ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE = (
    TRAIN_ID[n] for n in ("road", "sidewalk", "building", "wall", "fence", "pole")
)
SIGN, VEGETATION, TERRAIN, SKY = (TRAIN_ID[n] for n in ("traffic sign", "vegetation", "terrain", "sky"))
PERSON, CAR, TRUCK, BUS = (TRAIN_ID[n] for n in ("person", "car", "truck", "bus"))

# LiDAR intensity (reflectivity) per class, 0..1.
_REFLECTIVITY = np.full(256, 0.3, np.float32)
for _cls, _r in ((ROAD, 0.12), (SIDEWALK, 0.25), (TERRAIN, 0.35), (VEGETATION, 0.45), (CAR, 0.6),
                 (TRUCK, 0.6), (BUS, 0.6), (SIGN, 0.95), (POLE, 0.5), (BUILDING, 0.3), (WALL, 0.3)):
    _REFLECTIVITY[_cls] = _r


# --------------------------------------------------------------------------------------------------
# Families and configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FamilyConfig:
    """Weather, layout and camera settings of a family of scenes (train, val or test)."""

    name: str
    seed_start: int
    seed_stop: int
    road_width: tuple[float, float] = (6.0, 11.0)
    curb_height: tuple[float, float] = (0.08, 0.2)
    p_shared_ground_material: float = 0.55  # sidewalk/terrain made of the road's material
    p_grey_car: float = 0.5  # car painted in the road's grey
    p_concrete_wall: float = 0.6
    fog_probability: float = 0.5
    fog_visibility_m: tuple[float, float] = (40.0, 160.0)  # meteorological visibility when foggy
    sun_strength: tuple[float, float] = (0.0, 0.5)  # 0 = overcast (no face shading)
    brightness: tuple[float, float] = (0.75, 1.15)
    cars_per_100m: tuple[float, float] = (4.0, 10.0)
    people_per_100m: tuple[float, float] = (2.0, 8.0)
    p_intersection: float = 0.35
    camera_height: tuple[float, float] = (1.3, 1.7)
    camera_pitch_deg: tuple[float, float] = (-3.0, 3.0)
    camera_roll_deg: tuple[float, float] = (-2.0, 2.0)
    camera_yaw_deg: tuple[float, float] = (-8.0, 8.0)
    horizontal_fov_deg: tuple[float, float] = (70.0, 90.0)
    image_noise: tuple[float, float] = (1.0, 4.0)


FAMILIES: dict[str, FamilyConfig] = {
    "train": FamilyConfig("train", 0, 1_000_000),
    "val": FamilyConfig("val", 1_000_000, 2_000_000),
    "test": FamilyConfig(
        "test",
        2_000_000,
        3_000_000,
        road_width=(9.0, 14.0),
        fog_probability=0.75,
        fog_visibility_m=(30.0, 110.0),
        sun_strength=(0.0, 0.3),
        brightness=(0.55, 0.9),
        cars_per_100m=(8.0, 14.0),
        people_per_100m=(4.0, 10.0),
        p_intersection=0.6,
        camera_height=(1.2, 2.0),
    ),
}


def family_of(seed: int) -> FamilyConfig:
    """The family a seed belongs to (train, val or test, by seed range)."""
    for family in FAMILIES.values():
        if family.seed_start <= seed < family.seed_stop:
            return family
    raise ValueError(f"seed {seed} is outside every family's range (0 <= seed < 3,000,000)")


# Splits that draw from another split's family: "test_in" is unseen scenes of the training family (seeds
# from the second half of its range, which training never reaches), "test" is the shifted family (other
# weather and layout), "unlabelled" is more scenes of the training family whose labels training never sees
# (data.unlabelled: the teacher labels them), from the second quarter of the range. Splits of one family
# never share a seed: each ends where the next one of its family starts.
SPLIT_FAMILY: dict[str, tuple[str, int]] = {"train": ("train", 0), "val": ("val", 0), "test": ("test", 0),
                                            "test_in": ("train", 500_000), "unlabelled": ("train", 250_000)}


def split_size(split: str) -> int:
    """How many seeds a split has: up to where the next split of its family starts."""
    family_name, start = SPLIT_FAMILY[split]
    family = FAMILIES[family_name]
    later = [s for f, s in SPLIT_FAMILY.values() if f == family_name and s > start]
    return (min(later) if later else family.seed_stop - family.seed_start) - start


def split_seeds(split: str, count: int, offset: int = 0) -> list[int]:
    """`count` seeds of a split, starting `offset` into its range."""
    if split not in SPLIT_FAMILY:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_FAMILY)}")
    family_name, start = SPLIT_FAMILY[split]
    family = FAMILIES[family_name]
    size = split_size(split)
    if offset + count > size:
        raise ValueError(f"split {split!r} has only {size} seeds")
    first = family.seed_start + start + offset
    return list(range(first, first + count))


@dataclass(frozen=True)
class LidarConfig:
    """A spinning LiDAR restricted to the camera's side (points outside the camera view are still kept)."""

    beams: int = LIDAR_BEAMS
    elevation_deg: tuple[float, float] = (-16.0, 8.0)
    azimuth_step_deg: float = 0.25
    azimuth_fov_deg: float = 110.0
    max_range_m: float = 100.0
    range_noise_m: float = 0.02
    dropout: float = 0.05
    mount_offset_m: tuple[float, float, float] = (0.0, 0.35, -0.4)  # world x, y (up), z (forward) from the camera
