"""`lix-bag synth`: a drive from the synthetic generator as a ROS 2 bag.

Topics (all stamped with the frame's time, log time = stamp; names changeable with a TopicMap / the CLI's
topic options):
  /camera/image_raw    sensor_msgs/Image rgb8            frame camera_optical_frame
  /camera/camera_info  sensor_msgs/CameraInfo
  /camera/depth        sensor_msgs/Image 32FC1 metres (0 = no return)
  /lidar/points        sensor_msgs/PointCloud2 x, y, z, intensity   frame lidar
  /lix/gt/semantic     sensor_msgs/Image mono8 Cityscapes train ids
  /tf_static           tf2_msgs/TFMessage camera_optical_frame <- lidar (once)
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from lix_ros.bag.frames import TopicMap
from lix_ros.bag.io import (
    BagWriter,
    make_camera_info,
    make_image,
    make_pointcloud,
    make_static_tf,
)
from lix_ros.core.constants import LIDAR_BEAMS, RENDER_SIZE, TF_STATIC
from lix_ros.data.synthetic import LidarConfig, drive

CAMERA_FRAME, LIDAR_FRAME = "camera_optical_frame", "lidar"
START_NS = 1_700_000_000 * 1_000_000_000  # a fixed epoch so the same seed gives the same bag


def write_synthetic_bag(path: str | Path, seed: int, frames: int, rate_hz: float = 10.0, width: int = RENDER_SIZE[1],
                        height: int = RENDER_SIZE[0], storage: str = "mcap", beams: int = LIDAR_BEAMS,
                        quiet: bool = False, topics: TopicMap | None = None) -> dict:
    topics = topics or TopicMap()
    if frames < 1 or rate_hz <= 0:
        raise ValueError("frames must be >= 1 and rate > 0")
    lidar = LidarConfig(beams=beams)
    counts = {}
    with BagWriter(path, storage) as bag:
        for i, frame in enumerate(tqdm(drive(seed, frames, rate_hz, width=width, height=height, lidar=lidar),
                                       total=frames, desc="synth bag", unit="frame", disable=quiet)):
            stamp = START_NS + round(frame.stamp * 1e9)
            if i == 0:
                bag.write(TF_STATIC, make_static_tf(stamp, CAMERA_FRAME, LIDAR_FRAME, frame.T_cam_from_lidar), stamp)
            messages = {
                topics.camera: make_image(stamp, CAMERA_FRAME, frame.rgb, "rgb8"),
                topics.camera_info: make_camera_info(stamp, CAMERA_FRAME, frame.K, height, width),
                topics.depth: make_image(stamp, CAMERA_FRAME, frame.depth, "32FC1"),
                topics.points: make_pointcloud(stamp, LIDAR_FRAME, frame.lidar_points),
                topics.gt: make_image(stamp, CAMERA_FRAME, frame.label, "mono8"),
            }
            for topic, msg in messages.items():
                bag.write(topic, msg, stamp)
                counts[topic] = counts.get(topic, 0) + 1
        T = frame.T_cam_from_lidar
    return {"path": str(path), "frames": frames, "rate_hz": rate_hz, "topics": counts,
            "lidar_to_camera": T.reshape(-1).tolist()}
