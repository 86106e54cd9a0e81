"""Bags as a training source: every camera frame with ground truth (/lix/gt/semantic) or, when a bag has
none, the teacher's recorded output (/lix/teacher/semantic) as pseudo-label. Depth from /camera/depth,
intrinsics from /camera/camera_info, LiDAR depth from /lidar/points and the bag's /tf_static.

Several bags may be given (data.root: a path or a list). Bags are decoded into memory once; the training
harness holds every k-th frame out for val/test (data.val_fraction).
"""

from __future__ import annotations

from pathlib import Path

from lix_ros.bag.frames import BagFrames, TopicMap, tf_static_extrinsic
from lix_ros.bag.io import BagError, image_mono8
from lix_ros.core.image_codec import ImageError
from lix_ros.core.pointcloud import PointCloudError
from lix_ros.core.teacher_inputs import teacher_inputs
from lix_ros.data.classes import sanitize_train_ids
from lix_ros.data.sample import Sample


def bag_samples(path: str | Path, topics: TopicMap | None = None) -> tuple[list[Sample], dict]:
    frames = BagFrames(path, topics or TopicMap())
    extrinsic = tf_static_extrinsic(path) if frames.has("points") else None
    samples, stats = [], {"frames": 0, "labelled_gt": 0, "pseudo_labelled": 0, "unlabelled": 0, "rejected": 0}
    for frame in frames:
        m = frame.messages
        stats["frames"] += 1
        try:
            if "gt" in m:
                label, source = image_mono8(m["gt"]), "labelled_gt"
            elif "teacher" in m:
                label, source = image_mono8(m["teacher"]), "pseudo_labelled"
            else:
                stats["unlabelled"] += 1
                continue
            if "camera_info" not in m:
                raise ImageError("no camera_info with this stamp")
            inputs = teacher_inputs(m["camera"], m["camera_info"], depth=m.get("depth"), points=m.get("points"),
                                    T_cam_from_lidar=extrinsic)
            rgb, K, depth, lidar = inputs.rgb, inputs.K, inputs.depth, inputs.lidar_depth
            if label.shape != rgb.shape[:2]:
                raise ImageError(f"label {label.shape} and image {rgb.shape[:2]} differ")
            label, _ = sanitize_train_ids(label)
        except (ImageError, PointCloudError) as error:
            stats["rejected"] += 1
            stats.setdefault("first_error", str(error))
            continue
        stats[source] += 1
        samples.append(Sample(rgb, label, K, depth, lidar, name=f"{Path(path).name}_{frame.stamp}",
                              meta={"label_source": source}))
    stats["partial"] = frames.partial
    return samples, stats


def load_bag_samples(paths: list, topics: dict | None = None) -> list[Sample]:
    """Every labelled frame of the bags, decoded (the training harness holds every k-th out as val).
    `topics`: the data.topics mapping (camera, camera_info, depth, points, labels, teacher)."""
    topic_map = TopicMap(**{("gt" if k == "labels" else k): v for k, v in (topics or {}).items()})
    samples: list[Sample] = []
    for path in paths:
        found, _ = bag_samples(path, topic_map)
        samples += found
    if not samples:
        raise BagError(f"no labelled frames (ground truth or teacher output) in {', '.join(map(str, paths))}")
    return samples
