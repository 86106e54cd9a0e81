"""`lix-bag record`: record live topics (raw CDR) to a ROS 2 bag."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from lix_ros.bag.io import BagError, BagWriter
from lix_ros.bag.play import message_class
from lix_ros.core.dds import configure_dds_env


def record_topics(path: str | Path, topics: list[str], duration: float | None = None, storage: str = "mcap",
                  discovery_timeout: float = 10.0, stop_file: str | Path | None = None, quiet: bool = False,
                  ready_file: str | Path | None = None, ready_topics: list[str] | None = None) -> dict:
    """Record until `duration` s, SIGINT/SIGTERM, or until `stop_file` exists; returns message counts.

    `ready_file` is created once every topic of `ready_topics` (default: all) is subscribed, so a caller can
    start the publishers without losing first messages (volatile topics deliver nothing sent before the match).
    """
    waiting_for = set(topics if ready_topics is None else ready_topics)
    if not waiting_for <= set(topics):
        raise BagError(f"ready topics {sorted(waiting_for - set(topics))} are not among the recorded topics")
    if not topics:
        raise BagError("no topics to record")
    configure_dds_env()
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("lix_bag_recorder", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    writer = BagWriter(path, storage)
    counts = {t: 0 for t in topics}
    types: dict[str, str] = {}
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    previous = [signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)]

    def subscribe(topic: str, type_name: str) -> None:
        cls = message_class(type_name)
        if cls is None:
            raise BagError(f"unknown message type {type_name} on {topic}")
        infos = node.get_publishers_info_by_topic(topic)
        reliable = infos and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                         reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)
        msgtype = type_name

        def on_message(raw: bytes, topic=topic) -> None:
            writer.write_raw(topic, msgtype, raw, time.time_ns())
            counts[topic] += 1

        node.create_subscription(cls, topic, on_message, qos, raw=True)
        types[topic] = type_name

    try:
        start = time.monotonic()
        last_look = -1.0
        warned = False
        while not stop["now"]:
            now = time.monotonic()
            if len(types) < len(topics) and now - last_look > 0.2:  # keep discovering late publishers
                last_look = now
                graph = dict(node.get_topic_names_and_types())
                for topic in topics:
                    if topic not in types and topic in graph:
                        subscribe(topic, graph[topic][0])
                if ready_file is not None and waiting_for <= types.keys():
                    Path(ready_file).touch()
                if not warned and len(types) < len(topics) and now - start > discovery_timeout and not quiet:
                    warned = True
                    print(f"lix-bag record: not published yet: {sorted(set(topics) - set(types))}")
            executor.spin_once(timeout_sec=0.02)
            if duration is not None and now - start > duration:
                break
            if stop_file is not None and Path(stop_file).exists():
                break
    finally:
        for s, handler in zip((signal.SIGINT, signal.SIGTERM), previous):
            signal.signal(s, handler)
        writer.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    if not quiet:
        listing = ", ".join(f"{t}={n}" for t, n in counts.items())
        print(f"recorded {sum(counts.values())} messages to {path}: {listing}")
    return {"path": str(path), "counts": counts, "types": types}
