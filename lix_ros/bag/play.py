"""`lix-bag play`: publish a bag's messages at their recorded timing (raw CDR, no re-encoding).

Lockstep pacing (`sync_topics`): after each camera frame the player waits until every sync topic has
answered with a message carrying that frame's header stamp (or `sync_timeout` passes) before it moves
on; the recorded spacing between frames is kept, the waits are added. Nodes that drop stale frames
under load then see every frame, so an evaluation through live nodes is complete on any machine.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np

from lix_ros.bag.hard_frames import cdr_header_stamp
from lix_ros.bag.io import CAMERA, BagError, missing_topics_error, open_reader, topic_types
from lix_ros.core.constants import TF_STATIC
from lix_ros.core.dds import configure_dds_env


def message_class(msgtype: str):
    package, _, name = msgtype.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        return None


IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


class _StampWaiter:
    """Subscribes to the sync topics (stamped messages) and waits for a given header stamp on all of them."""

    def __init__(self, node, context, topics: list[str]):
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self.node, self.topics = node, list(topics)
        self.seen: dict[str, set[tuple[int, int]]] = {t: set() for t in topics}
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            node.create_subscription(Image, topic, lambda raw, t=topic: self.seen[t].add(cdr_header_stamp(raw)), qos,
                                     raw=True)
        self.frames = self.answered = self.timeouts = 0
        self.waited = 0.0

    def publishers_seen(self) -> bool:
        self.executor.spin_once(timeout_sec=0.0)
        return all(self.node.count_publishers(t) > 0 for t in self.topics)

    def wait(self, stamp: tuple[int, int], timeout: float) -> None:
        """Return once every sync topic carried `stamp` (or after `timeout` s)."""
        start = time.perf_counter()
        self.frames += 1
        while not all(stamp in seen for seen in self.seen.values()):
            if time.perf_counter() - start > timeout:
                self.timeouts += 1
                break
            self.executor.spin_once(timeout_sec=0.005)
        else:
            self.answered += 1
        for seen in self.seen.values():
            seen.discard(stamp)
            if len(seen) > 1000:  # answers to frames already given up on
                seen.clear()
        self.waited += time.perf_counter() - start

    def close(self) -> None:
        self.executor.shutdown()


def play_bag(path: str | Path, rate: float = 1.0, loop: bool = False, start_s: float = 0.0,
             topics: list[str] | None = None, clock: bool = False, qos: str = "reliable", depth: int = 10,
             wait_for_subscribers: float = 0.0, max_loops: int | None = None, quiet: bool = False,
             min_subscribers: dict[str, int] | None = None, sync_topics: list[str] | None = None,
             sync_on: str | None = None, sync_timeout: float = 10.0) -> dict:
    """Replay; returns counts and the timing error (actual - scheduled publish time) in ms.

    min_subscribers: topic -> subscribers to wait for (up to `wait_for_subscribers` s; default 1 each).
    sync_topics / sync_on / sync_timeout: lockstep pacing (module docstring); sync_on defaults to the
    bag's camera topic.
    """
    if rate <= 0:
        raise BagError(f"--rate must be > 0, got {rate}")
    if sync_timeout <= 0:
        raise BagError(f"--sync-timeout must be > 0, got {sync_timeout}")
    reader = open_reader(path)
    available = topic_types(reader)
    chosen = topics or [t for t in available if t != TF_STATIC] + ([TF_STATIC] if TF_STATIC in available
                                                                          else [])
    missing = [t for t in chosen if t not in available]
    if missing:
        reader.close()
        raise missing_topics_error(path, missing, available)
    classes = {t: message_class(available[t]) for t in chosen}
    unknown = [f"{t} ({available[t]})" for t, c in classes.items() if c is None]
    if unknown and topics:  # asked for explicitly: an error
        reader.close()
        raise BagError(f"unknown message type(s) for this ROS install: {', '.join(unknown)}")
    if unknown and not quiet:
        print(f"lix-bag play: skipping topics whose message type is not installed: {', '.join(unknown)}")
    chosen = [t for t in chosen if classes[t] is not None]
    for topic in min_subscribers or {}:
        if topic not in chosen:
            reader.close()
            raise BagError(f"--min-subscribers names {topic}, which is not played; played: {', '.join(chosen)}")
    if sync_topics:
        images = [t for t in chosen if available[t] in IMAGE_TYPES]
        sync_on = sync_on or (CAMERA if CAMERA in images else (images[0] if images else None))
        if sync_on not in chosen or available[sync_on] not in IMAGE_TYPES:
            reader.close()
            raise BagError(f"--sync-on must be a played image topic; played images: {', '.join(images) or 'none'}")

    configure_dds_env()
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock

    profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                         reliability=ReliabilityPolicy.BEST_EFFORT if qos == "best_effort"
                         else ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("lix_bag_player", context=context)
    publishers = {t: node.create_publisher(classes[t], t, latched if t == TF_STATIC else profile) for t in chosen}
    clock_pub = node.create_publisher(Clock, "/clock", 10) if clock else None
    sync = _StampWaiter(node, context, sync_topics) if sync_topics else None
    if wait_for_subscribers > 0:
        wanted = {t: (min_subscribers or {}).get(t, 1) for t in chosen if t != TF_STATIC}
        deadline = time.monotonic() + wait_for_subscribers
        while time.monotonic() < deadline and not (
                all(publishers[t].get_subscription_count() >= n for t, n in wanted.items())
                and (sync is None or sync.publishers_seen())):
            time.sleep(0.05)
        time.sleep(1.0)  # matched on our side; give the readers time to match us (best-effort drops until then)
    connections = [c for c in reader.connections if c.topic in chosen]
    first = reader.start_time + int(start_s * 1e9)
    errors, published, loops = [], 0, 0
    pending: tuple[int, int] | None = None  # header stamp of the last camera frame, until the sync topics answer it
    try:
        while True:
            wall_start = time.perf_counter()
            for connection, timestamp, raw in reader.messages(connections=connections, start=first):
                target = wall_start + (timestamp - first) / 1e9 / rate
                if pending is not None and connection.topic == sync_on:
                    sync.wait(pending, sync_timeout)
                    pending = None
                    late = time.perf_counter() - target
                    if late > 0:  # the nodes took longer than the frame spacing: shift the rest of the timeline
                        wall_start += late
                        target += late
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if clock_pub is not None:
                    msg = Clock()
                    msg.clock.sec, msg.clock.nanosec = timestamp // 1_000_000_000, timestamp % 1_000_000_000
                    clock_pub.publish(msg)
                publishers[connection.topic].publish(bytes(raw))
                errors.append((time.perf_counter() - target) * 1000)
                published += 1
                if sync is not None and connection.topic == sync_on:
                    pending = cdr_header_stamp(raw)
            if pending is not None:
                sync.wait(pending, sync_timeout)
                pending = None
            loops += 1
            if not loop or (max_loops is not None and loops >= max_loops):
                break
    except KeyboardInterrupt:
        pass
    finally:
        time.sleep(0.2)  # let the last messages leave before the participant goes
        if sync is not None:
            sync.close()
        node.destroy_node()
        rclpy.shutdown(context=context)
        reader.close()
    array = np.array(errors) if errors else np.zeros(1)
    result = {"published": published, "loops": loops, "topics": chosen,
              "timing_error_ms": {"median": float(np.median(array)), "p99": float(np.percentile(array, 99)),
                                  "max": float(array.max())}}
    if sync is not None:
        result["sync"] = {"topics": list(sync_topics), "on": sync_on, "frames": sync.frames,
                          "answered": sync.answered, "timeouts": sync.timeouts,
                          "waited_s": round(sync.waited, 3)}
    if not quiet:
        t = result["timing_error_ms"]
        print(f"published {published} messages on {len(chosen)} topics ({loops} loop(s)); timing error median "
              f"{t['median']:.2f} ms, p99 {t['p99']:.2f} ms, max {t['max']:.2f} ms")
        if sync is not None:
            s = result["sync"]
            print(f"lockstep on {sync_on}: {s['answered']} of {s['frames']} frames answered on "
                  f"{', '.join(sync_topics)} ({s['timeouts']} timeouts, {s['waited_s']:.1f} s waited)")
    return result
