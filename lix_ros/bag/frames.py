"""Camera frames of a bag with everything that shares their stamp (GT, depth, LiDAR, info, node outputs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lix_ros.bag.io import (
    MessageStream,
    missing_topics_error,
    open_reader,
    stamp_ns,
    topic_types,
)
from lix_ros.core.constants import CAMERA, CAMERA_INFO, DEPTH, GT, POINTS, STUDENT_OUT, TEACHER_OUT, TF_STATIC


@dataclass(frozen=True)
class TopicMap:
    camera: str = CAMERA
    camera_info: str = CAMERA_INFO
    depth: str = DEPTH
    points: str = POINTS
    gt: str = GT
    student: str = STUDENT_OUT
    teacher: str = TEACHER_OUT

    def roles(self) -> dict[str, str]:
        return {v: k for k, v in self.__dict__.items()}


@dataclass
class BagFrame:
    stamp: int
    messages: dict[str, object] = field(default_factory=dict)  # role -> deserialised message
    log_times: dict[str, int] = field(default_factory=dict)  # role -> log time (ns)


def tf_static_extrinsic(path: str | Path, camera_frame: str | None = None) -> np.ndarray | None:
    """T_camera_from_lidar from the first /tf_static transform of the bag, if any."""
    reader = open_reader(path)
    try:
        if TF_STATIC not in topic_types(reader):
            return None
        for message in MessageStream(reader, [TF_STATIC]):
            for t in message.msg.transforms:
                if camera_frame and t.header.frame_id != camera_frame:
                    continue
                q, p = t.transform.rotation, t.transform.translation
                x, y, z, w = q.x, q.y, q.z, q.w
                R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                              [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                              [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
                T = np.eye(4)
                T[:3, :3], T[:3, 3] = R, [p.x, p.y, p.z]
                return T
    finally:
        reader.close()
    return None


class BagFrames:
    """Iterate camera frames in stamp order; `partial` tells whether the bag ended in a corrupt part."""

    def __init__(self, path: str | Path, topics: TopicMap = TopicMap(), window_s: float = 2.0):
        self.path = Path(path)
        self.topics = topics
        self.reader = open_reader(self.path)
        self.available = topic_types(self.reader)
        if topics.camera not in self.available:
            self.reader.close()
            raise missing_topics_error(self.path, [topics.camera], self.available)
        self.roles = {t: r for t, r in topics.roles().items() if t in self.available}
        self.window_ns = int(window_s * 1e9)
        self.stream = MessageStream(self.reader, list(self.roles))
        self.total = next((c.msgcount for c in self.reader.connections if c.topic == topics.camera), 0)

    @property
    def partial(self) -> bool:
        return self.stream.partial

    def has(self, role: str) -> bool:
        return getattr(self.topics, role) in self.available

    def __iter__(self) -> Iterator[BagFrame]:
        pending: dict[int, BagFrame] = {}
        newest = None
        try:
            for message in self.stream:
                role = self.roles[message.topic]
                try:
                    stamp = stamp_ns(message.msg)
                except AttributeError:
                    continue
                frame = pending.setdefault(stamp, BagFrame(stamp))
                frame.messages[role] = message.msg
                frame.log_times[role] = message.log_time_ns
                # Frames whose stamp is older than the newest stamp by more than the window can no longer
                # gain companions (stamps, not log times: a recording's log times are its own clock).
                newest = stamp if newest is None else max(newest, stamp)
                ready = [s for s in pending if s < newest - self.window_ns]
                for s in sorted(ready):
                    done = pending.pop(s)
                    if "camera" in done.messages:
                        yield done
            for s in sorted(pending):
                if "camera" in pending[s].messages:
                    yield pending[s]
        finally:
            self.reader.close()
