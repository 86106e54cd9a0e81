"""`lix-bag label`: a copy of a bag with the teacher's masks as pseudo-labels on /lix/teacher/semantic.

A raw drive (camera + depth or LiDAR, no ground truth) becomes training data for the student: `lix-train` with
`data.source: bag` uses ground truth where a frame has it and the teacher's mask otherwise. Every message of the
input is copied unchanged; each camera frame the teacher could run on gains a mono8 mask with the camera's
header, logged right after the camera image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lix_ros.bag.evaluate import EvalOptions, load_teacher
from lix_ros.bag.frames import BagFrames, TopicMap
from lix_ros.bag.hard_frames import cdr_header_stamp
from lix_ros.bag.io import BagError, BagWriter, image_rgb, make_image, open_reader
from lix_ros.core.image_codec import ImageError
from lix_ros.core.pointcloud import PointCloudError
from lix_ros.core.teacher_inputs import teacher_inputs


def _teacher_masks(path: Path, teacher: str | None, topics: TopicMap, lidar_to_camera, quiet: bool
                   ) -> tuple[dict, dict]:
    """camera stamp -> PNG-encoded mask (compressed: a long drive's masks stay small), and counts."""
    frames = BagFrames(path, topics)
    models = load_teacher(path, frames, EvalOptions(teacher=teacher, lidar_to_camera=lidar_to_camera), topics)
    if models.teacher is None:
        frames.reader.close()
        raise BagError(models.teacher_not_run)
    lidar = models.teacher_modality == "lidar"
    masks, stats = {}, {"frames": 0, "labelled": 0, "skipped": 0}
    for frame in tqdm(frames, total=frames.total, desc="lix-bag label", unit="frame", disable=quiet):
        stats["frames"] += 1
        m = frame.messages
        try:
            if "camera_info" not in m or ("points" if lidar else "depth") not in m:
                raise ImageError("no camera_info or geometry with this stamp")
            rgb = image_rgb(m["camera"])
            inputs = teacher_inputs(m["camera"], m["camera_info"], depth=None if lidar else m["depth"],
                                    points=m["points"] if lidar else None, T_cam_from_lidar=models.extrinsic, rgb=rgb)
            ids = models.teacher.predict(inputs.rgb, depth=inputs.depth, lidar_depth=inputs.lidar_depth,
                                         K=inputs.K).ids
        except (ImageError, PointCloudError) as error:
            stats["skipped"] += 1
            stats.setdefault("first_error", str(error))
            continue
        masks[frame.stamp] = (m["camera"].header.frame_id, cv2.imencode(".png", ids)[1].tobytes())
        stats["labelled"] += 1
    return masks, stats


def label_bag(path: str | Path, out: str | Path, teacher: str | None = None, topics: TopicMap | None = None,
              lidar_to_camera: np.ndarray | None = None, storage: str = "mcap", quiet: bool = False) -> dict:
    path, out, topics = Path(path), Path(out), topics or TopicMap()
    if out.exists():
        raise BagError(f"{out} already exists: choose another --out")
    masks, stats = _teacher_masks(path, teacher, topics, lidar_to_camera, quiet)
    reader = open_reader(path)
    try:
        if topics.teacher in {c.topic for c in reader.connections}:
            raise BagError(f"{path} already has {topics.teacher}: it is labelled (lix-train reads it as it is)")
        with BagWriter(out, storage) as writer:
            for connection, log_time, raw in reader.messages():
                writer.write_raw(connection.topic, connection.msgtype, bytes(raw), log_time)
                if connection.topic == topics.camera:
                    sec, nanosec = cdr_header_stamp(bytes(raw))
                    found = masks.get(sec * 1_000_000_000 + nanosec)
                    if found is not None:
                        frame_id, png = found
                        ids = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
                        writer.write(topics.teacher, make_image(sec * 1_000_000_000 + nanosec, frame_id, ids, "mono8"),
                                     log_time)
    finally:
        reader.close()
    return {"out": str(out), "topic": topics.teacher, **stats}
