"""`lix-bag play`: publish a bag's messages at their recorded timing (raw CDR, no re-encoding).

Lockstep pacing (`sync_topics`): after each camera frame the player waits until every sync topic has
answered with a message carrying that frame's header stamp (or `sync_timeout` passes) before it moves
on; the recorded spacing between frames is kept, the waits are added. Nodes that drop stale frames
under load then see every frame, so an evaluation through live nodes is complete on any machine.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field, replace
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


@dataclass
class PlayOptions:
    """How `play_bag` replays. min_subscribers: topic -> subscribers to wait for (up to
    `wait_for_subscribers` s; default 1 each). sync_topics / sync_on / sync_timeout: lockstep pacing (module
    docstring); sync_on defaults to the bag's camera topic."""

    rate: float = 1.0
    loop: bool = False
    start_s: float = 0.0
    topics: list[str] | None = None
    clock: bool = False
    qos: str = "reliable"
    depth: int = 10
    wait_for_subscribers: float = 0.0
    max_loops: int | None = None
    quiet: bool = False
    min_subscribers: dict[str, int] = field(default_factory=dict)
    sync_topics: list[str] | None = None
    sync_on: str | None = None
    sync_timeout: float = 10.0
    camera: str = CAMERA  # the bag's camera topic: what lockstep follows and --wait waits for by default
    remap: dict[str, str] = field(default_factory=dict)  # bag topic -> published topic

    def published(self, topic: str) -> str:
        return self.remap.get(topic, topic)


def play_bag(path: str | Path, options: PlayOptions | None = None, **overrides) -> dict:
    """Replay; returns counts and the timing error (actual - scheduled publish time) in ms.
    Options as a PlayOptions or as keywords (`play_bag(bag, rate=2.0, loop=True)`)."""
    options = replace(options or PlayOptions(), **overrides)
    if options.rate <= 0:
        raise BagError(f"--rate must be > 0, got {options.rate}")
    if options.sync_timeout <= 0:
        raise BagError(f"--sync-timeout must be > 0, got {options.sync_timeout}")
    reader = open_reader(path)
    try:
        available = topic_types(reader)
        chosen, classes = _choose_topics(path, available, options)
        length_s = (reader.end_time - reader.start_time) / 1e9
        if options.start_s > length_s:
            raise BagError(f"--start {options.start_s} s is past the end of {path} ({length_s:.2f} s long)")
        sync_on = _sync_topic(chosen, available, options) if options.sync_topics else None
    except BagError:
        reader.close()
        raise
    configure_dds_env()
    import rclpy

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("lix_bag_player", context=context)
    publishers, clock_pub = _publishers(node, chosen, classes, options)
    sync = _StampWaiter(node, context, options.sync_topics) if options.sync_topics else None
    try:
        if options.wait_for_subscribers > 0:
            _wait_for_subscribers(publishers, sync, options)
        timing = _Timing()
        _replay(reader, chosen, publishers, clock_pub, sync, sync_on, options, timing)
    finally:
        time.sleep(0.2)  # let the last messages leave before the participant goes
        if sync is not None:
            sync.close()
        node.destroy_node()
        rclpy.shutdown(context=context)
        reader.close()
    return _summary(timing, chosen, sync, sync_on, options)


def _choose_topics(path, available: dict[str, str], options: PlayOptions) -> tuple[list[str], dict]:
    """The played topics (all by default, /tf_static last) and their message classes."""
    chosen = options.topics or [t for t in available if t != TF_STATIC] + ([TF_STATIC] if TF_STATIC in available
                                                                           else [])
    missing = [t for t in chosen if t not in available]
    if missing:
        raise missing_topics_error(path, missing, available)
    classes = {t: message_class(available[t]) for t in chosen}
    unknown = [f"{t} ({available[t]})" for t, c in classes.items() if c is None]
    if unknown and options.topics:  # asked for explicitly: an error
        raise BagError(f"unknown message type(s) for this ROS install: {', '.join(unknown)}")
    if unknown and not options.quiet:
        print(f"lix-bag play: skipping topics whose message type is not installed: {', '.join(unknown)}")
    chosen = [t for t in chosen if classes[t] is not None]
    for topic in options.remap:
        if topic not in available:
            raise BagError(f"--remap {topic}:=...: the bag has no {topic}; its topics: {', '.join(sorted(available))}")
    published = [options.published(t) for t in chosen]
    for topic in options.min_subscribers:
        if topic not in published:
            raise BagError(f"--min-subscribers names {topic}, which is not played; played: {', '.join(published)}")
    return chosen, classes


def _sync_topic(chosen: list[str], available: dict[str, str], options: PlayOptions) -> str:
    images = [t for t in chosen if available[t] in IMAGE_TYPES]
    sync_on = options.sync_on or (options.camera if options.camera in images else (images[0] if images else None))
    if sync_on not in chosen or available[sync_on] not in IMAGE_TYPES:
        raise BagError(f"--sync-on must be a played image topic; played images: {', '.join(images) or 'none'}")
    return sync_on


def _publishers(node, chosen: list[str], classes: dict, options: PlayOptions):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock

    profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=options.depth,
                         reliability=ReliabilityPolicy.BEST_EFFORT if options.qos == "best_effort"
                         else ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    publishers = {t: node.create_publisher(classes[t], options.published(t), latched if t == TF_STATIC else profile)
                  for t in chosen}
    return publishers, node.create_publisher(Clock, "/clock", 10) if options.clock else None


def _wait_for_subscribers(publishers: dict, sync: _StampWaiter | None, options: PlayOptions) -> None:
    """Wait for the subscribers someone is expected to bring: those of --min-subscribers, else one on the
    camera topic (every lix_ros node reads it; a depth or LiDAR topic may have no reader), else one on each
    played topic; say what is awaited and what never came."""
    by_name = {options.published(t): pub for t, pub in publishers.items() if t != TF_STATIC}
    camera = options.published(options.camera)
    wanted = dict(options.min_subscribers) or ({camera: 1} if camera in by_name else dict.fromkeys(by_name, 1))
    if not options.quiet:
        listing = ", ".join(f"{t} ({n})" for t, n in wanted.items())
        sync_note = f"; publishers of {', '.join(options.sync_topics)}" if sync is not None else ""
        print(f"lix-bag play: waiting up to {options.wait_for_subscribers:g} s for subscribers on {listing}{sync_note}",
              flush=True)
    deadline = time.monotonic() + options.wait_for_subscribers
    while time.monotonic() < deadline and not (
            all(by_name[t].get_subscription_count() >= n for t, n in wanted.items())
            and (sync is None or sync.publishers_seen())):
        time.sleep(0.05)
    short = [f"{t} ({by_name[t].get_subscription_count()} of {n})" for t, n in wanted.items()
             if by_name[t].get_subscription_count() < n]
    if short and not options.quiet:
        print(f"lix-bag play: still waiting for subscribers on {', '.join(short)} after "
              f"{options.wait_for_subscribers:g} s; playing anyway", flush=True)
    time.sleep(1.0)  # matched on our side; give the readers time to match us (best-effort drops until then)


@dataclass
class _Timing:
    errors: list[float] = field(default_factory=list)  # actual - scheduled publish time, ms
    published: int = 0
    loops: int = 0


def _replay(reader, chosen: list[str], publishers: dict, clock_pub, sync: _StampWaiter | None, sync_on: str | None,
            options: PlayOptions, timing: _Timing) -> None:
    from rosgraph_msgs.msg import Clock
    from tqdm import tqdm

    connections = [c for c in reader.connections if c.topic in chosen]
    first = reader.start_time + int(options.start_s * 1e9)
    per_loop = sum(c.msgcount for c in connections)
    bar = tqdm(total=None if options.loop else per_loop, desc="lix-bag play", unit="msg", mininterval=1.0,
               disable=options.quiet)
    pending: tuple[int, int] | None = None  # header stamp of the last camera frame, until the sync topics answer it
    try:
        while True:
            wall_start = time.perf_counter()
            for connection, timestamp, raw in reader.messages(connections=connections, start=first):
                target = wall_start + (timestamp - first) / 1e9 / options.rate
                if pending is not None and connection.topic == sync_on:
                    sync.wait(pending, options.sync_timeout)
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
                timing.errors.append((time.perf_counter() - target) * 1000)
                timing.published += 1
                bar.update(1)
                if sync is not None and connection.topic == sync_on:
                    pending = cdr_header_stamp(raw)
            if pending is not None:
                sync.wait(pending, options.sync_timeout)
                pending = None
            timing.loops += 1
            if not options.loop or (options.max_loops is not None and timing.loops >= options.max_loops):
                break
    except KeyboardInterrupt:
        pass
    finally:
        bar.close()


def _summary(timing: _Timing, chosen: list[str], sync: _StampWaiter | None, sync_on: str | None,
             options: PlayOptions) -> dict:
    array = np.array(timing.errors) if timing.errors else np.zeros(1)
    result = {"published": timing.published, "loops": timing.loops, "topics": chosen,
              "timing_error_ms": {"median": float(np.median(array)), "p99": float(np.percentile(array, 99)),
                                  "max": float(array.max())}}
    if sync is not None:
        result["sync"] = {"topics": list(options.sync_topics), "on": sync_on, "frames": sync.frames,
                          "answered": sync.answered, "timeouts": sync.timeouts,
                          "waited_s": round(sync.waited, 3)}
    if not options.quiet:
        t = result["timing_error_ms"]
        print(f"published {timing.published} messages on {len(chosen)} topics ({timing.loops} loop(s)); timing "
              f"error median {t['median']:.2f} ms, p99 {t['p99']:.2f} ms, max {t['max']:.2f} ms")
        if sync is not None:
            s = result["sync"]
            print(f"lockstep on {sync_on}: {s['answered']} of {s['frames']} frames answered on "
                  f"{', '.join(options.sync_topics)} ({s['timeouts']} timeouts, {s['waited_s']:.1f} s waited)")
    return result
