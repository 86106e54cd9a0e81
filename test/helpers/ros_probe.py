"""A probe node in the test process: publishes frames to, and collects messages from, nodes running in
another process (lix-bringup) over real Fast DDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointField


class Probe:
    def __init__(self, name: str):
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list] = defaultdict(list)
        self.publishers = {}

    def subscribe(self, msg_type, topic: str, latched: bool = False, qos=None) -> None:
        if qos is None:
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        self.node.create_subscription(msg_type, topic, lambda m, t=topic: self.received[t].append(m), qos)

    def publisher(self, msg_type, topic: str, qos=qos_profile_sensor_data):
        if topic not in self.publishers:
            self.publishers[topic] = self.node.create_publisher(msg_type, topic, qos)
        return self.publishers[topic]

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def retry(self, send, predicate, timeout: float = 60.0, every: float = 1.0) -> bool:
        """send() again every `every` s until predicate() holds: right after discovery a best-effort
        subscription may not have matched the publisher yet, so a single first frame can be lost."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            send()
            if self.wait_for(predicate, min(every, max(end - time.monotonic(), 0.0))):
                return True
        return predicate()

    def wait_matched(self, topic: str, timeout: float = 30.0) -> None:
        publisher = self.publishers[topic]
        assert self.wait_for(lambda: publisher.get_subscription_count() > 0, timeout), f"nobody subscribes {topic}"
        self.spin(0.3)

    def stamp(self, seconds: float):
        msg = self.node.get_clock().now().to_msg()
        msg.sec, msg.nanosec = int(seconds), round((seconds % 1) * 1e9)
        return msg

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def image(stamp, frame_id: str, array: np.ndarray, encoding: str = "rgb8", step: int | None = None,
          data: bytes | None = None, height: int | None = None, width: int | None = None) -> Image:
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height = array.shape[0] if height is None else height
    msg.width = array.shape[1] if width is None else width
    msg.encoding = encoding
    msg.step = (array.shape[1] * array.itemsize * (array.shape[2] if array.ndim == 3 else 1)) if step is None else step
    msg.data = array.tobytes() if data is None else data
    return msg


def camera_info(stamp, frame_id: str, K: np.ndarray, height: int, width: int) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = height, width
    msg.k = [float(v) for v in np.asarray(K).reshape(-1)]
    return msg


def point_fields():
    return [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
            for i, n in enumerate(("x", "y", "z", "intensity"))]


class Bringup:
    """lix-bringup in its own process; stop() ends it and returns (exit code, stderr)."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "lix_ros.cli.bringup", *args], env=os.environ.copy(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self, seconds: float = 30) -> tuple[int, str]:
        """SIGINT, then the exit code and stderr; pipes are drained while waiting, so a chatty process cannot block
        on a full pipe. One that does not exit within `seconds` (a liveness bound for a loaded 2-core machine, not
        a speed goal) is killed and says so in the stderr returned."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
            stderr += f"\n[test] lix-bringup did not exit within {seconds:g} s of SIGINT and was killed\n"
        return self.process.returncode, stderr


REPO = Path(__file__).resolve().parents[2]


def _answer(probe: Probe, client, request, seconds: float):
    """Send one request and spin until its reply or `seconds`: the future, or None if no reply came."""
    future = client.call_async(request)
    end = time.monotonic() + seconds
    while not future.done() and time.monotonic() < end:
        probe.spin(0.05)
    if future.done():
        return future
    client.remove_pending_request(future)
    return None


def call_service(probe: Probe, srv_type, name: str, request, timeout: float = 30.0, attempts: int = 3):
    """Call a service of a node in another process from the probe; the response, or AssertionError.

    The request is sent again when no reply came within timeout/attempts: DDS can match the request path
    before the reply path, so the first reply of a fresh client may be lost. Only for idempotent requests
    (get_state, set_parameters); change_state goes through change_state() below."""
    client = probe.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f"no service {name}"
    try:
        for _ in range(attempts):
            if (future := _answer(probe, client, request, timeout / attempts)) is not None:
                return future.result()
        raise AssertionError(f"{name} did not answer {attempts} requests in {timeout:.0f} s")
    finally:
        probe.node.destroy_client(client)


def lifecycle_state(probe: Probe, node: str) -> str:
    from lifecycle_msgs.srv import GetState

    return call_service(probe, GetState, f"{node}/get_state", GetState.Request()).current_state.label


def change_state(probe: Probe, node: str, transition: int, timeout: float = 30.0) -> bool:
    """Request a lifecycle transition: did it succeed? A lost reply is told apart from a refusal by asking
    the node's state: moved -> succeeded; unmoved -> the request is sent again (a refused transition
    leaves the state as it was, so sending it again is harmless)."""
    from lifecycle_msgs.srv import ChangeState

    before = lifecycle_state(probe, node)
    request = ChangeState.Request()
    request.transition.id = transition
    client = probe.node.create_client(ChangeState, f"{node}/change_state")
    assert client.wait_for_service(timeout_sec=timeout), f"no service {node}/change_state"
    try:
        for _ in range(3):
            if (future := _answer(probe, client, request, timeout / 3)) is not None:
                return future.result().success
            if lifecycle_state(probe, node) != before:
                return True
        raise AssertionError(f"{node}/change_state did not answer 3 requests in {timeout:.0f} s")
    finally:
        probe.node.destroy_client(client)


def set_parameter(probe: Probe, node: str, name: str, value):
    """`ros2 param set` over the node's ~/set_parameters service: the SetParametersResult."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return call_service(probe, SetParameters, f"{node}/set_parameters", request).results[0]
