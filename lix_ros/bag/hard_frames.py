"""Hard-frame capture: frames where the student and the teacher disagree, written to a size-capped bag.

ROS-free: the A/B node hands it raw (CDR) messages and the two masks' raw bytes. Topics in the bag are
those of `lix-bag synth`, so `lix-bag eval` and `lix-train` (data.source: bag) read them directly.
"""

from __future__ import annotations

import os
import struct
import time
from collections import OrderedDict
from pathlib import Path

from lix_ros.bag.io import CAMERA, CAMERA_INFO, DEPTH, POINTS, STUDENT_OUT, TEACHER_OUT, BagWriter

ROLE_TOPICS = {"image": (CAMERA, "sensor_msgs/msg/Image"), "depth": (DEPTH, "sensor_msgs/msg/Image"),
               "points": (POINTS, "sensor_msgs/msg/PointCloud2"), "camera_info": (CAMERA_INFO,
                                                                                  "sensor_msgs/msg/CameraInfo")}


def cdr_header_stamp(raw: bytes) -> tuple[int, int]:
    """(sec, nanosec) of a CDR-serialised message that starts with std_msgs/Header."""
    if len(raw) < 12:
        raise ValueError("message too short for a header")
    little = raw[1] == 1  # encapsulation: 0x0001 CDR_LE, 0x0000 CDR_BE
    return struct.unpack("<iI" if little else ">iI", raw[4:12])


def check_capture_path(path: Path) -> None:
    """At start-up: the bag's folder must exist or be creatable, and be writable (ValueError naming why)."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a path under a regular file, no permission, read-only file system
        raise ValueError(f"parameter 'hard_frame_bag': cannot create folder {parent} "
                         f"({error.strerror or type(error).__name__})") from None
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"parameter 'hard_frame_bag': folder {parent} is not writable")


class HardFrameRecorder:
    def __init__(self, path: str | Path, threshold: float, max_bytes: int, keep_stamps: int = 60):
        path = Path(path)
        check_capture_path(path)
        if path.exists():  # never overwrite a capture: start a new one beside it
            path = path.with_name(f"{path.name}_{time.strftime('%Y%m%d_%H%M%S')}")
        self.path = path
        self.threshold = threshold
        self.max_bytes = max_bytes
        self.keep = keep_stamps
        self.buffer: OrderedDict[tuple[int, int], dict[str, bytes]] = OrderedDict()
        self.writer: BagWriter | None = None
        self.captured = 0
        self.skipped_for_size = 0

    def add_input(self, role: str, raw: bytes) -> None:
        stamp = cdr_header_stamp(raw)
        self.buffer.setdefault(stamp, {})[role] = raw
        self.buffer.move_to_end(stamp)
        while len(self.buffer) > self.keep:
            self.buffer.popitem(last=False)

    def offer(self, stamp: tuple[int, int], disagreement: float, student_raw: bytes, teacher_raw: bytes) -> bool:
        """Write the frame if disagreement > threshold and the bag is under its cap; True when written."""
        if disagreement <= self.threshold:
            return False
        inputs = self.buffer.get(stamp, {})
        if "image" not in inputs:
            return False
        size = sum(len(v) for v in inputs.values()) + len(student_raw) + len(teacher_raw)
        if (self.writer is not None and self.writer.bytes_written + size > self.max_bytes) or size > self.max_bytes:
            self.skipped_for_size += 1
            return False
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = BagWriter(self.path)
        log_time = stamp[0] * 1_000_000_000 + stamp[1]
        for role, raw in inputs.items():
            topic, msgtype = ROLE_TOPICS[role]
            self.writer.write_raw(topic, msgtype, raw, log_time)
        self.writer.write_raw(STUDENT_OUT, "sensor_msgs/msg/Image", student_raw, log_time)
        self.writer.write_raw(TEACHER_OUT, "sensor_msgs/msg/Image", teacher_raw, log_time)
        self.captured += 1
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
