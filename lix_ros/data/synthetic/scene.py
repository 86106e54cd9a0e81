"""Scene description: materials and textures, polygons, lighting, primitives and roadside objects."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from lix_ros.data.synthetic.families import CAR, PERSON, SKY, TRUCK, VEGETATION


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
