"""Procedural RGB-D-LiDAR driving scenes, deterministic per seed, with Cityscapes train-id labels.

The scenes exist to make geometry matter (the LIX setting): classes that share colour and texture but
differ in shape or height are made ambiguous in RGB and left clear in depth.

* road, sidewalk and terrain often share one material; they differ by a curb a few cm high;
* cars are often painted in the road's grey and lit like it;
* walls are often grey concrete that fog turns into the colour of the sky, which has no depth.

World frame: x right, y up, z along the road. The camera's optical frame is x right, y down, z forward;
the LiDAR's frame is x forward, y left, z up (REP 103). Every surface is a planar convex polygon, so a
frame is rendered by a z-buffer over polygons: for a plane, inverse depth is affine in pixel
coordinates, so each polygon costs one `cv2.fillConvexPoly` and one affine evaluation over its box.
The LiDAR is ray-cast from its own mount (with parallax to the camera) through the same renderer.

Seeds select a family: train [0, 1e6), val [1e6, 2e6), test [2e6, 3e6). The test family has its own
weather (denser fog, dusk light) and layout (wider roads, more traffic, other camera heights).
"""

from __future__ import annotations

from lix_ros.core.constants import LIDAR_BEAMS

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from lix_ros.data.classes import TRAIN_ID
from lix_ros.core.geometry import intrinsics_matrix, project_points_to_depth

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


# Evaluation splits that draw from another split's family: "test_in" is unseen scenes of the training
# family (seeds from the second half of its range, which training never reaches), "test" is the shifted
# family (other weather and layout).
SPLIT_FAMILY: dict[str, tuple[str, int]] = {"train": ("train", 0), "val": ("val", 0), "test": ("test", 0),
                                            "test_in": ("train", 500_000)}


def split_seeds(split: str, count: int, offset: int = 0) -> list[int]:
    """`count` seeds of a split, starting `offset` into its range."""
    if split not in SPLIT_FAMILY:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_FAMILY)}")
    family_name, start = SPLIT_FAMILY[split]
    family = FAMILIES[family_name]
    size = family.seed_stop - family.seed_start - start
    if split == "train":
        size = SPLIT_FAMILY["test_in"][1]  # training scenes never overlap test_in
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


# --------------------------------------------------------------------------------------------------
# Materials and textures
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Material:
    color: tuple[float, float, float]  # linear-ish RGB 0..1
    texture: int  # index into _textures()
    texture_amplitude: float
    texture_scale: float  # texture cells per metre


def _material(rng: np.random.Generator, base: tuple[float, float, float], texture: int, amp: float,
              scale: float, jitter: float = 0.04) -> Material:
    color = np.clip(np.array(base) + rng.normal(0, jitter, 3), 0.02, 1.0)
    return Material(tuple(float(c) for c in color), texture, amp, scale)


@lru_cache(maxsize=1)
def _textures(size: int = 128) -> np.ndarray:
    """A fixed bank of tileable-enough noise textures in [-1, 1]: fine, blotchy, bricks, leaves."""
    rng = np.random.default_rng(1234)

    def fractal(octaves: list[tuple[int, float]]) -> np.ndarray:
        out = np.zeros((size, size), np.float32)
        for cells, weight in octaves:
            small = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
            small = np.pad(small, 1, mode="wrap")
            big = cv2.resize(small, (size + 2 * size // cells, size + 2 * size // cells), interpolation=cv2.INTER_CUBIC)
            start = size // cells
            out += weight * big[start:start + size, start:start + size]
        return out / np.abs(out).max()

    fine = fractal([(64, 1.0), (32, 0.5)])
    blotchy = fractal([(8, 1.0), (16, 0.5), (64, 0.25)])
    yy, xx = np.mgrid[0:size, 0:size]
    bricks = np.where((yy % 16 < 2) | (((xx + 16 * ((yy // 16) % 2)) % 32) < 2), -1.0, 0.3).astype(np.float32)
    bricks = 0.7 * bricks + 0.3 * fine
    leaves = np.sign(fractal([(32, 1.0), (64, 0.7)])) * 0.8 + 0.2 * fine
    return np.stack([fine, blotchy, bricks, leaves.astype(np.float32)])


TEX_FINE, TEX_BLOTCHY, TEX_BRICKS, TEX_LEAVES = range(4)


# --------------------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------------------
@dataclass
class Polygon:
    vertices: np.ndarray  # Nx3 world, convex, planar
    normal: np.ndarray  # unit outward normal, world
    class_id: int
    material: Material
    tangent_u: np.ndarray  # texture axes, world
    tangent_v: np.ndarray


@dataclass
class Lighting:
    sun_direction: np.ndarray  # unit, world, pointing towards the sun
    sun_strength: float
    brightness: float
    tint: np.ndarray  # RGB multiplier
    fog_density: float  # per metre (0 = clear)
    fog_color: np.ndarray
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    noise_sigma: float


@dataclass
class Scene:
    seed: int
    family: str
    polygons: list[Polygon]
    lighting: Lighting
    road_width: float
    camera_height: float
    camera_x: float
    camera_pitch: float
    camera_roll: float
    camera_yaw: float
    horizontal_fov: float
    length: float
    _tables: dict = field(default_factory=dict, repr=False)

    def pose(self, z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Camera pose on the drive at distance z: (R_world_from_optical, position)."""
        return camera_rotation(self.camera_yaw, self.camera_pitch, self.camera_roll), np.array(
            [self.camera_x, self.camera_height, z]
        )


def scene_tables(scene: Scene) -> dict[str, np.ndarray]:
    """Per-polygon arrays of a scene (quads stacked), built once and cached on the scene."""
    t = scene._tables
    if not t:
        polys = scene.polygons
        t["vertices"] = np.array([p.vertices for p in polys], np.float64).reshape(-1, 4, 3)
        t["normal"] = np.array([p.normal for p in polys], np.float64).reshape(-1, 3)
        t["class_id"] = np.array([p.class_id for p in polys] + [SKY], np.uint8)
        # Shading tables carry one sentinel row at the end for "no surface".
        t["colors"] = np.array([p.material.color for p in polys] + [(0, 0, 0)], np.float32)
        t["normals"] = np.array([p.normal for p in polys] + [(0, 1, 0)], np.float32)
        t["tex"] = np.array([p.material.texture for p in polys] + [0], np.int64)
        t["amp"] = np.array([p.material.texture_amplitude for p in polys] + [0], np.float32)
        t["scale"] = np.array([p.material.texture_scale for p in polys] + [1], np.float32)
        t["tu"] = np.array([p.tangent_u for p in polys] + [(1, 0, 0)], np.float32)
        t["tv"] = np.array([p.tangent_v for p in polys] + [(0, 0, 1)], np.float32)
    return t


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R_world_from_optical for a camera with the given yaw (about up), pitch (down positive), roll."""
    base = np.diag([1.0, -1.0, 1.0])  # optical x right, y down, z forward -> world x right, y up, z forward
    cy, sy = math.cos(yaw), math.sin(yaw)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    cp, sp = math.cos(pitch), math.sin(pitch)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])  # about optical x: positive tilts z towards +y (down)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ base @ rx @ rz


_AXES = np.eye(3)


def _quad(corners: list[tuple[float, float, float]], normal: tuple[float, float, float], class_id: int,
          material: Material) -> Polygon:
    n = np.array(normal, float)
    # Texture axes: for horizontal faces x and z; for vertical faces the horizontal in-plane axis and y.
    if abs(n[1]) > 0.9:
        tu, tv = _AXES[0], _AXES[2]
    else:
        tu = np.array([n[2], 0.0, -n[0]]) / math.hypot(n[0], n[2])  # up x n
        tv = _AXES[1]
    return Polygon(np.array(corners, float), n, class_id, material, tu, tv)


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, class_id: int, material: Material,
         faces: str = "lrbtnf") -> list[Polygon]:
    """Axis-aligned box faces (l=-x, r=+x, b=bottom, t=top, n=near -z, f=far +z)."""
    out = []
    if "l" in faces:
        out.append(_quad([(x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (x0, y1, z0)], (-1, 0, 0), class_id, material))
    if "r" in faces:
        out.append(_quad([(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)], (1, 0, 0), class_id, material))
    if "b" in faces:
        out.append(_quad([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], (0, -1, 0), class_id, material))
    if "t" in faces:
        out.append(_quad([(x0, y1, z0), (x0, y1, z1), (x1, y1, z1), (x1, y1, z0)], (0, 1, 0), class_id, material))
    if "n" in faces:
        out.append(_quad([(x0, y0, z0), (x0, y1, z0), (x1, y1, z0), (x1, y0, z0)], (0, 0, -1), class_id, material))
    if "f" in faces:
        out.append(_quad([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], (0, 0, 1), class_id, material))
    return out


def _ground(x0: float, x1: float, z0: float, z1: float, y: float, class_id: int, material: Material) -> Polygon:
    return _quad([(x0, y, z0), (x0, y, z1), (x1, y, z1), (x1, y, z0)], (0, 1, 0), class_id, material)


def generate_scene(seed: int, length: float = 160.0) -> Scene:
    """Build the scene for a seed: a straight street with its roadside, traffic and weather."""
    family = family_of(seed)
    rng = np.random.default_rng(seed)
    u = rng.uniform

    def mat(base, tex, amp, scale, jitter=0.04):
        return _material(rng, base, tex, amp, scale, jitter)

    grey = u(0.28, 0.5)
    asphalt = mat((grey, grey, grey * 1.02), TEX_FINE, u(0.08, 0.2), u(3, 6), jitter=0.015)
    shared_ground = u() < family.p_shared_ground_material
    if shared_ground:
        sidewalk_mat = replace(asphalt, color=tuple(float(c * u(0.95, 1.05)) for c in asphalt.color))
    else:
        s = u(0.5, 0.75)
        sidewalk_mat = mat((s, s * 0.97, s * 0.93), rng.choice([TEX_FINE, TEX_BRICKS]), u(0.1, 0.25), u(1, 3))
    if u() < family.p_shared_ground_material:
        terrain_mat = replace(asphalt, color=tuple(float(c * u(0.9, 1.1)) for c in asphalt.color),
                              texture=TEX_BLOTCHY)
    elif u() < 0.6:
        terrain_mat = mat((0.3, 0.45, 0.18), TEX_BLOTCHY, u(0.2, 0.4), u(0.5, 2))
    else:
        terrain_mat = mat((0.45, 0.36, 0.25), TEX_BLOTCHY, u(0.2, 0.4), u(0.5, 2))
    concrete = u(0.55, 0.8)
    wall_mat = mat((concrete, concrete, concrete * 1.03), TEX_BLOTCHY, u(0.05, 0.15), u(0.3, 1.0))
    foliage = mat((0.2, u(0.3, 0.45), 0.12), TEX_LEAVES, u(0.3, 0.5), u(2, 5))
    pole_mat = mat((0.5, 0.5, 0.52), TEX_FINE, 0.05, 4)
    fence_mat = mat((u(0.35, 0.6),) * 3, TEX_BRICKS, 0.4, u(2, 4))

    def building_mat():
        if u() < 0.4:
            return mat((u(0.45, 0.7), u(0.25, 0.4), u(0.2, 0.3)), TEX_BRICKS, u(0.2, 0.35), u(1.5, 3))
        b = u(0.35, 0.8)
        return mat((b, b * u(0.9, 1.05), b * u(0.85, 1.05)), TEX_BLOTCHY, u(0.05, 0.2), u(0.3, 1))

    def car_mat():
        if u() < family.p_grey_car:
            return replace(asphalt, color=tuple(float(c * u(0.9, 1.15)) for c in asphalt.color))
        return mat(tuple(rng.uniform(0.05, 0.9, 3)), TEX_FINE, 0.05, 2, jitter=0.0)

    road_width = u(*family.road_width)
    half = road_width / 2
    curb = u(*family.curb_height)
    z_start, z_end = -20.0, length
    far = z_end + 400.0  # the street continues well past the last object
    polygons: list[Polygon] = []

    intersection = None
    if u() < family.p_intersection:
        iz = u(18, 0.5 * length)
        intersection = (iz, iz + u(8, 14))

    def spans(z0: float, z1: float) -> list[tuple[float, float]]:
        """Split [z0, z1] around the intersection, which cuts the roadside."""
        if intersection is None or intersection[1] <= z0 or intersection[0] >= z1:
            return [(z0, z1)]
        out = []
        if intersection[0] > z0:
            out.append((z0, intersection[0]))
        if intersection[1] < z1:
            out.append((intersection[1], z1))
        return out

    polygons.append(_ground(-half, half, z_start, far, 0.0, ROAD, asphalt))
    roadside_extent = {}
    for side in (-1, 1):
        verge = u(0.8, 3.0) if u() < 0.3 else 0.0  # terrain between road and sidewalk
        verge_height = curb if u() < 0.5 else 0.0
        walk = u(1.5, 4.5)
        inner = half
        for z0, z1 in spans(z_start, far):
            x_in, x_out = sorted((side * inner, side * (inner + verge)))
            if verge > 0:
                polygons.append(_ground(x_in, x_out, z0, z1, verge_height, TERRAIN, terrain_mat))
                if verge_height > 0:
                    cx = side * inner
                    polygons += _box(cx, cx, 0.0, verge_height, z0, z1, TERRAIN, terrain_mat,
                                     faces="l" if side > 0 else "r")
            ws = inner + verge
            x_in, x_out = sorted((side * ws, side * (ws + walk)))
            polygons.append(_ground(x_in, x_out, z0, z1, curb, SIDEWALK, sidewalk_mat))
            # curb face towards the road (or the verge)
            cx = side * ws
            polygons += _box(cx, cx, verge_height if verge > 0 else 0.0, curb, z0, z1, SIDEWALK, sidewalk_mat,
                             faces="l" if side > 0 else "r")
            for zz in (z0, z1):
                if intersection is not None and zz in intersection:
                    nz = "f" if zz == intersection[0] else "n"
                    polygons += _box(x_in, x_out, 0.0, curb, zz, zz, SIDEWALK, sidewalk_mat, faces=nz)
        roadside_extent[side] = inner + verge + walk

    if intersection is not None:
        iz0, iz1 = intersection
        polygons.append(_ground(-200, -half, iz0, iz1, 0.0, ROAD, asphalt))
        polygons.append(_ground(half, 200, iz0, iz1, 0.0, ROAD, asphalt))

    # Roadside: buildings, walls, fences with vegetation, or open terrain with trees.
    for side in (-1, 1):
        edge = roadside_extent[side]
        for z0, z1 in spans(z_start, z_end):
            z = z0
            while z < z1:
                kind = rng.choice(["building", "wall", "fence", "open"], p=[0.45, 0.2, 0.15, 0.2])
                seg = min(u(8, 25), z1 - z)
                if seg < 2:
                    break
                if kind == "building":
                    setback = u(0.0, 2.0)
                    height = u(6, 25)
                    depth = u(8, 15)
                    x_in, x_out = sorted((side * (edge + setback), side * (edge + setback + depth)))
                    polygons += _box(x_in, x_out, 0.0, height, z, z + seg - u(0, 1.5), BUILDING, building_mat())
                    if setback > 0.3:
                        gi, go = sorted((side * edge, side * (edge + setback)))
                        polygons.append(_ground(gi, go, z, z + seg, curb, SIDEWALK, sidewalk_mat))
                elif kind == "wall":
                    wall = wall_mat if u() < family.p_concrete_wall else building_mat()
                    height = u(1.5, 4.0)
                    x_in, x_out = sorted((side * (edge + 0.2), side * (edge + 0.5)))
                    polygons += _box(x_in, x_out, curb, curb + height, z, z + seg, WALL, wall)
                    if u() < 0.5:  # buildings behind the wall
                        bi, bo = sorted((side * (edge + u(4, 8)), side * (edge + u(14, 20))))
                        polygons += _box(bi, bo, 0.0, u(8, 25), z, z + seg, BUILDING, building_mat())
                elif kind == "fence":
                    x_in, x_out = sorted((side * (edge + 0.1), side * (edge + 0.15)))
                    polygons += _box(x_in, x_out, curb, curb + u(1.0, 2.0), z, z + seg, FENCE, fence_mat)
                    hi, ho = sorted((side * (edge + 1.0), side * (edge + u(2.5, 5))))
                    polygons += _box(hi, ho, 0.0, u(1.5, 3.5), z, z + seg, VEGETATION, foliage)
                else:
                    ti, to = sorted((side * edge, side * (edge + 30)))
                    polygons.append(_ground(ti, to, z, z + seg, curb * u(0, 1), TERRAIN, terrain_mat))
                    for _ in range(rng.integers(0, 3)):
                        tx = side * (edge + u(2, 12))
                        tz = z + u(0, seg)
                        polygons += _tree(rng, tx, tz, curb, foliage)
                z += seg
        # Far backdrop so that gaps show buildings or trees rather than infinite sky at street level.
        bi, bo = sorted((side * (edge + 30), side * (edge + 45)))
        backdrop_is_building = u() < 0.6
        polygons += _box(bi, bo, 0.0, u(10, 30), z_start, z_end, BUILDING if backdrop_is_building else VEGETATION,
                         building_mat() if backdrop_is_building else foliage, faces="lrnf")

    # Street furniture on the sidewalks: poles with signs, trees.
    for side in (-1, 1):
        x = side * (half + 0.4 + u(0, 0.3))
        z = u(3, 15)
        while z < z_end:
            if intersection is None or not (intersection[0] - 1 < z < intersection[1] + 1):
                r = u(0.06, 0.12)
                h = u(3.5, 8)
                polygons += _box(x - r, x + r, curb, curb + h, z - r, z + r, POLE, pole_mat)
                if u() < 0.4:
                    sw = u(0.5, 0.9)
                    sy = curb + u(2.2, 3.0)
                    polygons += _box(x - sw / 2, x + sw / 2, sy, sy + sw, z - r - 0.03, z - r - 0.01, SIGN,
                                     mat((u(0.6, 0.95), u(0.1, 0.9), u(0.1, 0.9)), TEX_FINE, 0.05, 2), faces="n")
                elif u() < 0.3:
                    polygons += _tree(rng, x + side * 1.0, z + 3, curb, foliage)
            z += u(10, 30)

    # Traffic on the road and parked cars; people on the sidewalks.
    n_cars = rng.poisson(u(*family.cars_per_100m) * length / 100)
    lane_centres = np.linspace(-half + 1.5, half - 1.5, max(1, int(road_width // 3)))
    for _ in range(n_cars):
        cz = u(4, z_end)
        if u() < 0.35:
            cx = rng.choice([-1, 1]) * (half - 1.1)  # parked at the curb
        else:
            cx = rng.choice(lane_centres) + u(-0.3, 0.3)
        if u() < 0.15:
            polygons += _truck(rng, cx, cz, car_mat())
        else:
            polygons += _car(rng, cx, cz, car_mat())
    n_people = rng.poisson(u(*family.people_per_100m) * length / 100)
    for _ in range(n_people):
        side = rng.choice([-1, 1])
        px = side * (half + u(0.6, 2.5))
        polygons += _person(rng, px, u(3, z_end), curb, mat(tuple(rng.uniform(0.1, 0.8, 3)), TEX_FINE, 0.1, 3))

    # Weather and light.
    foggy = u() < family.fog_probability
    fog_density = 3.0 / u(*family.fog_visibility_m) if foggy else 0.0
    fog_level = u(0.6, 0.85)
    fog_color = np.array([fog_level, fog_level, fog_level * 1.03])
    sky_top = np.array([0.35, 0.55, 0.85]) * u(0.8, 1.1)
    sky_horizon = np.array([0.7, 0.78, 0.88]) * u(0.85, 1.05)
    if foggy:
        sky_top = sky_horizon = fog_color
    elevation = u(0.3, 1.2)
    azimuth = u(0, 2 * math.pi)
    sun = np.array([math.cos(elevation) * math.cos(azimuth), math.sin(elevation),
                    math.cos(elevation) * math.sin(azimuth)])
    tint = np.array([1.0, u(0.9, 1.0), u(0.75, 1.0)])
    lighting = Lighting(sun, u(*family.sun_strength), u(*family.brightness), tint, fog_density, fog_color,
                        sky_top, sky_horizon, u(*family.image_noise))

    return Scene(
        seed=seed,
        family=family.name,
        polygons=polygons,
        lighting=lighting,
        road_width=road_width,
        camera_height=u(*family.camera_height),
        camera_x=u(-0.3, 0.3) * road_width / 2,
        camera_pitch=math.radians(u(*family.camera_pitch_deg)),
        camera_roll=math.radians(u(*family.camera_roll_deg)),
        camera_yaw=math.radians(u(*family.camera_yaw_deg)),
        horizontal_fov=math.radians(u(*family.horizontal_fov_deg)),
        length=length,
    )


def _tree(rng: np.random.Generator, x: float, z: float, ground: float, foliage: Material) -> list[Polygon]:
    r = rng.uniform(0.12, 0.2)
    trunk_h = rng.uniform(1.8, 3.0)
    crown = rng.uniform(1.2, 2.5)
    out = _box(x - r, x + r, ground, ground + trunk_h, z - r, z + r, VEGETATION, foliage)
    out += _box(x - crown, x + crown, ground + trunk_h, ground + trunk_h + rng.uniform(2, 4), z - crown, z + crown,
                VEGETATION, foliage)
    return out


def _car(rng: np.random.Generator, x: float, z: float, paint: Material) -> list[Polygon]:
    w, length = rng.uniform(1.7, 1.95), rng.uniform(3.8, 4.8)
    body = rng.uniform(0.9, 1.1)
    cabin = rng.uniform(0.45, 0.6)
    out = _box(x - w / 2, x + w / 2, 0.15, body, z, z + length, CAR, paint)
    inset = 0.12
    out += _box(x - w / 2 + inset, x + w / 2 - inset, body, body + cabin, z + 0.25 * length, z + 0.8 * length, CAR,
                replace(paint, color=tuple(c * 0.55 for c in paint.color)))
    # wheels: dark boxes under the body
    for wz in (z + 0.6, z + length - 0.6):
        out += _box(x - w / 2, x + w / 2, 0.0, 0.15, wz - 0.3, wz + 0.3, CAR,
                    Material((0.06, 0.06, 0.06), TEX_FINE, 0.05, 3), faces="lrnf")
    return out


def _truck(rng: np.random.Generator, x: float, z: float, paint: Material) -> list[Polygon]:
    w = rng.uniform(2.3, 2.5)
    cab = rng.uniform(1.8, 2.4)
    height = rng.uniform(3.0, 3.8)
    length = rng.uniform(6, 10)
    out = _box(x - w / 2, x + w / 2, 0.4, 2.6, z, z + cab, TRUCK, paint)
    out += _box(x - w / 2, x + w / 2, 0.6, height, z + cab + 0.2, z + cab + length, TRUCK,
                replace(paint, color=tuple(min(1.0, c * 1.2) for c in paint.color)))
    out += _box(x - w / 2, x + w / 2, 0.0, 0.6, z + 0.3, z + cab + length - 0.3, TRUCK,
                Material((0.06, 0.06, 0.06), TEX_FINE, 0.05, 3), faces="lrnf")
    return out


def _person(rng: np.random.Generator, x: float, z: float, ground: float, clothes: Material) -> list[Polygon]:
    h = rng.uniform(1.5, 1.9)
    w = rng.uniform(0.4, 0.55)
    d = 0.3
    out = _box(x - w / 2 + 0.05, x + w / 2 - 0.05, ground, ground + 0.47 * h, z - d / 2, z + d / 2, PERSON,
               replace(clothes, color=tuple(c * 0.6 for c in clothes.color)))
    out += _box(x - w / 2, x + w / 2, ground + 0.47 * h, ground + 0.86 * h, z - d / 2, z + d / 2, PERSON, clothes)
    head = 0.11
    out += _box(x - head, x + head, ground + 0.86 * h, ground + h, z - head, z + head, PERSON,
                Material((0.75, 0.58, 0.48), TEX_FINE, 0.05, 5))
    return out


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
def _clip_near(points: np.ndarray, near: float = _NEAR) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (Nx3, camera frame) against z >= near."""
    inside = points[:, 2] >= near
    if inside.all():
        return points
    if not inside.any():
        return points[:0]
    out = []
    n = len(points)
    for i in range(n):
        a, b = points[i], points[(i + 1) % n]
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out)


def rasterize(scene: Scene, R_world_from_cam: np.ndarray, position: np.ndarray, K: np.ndarray,
              size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffer the scene's quads: (face index per pixel, -1 = nothing; inverse depth, 0 = nothing)."""
    h, w = size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    face = np.full((h, w), SKY_FACE, np.int32)
    inv_depth = np.zeros((h, w), np.float32)
    tables = scene_tables(scene)
    verts, normals = tables["vertices"], tables["normal"]
    R_cw = R_world_from_cam.T
    # Vectorised culling: back faces, quads wholly behind the near plane or outside the view.
    front = np.einsum("pc,pc->p", normals, position - verts[:, 0]) > 1e-9
    cam_all = (verts - position) @ R_cw.T  # P x 4 x 3
    z = cam_all[..., 2]
    in_front = z >= _NEAR
    candidates = front & in_front.any(axis=1)
    zs = np.where(in_front, z, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_all = fx * cam_all[..., 0] / zs + cx
        v_all = fy * cam_all[..., 1] / zs + cy
    all_in_front = in_front.all(axis=1)
    outside = all_in_front & ((u_all.max(1) < 0) | (u_all.min(1) > w) | (v_all.max(1) < 0) | (v_all.min(1) > h))
    n_cam_all = normals @ R_cw.T
    plane_c = np.einsum("pc,pc->p", n_cam_all, cam_all[:, 0])
    for index in np.flatnonzero(candidates & ~outside & (np.abs(plane_c) > 1e-9)):
        if all_in_front[index]:
            u, v = u_all[index], v_all[index]
        else:
            cam = _clip_near(cam_all[index])
            if len(cam) < 3:
                continue
            u = fx * cam[:, 0] / cam[:, 2] + cx
            v = fy * cam[:, 1] / cam[:, 2] + cy
        u0, u1 = max(math.floor(u.min()), 0), min(math.ceil(u.max()), w)
        v0, v1 = max(math.floor(v.min()), 0), min(math.ceil(v.max()), h)
        if u0 >= u1 or v0 >= v1:
            continue
        n_cam, c = n_cam_all[index], plane_c[index]
        # Pixel centres are at integer coordinates (OpenCV/ROS). 1/z there is affine in (u, v):
        # n . ray / c with ray = ((u - cx) / fx, (v - cy) / fy, 1).
        a = n_cam[0] / (fx * c)
        b = n_cam[1] / (fy * c)
        e = (n_cam[0] * (u0 - cx) / fx + n_cam[1] * (v0 - cy) / fy + n_cam[2]) / c
        mask = np.zeros((v1 - v0, u1 - u0), np.uint8)
        pts = np.round(np.stack([u - u0, v - v0], axis=1) * 16).astype(np.int32)
        cv2.fillConvexPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=4)
        cols = (a * np.arange(u1 - u0, dtype=np.float32))[None, :]
        inv = cols + (b * np.arange(v1 - v0, dtype=np.float32) + e)[:, None]
        region = inv_depth[v0:v1, u0:u1]
        win = (mask > 0) & (inv > region)
        region[win] = inv[win]
        face[v0:v1, u0:u1][win] = index
    return face, inv_depth


@dataclass
class Frame:
    """One rendered frame with every modality and its calibration."""

    rgb: np.ndarray  # HxWx3 uint8
    depth: np.ndarray  # HxW float32 metres along the optical axis, 0 = no surface (sky)
    label: np.ndarray  # HxW uint8 Cityscapes train ids
    lidar_points: np.ndarray  # Nx4 float32 (x, y, z, intensity) in the LiDAR frame
    lidar_depth: np.ndarray  # HxW float32 sparse depth from the LiDAR, 0 = no return
    K: np.ndarray  # 3x3 camera intrinsics
    T_cam_from_lidar: np.ndarray  # 4x4
    seed: int
    family: str
    stamp: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.family}_{self.seed:07d}"


# LiDAR frame (x fwd, y left, z up) -> world (x right, y up, z fwd) before yaw.
_WORLD_FROM_LIDAR = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
# LiDAR frame -> a forward-looking optical frame (for rasterising the LiDAR's view).
_LIDAR_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@lru_cache(maxsize=8)
def _beam_directions(cfg: LidarConfig) -> np.ndarray:
    elevations = np.radians(np.linspace(cfg.elevation_deg[0], cfg.elevation_deg[1], cfg.beams))
    half = cfg.azimuth_fov_deg / 2
    azimuths = np.radians(np.arange(-half, half + 1e-9, cfg.azimuth_step_deg))
    el, az = np.meshgrid(elevations, azimuths, indexing="ij")
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)


def _shade(scene: Scene, face: np.ndarray, depth: np.ndarray, K: np.ndarray, R_wc: np.ndarray,
           position: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = face.shape
    light = scene.lighting
    t = scene_tables(scene)
    n = len(scene.polygons)
    idx = np.where(face >= 0, face, n)  # n = sentinel row
    # Lambert shading per face, softened: overcast days flatten vertical vs horizontal differences.
    lambert = np.clip(t["normals"] @ light.sun_direction.astype(np.float32), 0, 1)
    face_shade = (1 - light.sun_strength) + light.sun_strength * (0.35 + 0.9 * lambert)
    # Texture from world coordinates of each pixel.
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    us = ((np.arange(w, dtype=np.float32) - cx) / fx)[None, :] * depth
    vs = ((np.arange(h, dtype=np.float32) - cy) / fy)[:, None] * depth
    cam = np.stack([us, vs, depth], -1)
    world = cam @ R_wc.T.astype(np.float32) + position.astype(np.float32)
    tex_u = np.einsum("hwc,hwc->hw", world, t["tu"][idx]) * t["scale"][idx]
    tex_v = np.einsum("hwc,hwc->hw", world, t["tv"][idx]) * t["scale"][idx]
    bank = _textures()
    size = bank.shape[1]
    ti = np.floor(tex_v).astype(np.int64) % size
    tj = np.floor(tex_u).astype(np.int64) % size
    tex = bank[t["tex"][idx], ti, tj]
    rgb = t["colors"][idx] * (1 + t["amp"][idx] * tex)[..., None] * face_shade[idx][..., None]
    rgb *= (light.brightness * light.tint).astype(np.float32)
    # Sky: vertical gradient in world elevation of the viewing ray.
    sky = face < 0
    if sky.any():
        ray_x = np.broadcast_to(((np.arange(w, dtype=np.float32) - cx) / fx)[None, :], (h, w))
        ray_y = np.broadcast_to(((np.arange(h, dtype=np.float32) - cy) / fy)[:, None], (h, w))
        rays = np.stack([ray_x, ray_y, np.ones((h, w), np.float32)], -1)
        up = (rays @ R_wc.T.astype(np.float32))[..., 1] / np.linalg.norm(rays, axis=-1)
        mix = np.clip(up * 2.5, 0, 1)[..., None]
        sky_rgb = (light.sky_horizon * (1 - mix) + light.sky_top * mix).astype(np.float32) * light.brightness
        rgb[sky] = sky_rgb[sky]
    # Fog: Koschmieder's law with the distance along the ray.
    if light.fog_density > 0:
        distance = np.linalg.norm(cam, axis=-1)
        transmission = np.exp(-light.fog_density * distance)[..., None]
        fog = (light.fog_color * light.brightness).astype(np.float32)
        rgb = np.where(sky[..., None], rgb, rgb * transmission + fog * (1 - transmission))
    rgb = rgb * 255.0 + rng.normal(0, light.noise_sigma, rgb.shape).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def render(scene: Scene, width: int = 512, height: int = 256, z: float = 0.0,
           lidar: LidarConfig | None = None, noise_seed: int | None = None, stamp: float = 0.0) -> Frame:
    """Render the scene from the camera at distance z along the street."""
    lidar = lidar or LidarConfig()
    rng = np.random.default_rng([scene.seed, round(z * 1000), 0 if noise_seed is None else noise_seed + 1])
    fx = (width / 2) / math.tan(scene.horizontal_fov / 2)
    K = intrinsics_matrix(fx, fx, (width - 1) / 2, (height - 1) / 2)
    R_wc, position = scene.pose(z)
    face, inv_depth = rasterize(scene, R_wc, position, K, (height, width))
    depth = np.where(inv_depth > 0, 1.0 / np.maximum(inv_depth, 1e-9), 0.0).astype(np.float32)
    label = scene_tables(scene)["class_id"][np.where(face >= 0, face, len(scene.polygons))]
    rgb = _shade(scene, face, depth, K, R_wc, position, rng)

    # LiDAR: same yaw as the car, level (camera pitch/roll are the camera mount's).
    yaw = scene.camera_yaw
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    R_wl = ry @ _WORLD_FROM_LIDAR
    lidar_position = position + ry @ np.array(lidar.mount_offset_m)
    points = _cast_lidar(scene, R_wl, lidar_position, lidar, rng)
    T_world_cam = np.eye(4)
    T_world_cam[:3, :3], T_world_cam[:3, 3] = R_wc, position
    T_world_lidar = np.eye(4)
    T_world_lidar[:3, :3], T_world_lidar[:3, 3] = R_wl, lidar_position
    T_cam_from_lidar = np.linalg.inv(T_world_cam) @ T_world_lidar
    lidar_depth = project_points_to_depth(points, T_cam_from_lidar, K, (height, width))
    return Frame(rgb, depth, label, points, lidar_depth, K, T_cam_from_lidar, scene.seed, scene.family, stamp)


def _cast_lidar(scene: Scene, R_wl: np.ndarray, origin: np.ndarray, cfg: LidarConfig,
                rng: np.random.Generator) -> np.ndarray:
    """Ray-cast every beam: visibility from a z-buffer of the LiDAR's view, range from the hit plane."""
    dirs = _beam_directions(cfg)  # lidar frame
    opt = dirs @ _LIDAR_FROM_OPTICAL  # optical coordinates of each beam: (x, y, z) = (-y_l, -z_l, x_l)
    front = opt[:, 2] > 0.05
    tan_x = np.abs(opt[front, 0] / opt[front, 2]).max()
    tan_y = np.abs(opt[front, 1] / opt[front, 2]).max()
    # Virtual pinhole with about the beams' angular resolution.
    f = 1.0 / math.radians(cfg.azimuth_step_deg * 0.8)
    width = int(2 * tan_x * f) + 2
    height = int(2 * tan_y * f) + 2
    K = intrinsics_matrix(f, f, width / 2, height / 2)
    R_w_opt = R_wl @ _LIDAR_FROM_OPTICAL
    face, _ = rasterize(scene, R_w_opt, origin, K, (height, width))
    d = opt[front]
    u = np.clip(np.round(f * d[:, 0] / d[:, 2] + width / 2).astype(np.int64), 0, width - 1)
    v = np.clip(np.round(f * d[:, 1] / d[:, 2] + height / 2).astype(np.int64), 0, height - 1)
    hit_face = face[v, u]
    hit = hit_face >= 0
    beam_lidar = dirs[front][hit]
    faces = hit_face[hit]
    tables = scene_tables(scene)
    normals = tables["normal"][faces]
    anchors = tables["vertices"][faces, 0]
    beam_world = beam_lidar @ R_wl.T
    denom = np.sum(normals * beam_world, axis=1)
    rng_m = np.sum(normals * (anchors - origin), axis=1) / np.where(np.abs(denom) > 1e-9, denom, np.nan)
    ok = np.isfinite(rng_m) & (rng_m > 0.3) & (rng_m < cfg.max_range_m) & (rng.random(len(rng_m)) >= cfg.dropout)
    rng_m = rng_m[ok] + rng.normal(0, cfg.range_noise_m, int(ok.sum()))
    xyz = beam_lidar[ok] * rng_m[:, None]
    classes = tables["class_id"][faces[ok]]
    intensity = np.clip(_REFLECTIVITY[classes] + rng.normal(0, 0.03, len(classes)), 0, 1)
    return np.concatenate([xyz, intensity[:, None]], axis=1).astype(np.float32)


def render_frame(seed: int, width: int = 512, height: int = 256, lidar: LidarConfig | None = None) -> Frame:
    """The frame of a seed: its scene seen from the start of the street."""
    return render(generate_scene(seed), width, height, lidar=lidar)


def drive(seed: int, n_frames: int, rate_hz: float = 10.0, speed_mps: float = 8.0, width: int = 512,
          height: int = 256, lidar: LidarConfig | None = None):
    """Frames of a drive down the street of one scene, at `rate_hz`, with stamps from 0."""
    scene = generate_scene(seed, length=160.0 + n_frames * speed_mps / rate_hz)
    for i in range(n_frames):
        t = i / rate_hz
        yield render(scene, width, height, z=t * speed_mps, lidar=lidar, stamp=t)
