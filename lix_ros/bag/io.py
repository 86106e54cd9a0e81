"""Reading and writing ROS 2 bags with `rosbags` (no ROS install needed) and converting their messages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

# Topic names written by `lix-bag synth` and read by default by `lix-bag eval` (re-exported for the bag tools).
from lix_ros.core.constants import (  # noqa: F401 - re-exported
    CAMERA,
    CAMERA_INFO,
    DEPTH,
    GT,
    POINTS,
    STUDENT_OUT,
    TEACHER_OUT,
    TF_STATIC,
)
from lix_ros.core.image_codec import ImageError, decode_color, decode_depth
from lix_ros.data.sample import DataError

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}



class BagError(DataError):
    """A bag that cannot be used as asked; the message says what was wrong."""


def open_reader(path: str | Path, salvage: bool = True):
    """A rosbags Reader; for a truncated MCAP (no footer) a SalvagedBag with what could be read."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    try:
        reader = Reader(path)
        reader.open()
        return reader
    except Exception as error:  # rosbags raises several types for unreadable or truncated bags
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    mcaps = [path] if path.suffix == ".mcap" else sorted(path.glob("*.mcap")) if path.is_dir() else []
    if salvage and len(mcaps) == 1:
        from lix_ros.bag.salvage import SalvagedBag

        try:
            salvaged = SalvagedBag(mcaps[0])
        except (OSError, ValueError):
            salvaged = None
        if salvaged is not None and salvaged.connections:
            return salvaged
    raise BagError(f"cannot open bag {path}: {reason}")


def topic_types(reader: Reader) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def topic_counts(path: str | Path) -> dict[str, int]:
    """Messages per topic of the bag at `path` (summed over its connections)."""
    reader = open_reader(path)
    counts: dict[str, int] = {}
    try:
        for connection in reader.connections:
            counts[connection.topic] = counts.get(connection.topic, 0) + connection.msgcount
    finally:
        reader.close()
    return counts


def missing_topics_error(path: Path, missing: list[str], available: dict[str, str], what: str = "topic"
                         ) -> BagError:
    """The one error for topics a bag lacks: names them and lists what the bag has (with types)."""
    return BagError(f"bag {path} has no {what} {', '.join(missing)}; it has: "
                    + ", ".join(f"{t} ({m})" for t, m in sorted(available.items())))


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    log_time_ns: int
    msg: object


class MessageStream:
    """Deserialised messages of chosen topics in log-time order; stops (partial = True) at a corrupt part."""

    def __init__(self, reader: Reader, topics: list[str] | None = None, start_ns: int | None = None):
        self.reader = reader
        self.connections = [c for c in reader.connections if topics is None or c.topic in topics]
        self.start_ns = start_ns
        self.partial = bool(getattr(reader, "partial", False))  # a salvaged (truncated) bag
        self.partial_reason = getattr(reader, "partial_reason", "")
        self.unknown_types: set[str] = set()

    def __iter__(self) -> Iterator[BagMessage]:
        iterator = self.reader.messages(connections=self.connections, start=self.start_ns)
        while True:
            try:
                connection, timestamp, raw = next(iterator)
            except StopIteration:
                return
            except Exception as error:  # truncated chunk, bad record: keep what was read
                self.partial = True
                self.partial_reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                return
            if connection.msgtype not in TYPESTORE.types:
                self.unknown_types.add(connection.msgtype)
                continue
            try:
                msg = TYPESTORE.deserialize_cdr(raw, connection.msgtype)
            except Exception as error:
                self.partial = True
                self.partial_reason = f"undecodable {connection.msgtype} on {connection.topic}: {error}"
                continue
            yield BagMessage(connection.topic, connection.msgtype, timestamp, msg)


def stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def image_rgb(msg) -> np.ndarray:
    return decode_color(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data), msg.is_bigendian)


def image_mono8(msg) -> np.ndarray:
    if msg.encoding != "mono8":
        raise ImageError(f"expected a mono8 mask, got {msg.encoding!r}")
    return np.frombuffer(bytes(msg.data), np.uint8, count=msg.height * msg.step).reshape(msg.height, msg.step)[
        :, : msg.width].copy()


def image_depth(msg) -> np.ndarray:
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data), msg.is_bigendian)[0]



# ------------------------------------------------------------------ building messages
def header(stamp_ns_value: int, frame_id: str):
    t = TYPESTORE.types
    sec, nanosec = divmod(stamp_ns_value, 1_000_000_000)
    stamp = t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def make_image(stamp: int, frame_id: str, array: np.ndarray, encoding: str):
    array = np.ascontiguousarray(array)
    step = array.shape[1] * array.itemsize * (array.shape[2] if array.ndim == 3 else 1)
    return TYPESTORE.types["sensor_msgs/msg/Image"](header=header(stamp, frame_id), height=array.shape[0],
                                                    width=array.shape[1], encoding=encoding, is_bigendian=0,
                                                    step=step, data=np.frombuffer(array.tobytes(), np.uint8))


def make_camera_info(stamp: int, frame_id: str, K: np.ndarray, height: int, width: int):
    t = TYPESTORE.types
    P = np.zeros((3, 4))
    P[:, :3] = K
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return t["sensor_msgs/msg/CameraInfo"](
        header=header(stamp, frame_id), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.asarray(K, np.float64).reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1),
        binning_x=0, binning_y=0, roi=roi)


def make_pointcloud(stamp: int, frame_id: str, points_xyzi: np.ndarray):
    t = TYPESTORE.types
    points = np.ascontiguousarray(points_xyzi, dtype="<f4")
    fields = [t["sensor_msgs/msg/PointField"](name=n, offset=4 * i, datatype=7, count=1)
              for i, n in enumerate(("x", "y", "z", "intensity"))]
    return t["sensor_msgs/msg/PointCloud2"](header=header(stamp, frame_id), height=1, width=len(points),
                                            fields=fields, is_bigendian=False, point_step=16,
                                            row_step=16 * len(points), data=np.frombuffer(points.tobytes(), np.uint8),
                                            is_dense=True)


def make_static_tf(stamp: int, parent: str, child: str, T_parent_from_child: np.ndarray):
    t = TYPESTORE.types
    R = T_parent_from_child[:3, :3]
    # rotation matrix -> quaternion (w >= 0)
    w = np.sqrt(max(1e-12, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = (R[2, 1] - R[1, 2]) / (4 * w)
    y = (R[0, 2] - R[2, 0]) / (4 * w)
    z = (R[1, 0] - R[0, 1]) / (4 * w)
    transform = t["geometry_msgs/msg/Transform"](
        translation=t["geometry_msgs/msg/Vector3"](*(float(v) for v in T_parent_from_child[:3, 3])),
        rotation=t["geometry_msgs/msg/Quaternion"](x=float(x), y=float(y), z=float(z), w=float(w)))
    stamped = t["geometry_msgs/msg/TransformStamped"](header=header(stamp, parent), child_frame_id=child,
                                                      transform=transform)
    return t["tf2_msgs/msg/TFMessage"](transforms=[stamped])


def bag_qos(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Qos:
    """An offered QoS profile as rosbag2 stores it per connection (`ros2 bag play` republishes with it)."""
    infinite = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return Qos(history=QosHistory.KEEP_LAST, depth=depth,
               reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
               deadline=infinite, lifespan=infinite, liveliness=QosLiveliness.AUTOMATIC,
               liveliness_lease_duration=infinite, avoid_ros_namespace_conventions=False)


SENSOR_QOS = bag_qos(reliable=False, depth=5)  # cameras, depth, LiDAR: sensor-data QoS
LATCHED_QOS = bag_qos(transient_local=True, depth=1)  # /tf_static: late listeners still get it
RELIABLE_QOS = bag_qos()


def topic_qos(topic: str) -> Qos:
    """What lix_ros's own topics are offered with."""
    if topic == TF_STATIC:
        return LATCHED_QOS
    return SENSOR_QOS if topic in (CAMERA, CAMERA_INFO, DEPTH, POINTS) else RELIABLE_QOS


class BagWriter:
    """A rosbags Writer with one connection per topic, created on first use, with its offered QoS."""

    def __init__(self, path: str | Path, storage: str = "mcap"):
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; expected one of {sorted(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"output bag already exists: {self.path}")
        self.writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self.writer.open()
        self.connections = {}
        self.bytes_written = 0

    def write(self, topic: str, msg, log_time_ns: int, qos: Qos | None = None) -> None:
        self.write_raw(topic, msg.__msgtype__, TYPESTORE.serialize_cdr(msg, msg.__msgtype__), log_time_ns, qos)

    def write_raw(self, topic: str, msgtype: str, data: bytes, log_time_ns: int, qos: Qos | None = None) -> None:
        """Write; the connection is made on a topic's first message, offered with `qos` (default: what
        lix_ros offers on that topic)."""
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=TYPESTORE, offered_qos_profiles=[qos or topic_qos(topic)])
        self.writer.write(self.connections[topic], int(log_time_ns), data)
        self.bytes_written += len(data)

    def flush(self) -> None:
        """Put every message written so far on disk as a complete MCAP chunk, so a process killed later
        loses nothing before this point (`lix-bag repair` recovers it). rosbags closes a chunk only at
        1 MiB; this reaches into its MCAP writer (a no-op for sqlite3, which commits per message)."""
        storage = getattr(self.writer, "storage", None)
        chunk = getattr(storage, "chunk", None)
        if chunk is None or chunk.bio.tell() == 0:
            return
        storage.close_chunk()
        storage.bio.flush()
        os.fsync(storage.bio.fileno())

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def repair_bag(path: str | Path, out: str | Path) -> dict[str, int]:
    """Rewrite what can be read of a bag (e.g. an MCAP cut by a killed recorder, no footer, no
    metadata.yaml) as a normal bag that standard readers open; returns messages per topic."""
    reader = open_reader(path)
    counts: dict[str, int] = {}
    try:
        with BagWriter(out) as writer:
            for connection, timestamp, raw in reader.messages():
                writer.write_raw(connection.topic, connection.msgtype, bytes(raw), timestamp)
                counts[connection.topic] = counts.get(connection.topic, 0) + 1
    finally:
        reader.close()
    return counts
