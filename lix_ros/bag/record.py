"""`lix-bag record`: record live topics (raw CDR) to a ROS 2 bag."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from lix_ros.bag.io import BagError, BagWriter, bag_qos
from lix_ros.bag.play import message_class
from lix_ros.core.dds import configure_dds_env

FLUSH_EVERY_S = 0.5  # a killed recorder loses at most the last half second (lix-bag repair keeps the rest)
STATUS_EVERY_S = 5.0


def record_topics(path: str | Path, topics: list[str], duration: float | None = None, storage: str = "mcap",
                  discovery_timeout: float = 10.0, stop_file: str | Path | None = None, quiet: bool = False,
                  ready_file: str | Path | None = None, ready_topics: list[str] | None = None) -> dict:
    """Record until `duration` s, SIGINT/SIGTERM, or until `stop_file` exists; returns message counts.

    `ready_file` is created once every topic of `ready_topics` (default: all) is subscribed, so a caller can
    start the publishers without losing first messages (volatile topics deliver nothing sent before the match).
    A topic can only be subscribed once something publishes it (its type comes from the graph): after
    `discovery_timeout` s the file is created anyway, naming the topics still unpublished.
    """
    waiting_for = set(topics if ready_topics is None else ready_topics)
    if not waiting_for <= set(topics):
        raise BagError(f"ready topics {sorted(waiting_for - set(topics))} are not among the recorded topics")
    if not topics:
        raise BagError("no topics to record")
    configure_dds_env()
    import rclpy

    context = rclpy.context.Context()
    rclpy.init(context=context)
    recorder = _Recorder(rclpy.create_node("lix_bag_recorder", context=context), context, BagWriter(path, storage),
                         topics)
    stop = {"now": False}
    previous = [signal.signal(s, lambda *_: stop.update(now=True)) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        start = time.monotonic()
        warned = False
        flushed = start
        ready = ready_file is None
        reported = start
        if not ready and not quiet:
            print(f"lix-bag record: {ready_file} once these are subscribed: {', '.join(sorted(waiting_for))}",
                  flush=True)
        while not stop["now"]:
            now = time.monotonic()
            looked = recorder.discover(now)
            missing = sorted(set(topics) - set(recorder.types))
            timed_out = now - start > discovery_timeout
            if not ready and looked and (waiting_for <= recorder.types.keys() or timed_out):
                Path(ready_file).touch()
                ready = True
            if not warned and missing and timed_out and not quiet:
                warned = True
                print(f"lix-bag record: not published after {discovery_timeout:g} s (recording the rest): "
                      f"{', '.join(missing)}", flush=True)
            recorder.executor.spin_once(timeout_sec=0.02)
            if now - flushed >= FLUSH_EVERY_S:  # bounds what a SIGKILL can lose
                recorder.writer.flush()
                flushed = now
            if not quiet and now - reported >= STATUS_EVERY_S:
                reported = now
                print(f"lix-bag record: {now - start:.0f} s, {sum(recorder.counts.values())} messages "
                      f"({len(recorder.types)} of {len(topics)} topics published)", file=sys.stderr, flush=True)
            if duration is not None and now - start > duration:
                break
            if stop_file is not None and Path(stop_file).exists():
                break
    finally:
        for s, handler in zip((signal.SIGINT, signal.SIGTERM), previous):
            signal.signal(s, handler)
        recorder.close()
        rclpy.shutdown(context=context)
    if not quiet:
        listing = ", ".join(f"{t}={n}" for t, n in recorder.counts.items())
        print(f"recorded {sum(recorder.counts.values())} messages to {path}: {listing}")
    return {"path": str(path), "counts": recorder.counts, "types": recorder.types}


class _Recorder:
    """Subscribes to each wanted topic once it appears in the graph, with the publishers' reliability, and
    writes every message's raw CDR bytes with its receive time."""

    def __init__(self, node, context, writer: BagWriter, topics: list[str]):
        import rclpy

        self.node, self.writer, self.topics = node, writer, list(topics)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self.counts = {t: 0 for t in topics}
        self.types: dict[str, str] = {}
        self._last_look = -1.0

    def discover(self, now: float) -> bool:
        """Subscribe to newly published topics (at most every 0.2 s); True when it looked."""
        if len(self.types) == len(self.topics) or now - self._last_look <= 0.2:
            return False
        self._last_look = now
        graph = dict(self.node.get_topic_names_and_types())
        for topic in self.topics:
            if topic not in self.types and topic in graph:
                self.subscribe(topic, graph[topic][0])
        return True

    def subscribe(self, topic: str, type_name: str) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        cls = message_class(type_name)
        if cls is None:
            raise BagError(f"unknown message type {type_name} on {topic}")
        infos = self.node.get_publishers_info_by_topic(topic)
        reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        latched = bool(infos) and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                         reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        # What the publishers offered goes into the bag, so a replay offers it again (latched /tf_static).
        offered = bag_qos(reliable=reliable, transient_local=latched,
                          depth=max([i.qos_profile.depth for i in infos] or [10]) or 10)

        def on_message(raw: bytes) -> None:
            self.writer.write_raw(topic, type_name, raw, time.time_ns(), offered)
            self.counts[topic] += 1

        self.node.create_subscription(cls, topic, on_message, qos, raw=True)
        self.types[topic] = type_name

    def close(self) -> None:
        self.writer.close()
        self.executor.shutdown()
        self.node.destroy_node()
