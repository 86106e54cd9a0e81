"""Rendering: z-buffer rasterisation of the polygons, shading and fog, the LiDAR ray cast, frames and drives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from lix_ros.core.geometry import intrinsics_matrix, project_points_to_depth
from lix_ros.data.synthetic.families import _NEAR, _REFLECTIVITY, SKY_FACE, LidarConfig
from lix_ros.data.synthetic.scene import Scene, _textures, scene_tables
from lix_ros.data.synthetic.street import generate_scene


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
