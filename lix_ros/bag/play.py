"""`lix-bag play`: publish a bag's messages at their recorded timing (raw CDR, no re-encoding)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np

from lix_ros.bag.io import BagError, open_reader, topic_types
from lix_ros.dds import configure_dds_env


def message_class(msgtype: str):
    package, _, name = msgtype.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        return None


def play_bag(path: str | Path, rate: float = 1.0, loop: bool = False, start_s: float = 0.0,
             topics: list[str] | None = None, clock: bool = False, qos: str = "reliable", depth: int = 10,
             wait_for_subscribers: float = 0.0, max_loops: int | None = None, quiet: bool = False) -> dict:
    """Replay; returns counts and the timing error (actual - scheduled publish time) in ms."""
    if rate <= 0:
        raise BagError(f"--rate must be > 0, got {rate}")
    reader = open_reader(path)
    available = topic_types(reader)
    chosen = topics or [t for t in available if t != "/tf_static"] + (["/tf_static"] if "/tf_static" in available
                                                                          else [])
    missing = [t for t in chosen if t not in available]
    if missing:
        reader.close()
        raise BagError(f"bag {path} has no topic {', '.join(missing)}; it has: {', '.join(sorted(available))}")
    classes = {t: message_class(available[t]) for t in chosen}
    unknown = [f"{t} ({available[t]})" for t, c in classes.items() if c is None]
    if unknown and topics:  # asked for explicitly: an error
        reader.close()
        raise BagError(f"unknown message type(s) for this ROS install: {', '.join(unknown)}")
    if unknown and not quiet:
        print(f"lix-bag play: skipping topics whose message type is not installed: {', '.join(unknown)}")
    chosen = [t for t in chosen if classes[t] is not None]

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
    publishers = {t: node.create_publisher(classes[t], t, latched if t == "/tf_static" else profile) for t in chosen}
    clock_pub = node.create_publisher(Clock, "/clock", 10) if clock else None
    if wait_for_subscribers > 0:
        deadline = time.monotonic() + wait_for_subscribers
        while time.monotonic() < deadline and not all(p.get_subscription_count() for t, p in publishers.items()
                                                       if t != "/tf_static"):
            time.sleep(0.05)
        time.sleep(0.3)
    connections = [c for c in reader.connections if c.topic in chosen]
    first = reader.start_time + int(start_s * 1e9)
    errors, published, loops = [], 0, 0
    try:
        while True:
            wall_start = time.perf_counter()
            for connection, timestamp, raw in reader.messages(connections=connections, start=first):
                target = wall_start + (timestamp - first) / 1e9 / rate
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
            loops += 1
            if not loop or (max_loops is not None and loops >= max_loops):
                break
    except KeyboardInterrupt:
        pass
    finally:
        time.sleep(0.2)  # let the last messages leave before the participant goes
        node.destroy_node()
        rclpy.shutdown(context=context)
        reader.close()
    array = np.array(errors) if errors else np.zeros(1)
    result = {"published": published, "loops": loops, "topics": chosen,
              "timing_error_ms": {"median": float(np.median(array)), "p99": float(np.percentile(array, 99)),
                                  "max": float(array.max())}}
    if not quiet:
        t = result["timing_error_ms"]
        print(f"published {published} messages on {len(chosen)} topics ({loops} loop(s)); timing error median "
              f"{t['median']:.2f} ms, p99 {t['p99']:.2f} ms, max {t['max']:.2f} ms")
    return result
