"""generate_scene: a straight street with its roadside, traffic and weather, deterministic per seed."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from lix_ros.data.synthetic.families import (
    BUILDING,
    FENCE,
    POLE,
    ROAD,
    SIDEWALK,
    SIGN,
    TERRAIN,
    VEGETATION,
    WALL,
    family_of,
)
from lix_ros.data.synthetic.scene import (
    TEX_BLOTCHY,
    TEX_BRICKS,
    TEX_FINE,
    TEX_LEAVES,
    Lighting,
    Material,
    Polygon,
    Scene,
    _box,
    _car,
    _ground,
    _material,
    _person,
    _tree,
    _truck,
)


class _Street:
    """Builds a scene in a fixed order of random draws (materials, layout, kerbside, roadside, street
    furniture, traffic, weather, camera): the same seed gives the same scene."""

    def __init__(self, seed: int, length: float):
        self.family = family_of(seed)
        self.rng = np.random.default_rng(seed)
        self.u = self.rng.uniform
        self.seed, self.length = seed, length
        self.polygons: list[Polygon] = []

    def mat(self, base, tex, amp, scale, jitter=0.04) -> Material:
        return _material(self.rng, base, tex, amp, scale, jitter)

    # ------------------------------------------------------------------ materials
    def materials(self) -> None:
        u, mat, family = self.u, self.mat, self.family
        grey = u(0.28, 0.5)
        self.asphalt = asphalt = mat((grey, grey, grey * 1.02), TEX_FINE, u(0.08, 0.2), u(3, 6), jitter=0.015)
        if u() < family.p_shared_ground_material:
            self.sidewalk_mat = replace(asphalt, color=tuple(float(c * u(0.95, 1.05)) for c in asphalt.color))
        else:
            s = u(0.5, 0.75)
            self.sidewalk_mat = mat((s, s * 0.97, s * 0.93), self.rng.choice([TEX_FINE, TEX_BRICKS]), u(0.1, 0.25),
                                    u(1, 3))
        if u() < family.p_shared_ground_material:
            self.terrain_mat = replace(asphalt, color=tuple(float(c * u(0.9, 1.1)) for c in asphalt.color),
                                       texture=TEX_BLOTCHY)
        elif u() < 0.6:
            self.terrain_mat = mat((0.3, 0.45, 0.18), TEX_BLOTCHY, u(0.2, 0.4), u(0.5, 2))
        else:
            self.terrain_mat = mat((0.45, 0.36, 0.25), TEX_BLOTCHY, u(0.2, 0.4), u(0.5, 2))
        concrete = u(0.55, 0.8)
        self.wall_mat = mat((concrete, concrete, concrete * 1.03), TEX_BLOTCHY, u(0.05, 0.15), u(0.3, 1.0))
        self.foliage = mat((0.2, u(0.3, 0.45), 0.12), TEX_LEAVES, u(0.3, 0.5), u(2, 5))
        self.pole_mat = mat((0.5, 0.5, 0.52), TEX_FINE, 0.05, 4)
        self.fence_mat = mat((u(0.35, 0.6),) * 3, TEX_BRICKS, 0.4, u(2, 4))

    def building_mat(self) -> Material:
        u = self.u
        if u() < 0.4:
            return self.mat((u(0.45, 0.7), u(0.25, 0.4), u(0.2, 0.3)), TEX_BRICKS, u(0.2, 0.35), u(1.5, 3))
        b = u(0.35, 0.8)
        return self.mat((b, b * u(0.9, 1.05), b * u(0.85, 1.05)), TEX_BLOTCHY, u(0.05, 0.2), u(0.3, 1))

    def car_mat(self) -> Material:
        u = self.u
        if u() < self.family.p_grey_car:
            return replace(self.asphalt, color=tuple(float(c * u(0.9, 1.15)) for c in self.asphalt.color))
        return self.mat(tuple(self.rng.uniform(0.05, 0.9, 3)), TEX_FINE, 0.05, 2, jitter=0.0)

    # ------------------------------------------------------------------ layout
    def layout(self) -> None:
        u = self.u
        self.road_width = u(*self.family.road_width)
        self.half = self.road_width / 2
        self.curb = u(*self.family.curb_height)
        self.z_start, self.z_end = -20.0, self.length
        self.far = self.z_end + 400.0  # the street continues well past the last object
        self.intersection = None
        if u() < self.family.p_intersection:
            iz = u(18, 0.5 * self.length)
            self.intersection = (iz, iz + u(8, 14))

    def spans(self, z0: float, z1: float) -> list[tuple[float, float]]:
        """Split [z0, z1] around the intersection, which cuts the roadside."""
        crossing = self.intersection
        if crossing is None or crossing[1] <= z0 or crossing[0] >= z1:
            return [(z0, z1)]
        out = []
        if crossing[0] > z0:
            out.append((z0, crossing[0]))
        if crossing[1] < z1:
            out.append((crossing[1], z1))
        return out

    # ------------------------------------------------------------------ road, verges, sidewalks, curbs
    def kerbside(self) -> None:
        u, half, curb, polygons = self.u, self.half, self.curb, self.polygons
        polygons.append(_ground(-half, half, self.z_start, self.far, 0.0, ROAD, self.asphalt))
        self.roadside_extent = {}
        for side in (-1, 1):
            verge = u(0.8, 3.0) if u() < 0.3 else 0.0  # terrain between road and sidewalk
            verge_height = curb if u() < 0.5 else 0.0
            walk = u(1.5, 4.5)
            for z0, z1 in self.spans(self.z_start, self.far):
                self._kerb_span(side, z0, z1, verge, verge_height, walk)
            self.roadside_extent[side] = half + verge + walk
        if self.intersection is not None:
            iz0, iz1 = self.intersection
            polygons.append(_ground(-200, -half, iz0, iz1, 0.0, ROAD, self.asphalt))
            polygons.append(_ground(half, 200, iz0, iz1, 0.0, ROAD, self.asphalt))

    def _kerb_span(self, side: int, z0: float, z1: float, verge: float, verge_height: float, walk: float) -> None:
        inner, curb, polygons = self.half, self.curb, self.polygons
        faces = "l" if side > 0 else "r"
        if verge > 0:
            x_in, x_out = sorted((side * inner, side * (inner + verge)))
            polygons.append(_ground(x_in, x_out, z0, z1, verge_height, TERRAIN, self.terrain_mat))
            if verge_height > 0:
                polygons += _box(side * inner, side * inner, 0.0, verge_height, z0, z1, TERRAIN, self.terrain_mat,
                                 faces=faces)
        ws = inner + verge
        x_in, x_out = sorted((side * ws, side * (ws + walk)))
        polygons.append(_ground(x_in, x_out, z0, z1, curb, SIDEWALK, self.sidewalk_mat))
        # curb face towards the road (or the verge)
        polygons += _box(side * ws, side * ws, verge_height if verge > 0 else 0.0, curb, z0, z1, SIDEWALK,
                         self.sidewalk_mat, faces=faces)
        for zz in (z0, z1):
            if self.intersection is not None and zz in self.intersection:
                nz = "f" if zz == self.intersection[0] else "n"
                polygons += _box(x_in, x_out, 0.0, curb, zz, zz, SIDEWALK, self.sidewalk_mat, faces=nz)

    # ------------------------------------------------------------------ roadside
    def roadside(self) -> None:
        """Buildings, walls, fences with vegetation, or open terrain with trees; a far backdrop."""
        u = self.u
        for side in (-1, 1):
            edge = self.roadside_extent[side]
            for z0, z1 in self.spans(self.z_start, self.z_end):
                z = z0
                while z < z1:
                    kind = self.rng.choice(["building", "wall", "fence", "open"], p=[0.45, 0.2, 0.15, 0.2])
                    seg = min(u(8, 25), z1 - z)
                    if seg < 2:
                        break
                    self._roadside_segment(kind, side, edge, z, seg)
                    z += seg
            # Far backdrop so that gaps show buildings or trees rather than infinite sky at street level.
            bi, bo = sorted((side * (edge + 30), side * (edge + 45)))
            backdrop_is_building = u() < 0.6
            self.polygons += _box(bi, bo, 0.0, u(10, 30), self.z_start, self.z_end,
                                  BUILDING if backdrop_is_building else VEGETATION,
                                  self.building_mat() if backdrop_is_building else self.foliage, faces="lrnf")

    def _roadside_segment(self, kind: str, side: int, edge: float, z: float, seg: float) -> None:
        u, curb, polygons = self.u, self.curb, self.polygons
        if kind == "building":
            setback = u(0.0, 2.0)
            height = u(6, 25)
            depth = u(8, 15)
            x_in, x_out = sorted((side * (edge + setback), side * (edge + setback + depth)))
            polygons += _box(x_in, x_out, 0.0, height, z, z + seg - u(0, 1.5), BUILDING, self.building_mat())
            if setback > 0.3:
                gi, go = sorted((side * edge, side * (edge + setback)))
                polygons.append(_ground(gi, go, z, z + seg, curb, SIDEWALK, self.sidewalk_mat))
        elif kind == "wall":
            wall = self.wall_mat if u() < self.family.p_concrete_wall else self.building_mat()
            height = u(1.5, 4.0)
            x_in, x_out = sorted((side * (edge + 0.2), side * (edge + 0.5)))
            polygons += _box(x_in, x_out, curb, curb + height, z, z + seg, WALL, wall)
            if u() < 0.5:  # buildings behind the wall
                bi, bo = sorted((side * (edge + u(4, 8)), side * (edge + u(14, 20))))
                polygons += _box(bi, bo, 0.0, u(8, 25), z, z + seg, BUILDING, self.building_mat())
        elif kind == "fence":
            x_in, x_out = sorted((side * (edge + 0.1), side * (edge + 0.15)))
            polygons += _box(x_in, x_out, curb, curb + u(1.0, 2.0), z, z + seg, FENCE, self.fence_mat)
            hi, ho = sorted((side * (edge + 1.0), side * (edge + u(2.5, 5))))
            polygons += _box(hi, ho, 0.0, u(1.5, 3.5), z, z + seg, VEGETATION, self.foliage)
        else:
            ti, to = sorted((side * edge, side * (edge + 30)))
            polygons.append(_ground(ti, to, z, z + seg, curb * u(0, 1), TERRAIN, self.terrain_mat))
            for _ in range(self.rng.integers(0, 3)):
                tx = side * (edge + u(2, 12))
                tz = z + u(0, seg)
                polygons += _tree(self.rng, tx, tz, curb, self.foliage)

    # ------------------------------------------------------------------ street furniture, traffic, people
    def furniture(self) -> None:
        """Poles with signs, and trees, on the sidewalks."""
        u, curb = self.u, self.curb
        for side in (-1, 1):
            x = side * (self.half + 0.4 + u(0, 0.3))
            z = u(3, 15)
            while z < self.z_end:
                if self.intersection is None or not (self.intersection[0] - 1 < z < self.intersection[1] + 1):
                    r = u(0.06, 0.12)
                    h = u(3.5, 8)
                    self.polygons += _box(x - r, x + r, curb, curb + h, z - r, z + r, POLE, self.pole_mat)
                    if u() < 0.4:
                        sw = u(0.5, 0.9)
                        sy = curb + u(2.2, 3.0)
                        sign = self.mat((u(0.6, 0.95), u(0.1, 0.9), u(0.1, 0.9)), TEX_FINE, 0.05, 2)
                        self.polygons += _box(x - sw / 2, x + sw / 2, sy, sy + sw, z - r - 0.03, z - r - 0.01, SIGN,
                                              sign, faces="n")
                    elif u() < 0.3:
                        self.polygons += _tree(self.rng, x + side * 1.0, z + 3, curb, self.foliage)
                z += u(10, 30)

    def traffic(self) -> None:
        """Moving and parked cars and trucks on the road; people on the sidewalks."""
        u, rng, half, family = self.u, self.rng, self.half, self.family
        n_cars = rng.poisson(u(*family.cars_per_100m) * self.length / 100)
        lane_centres = np.linspace(-half + 1.5, half - 1.5, max(1, int(self.road_width // 3)))
        for _ in range(n_cars):
            cz = u(4, self.z_end)
            if u() < 0.35:
                cx = rng.choice([-1, 1]) * (half - 1.1)  # parked at the curb
            else:
                cx = rng.choice(lane_centres) + u(-0.3, 0.3)
            vehicle = _truck if u() < 0.15 else _car
            self.polygons += vehicle(rng, cx, cz, self.car_mat())
        n_people = rng.poisson(u(*family.people_per_100m) * self.length / 100)
        for _ in range(n_people):
            side = rng.choice([-1, 1])
            px = side * (half + u(0.6, 2.5))
            self.polygons += _person(rng, px, u(3, self.z_end), self.curb,
                                     self.mat(tuple(rng.uniform(0.1, 0.8, 3)), TEX_FINE, 0.1, 3))

    # ------------------------------------------------------------------ weather, light and the camera
    def weather(self) -> Lighting:
        u, family = self.u, self.family
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
        return Lighting(sun, u(*family.sun_strength), u(*family.brightness), tint, fog_density, fog_color,
                        sky_top, sky_horizon, u(*family.image_noise))

    def scene(self, lighting: Lighting) -> Scene:
        u, family = self.u, self.family
        return Scene(
            seed=self.seed,
            family=family.name,
            polygons=self.polygons,
            lighting=lighting,
            road_width=self.road_width,
            camera_height=u(*family.camera_height),
            camera_x=u(-0.3, 0.3) * self.road_width / 2,
            camera_pitch=math.radians(u(*family.camera_pitch_deg)),
            camera_roll=math.radians(u(*family.camera_roll_deg)),
            camera_yaw=math.radians(u(*family.camera_yaw_deg)),
            horizontal_fov=math.radians(u(*family.horizontal_fov_deg)),
            length=self.length,
        )


def generate_scene(seed: int, length: float = 160.0) -> Scene:
    """Build the scene for a seed: a straight street with its roadside, traffic and weather."""
    street = _Street(seed, length)
    street.materials()
    street.layout()
    street.kerbside()
    street.roadside()
    street.furniture()
    street.traffic()
    return street.scene(street.weather())
