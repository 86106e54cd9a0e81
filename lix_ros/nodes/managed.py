"""Managed (lifecycle) behaviour shared by the three nodes.

configure: load what the node needs (model, capture bag) and create its publishers; a failure (missing or
           corrupt checkpoint, bad parameter) returns FAILURE with the reason logged, the node stays unconfigured
activate:  subscribe, start serving (worker, /diagnostics timer), enable the lifecycle publishers
deactivate: stop serving and unsubscribe (nothing is received or published while inactive)
cleanup:   destroy the publishers and free the model
`autostart` (a parameter, default true) walks configure -> activate at start (lix_ros.nodes.runner), so a plain
run behaves like an unmanaged node; with autostart false a lifecycle manager (or `ros2 lifecycle set`) drives it.
"""

from __future__ import annotations

from typing import Any

from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from lix_ros.core.checkpoint import CheckpointError
from lix_ros.nodes.params import declare

# What a configure step may fail with: reported as the transition's FAILURE, not a crash.
CONFIGURE_ERRORS = (CheckpointError, ValueError, FileNotFoundError, OSError)


class ManagedNode(LifecycleNode):
    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.configure_error: str | None = None
        self.diagnostics_timer = None
        self._io_subscriptions: list = []
        self._io_publishers: list = []
        self._autostarting = False

    def declare_checked(self, params: list, on_change=None) -> dict[str, Any]:
        """`declare` the node's parameters; on a bad value destroy the node before raising: the runner never
        holds a node whose constructor failed, and rcl handles left to the garbage collector after
        rclpy.shutdown can hang the process at exit (ros2/rclpy#456)."""
        try:
            return declare(self, params, on_change)
        except ValueError:
            self.destroy_node()
            raise

    def destroy_node(self) -> None:
        super().destroy_node()
        # rclpy's LifecycleNode leaves its state machine, which holds the rcl node, to the garbage collector:
        # the node would stay in the graph and be freed at exit, after rclpy.shutdown, where frees can hang.
        self._state_machine.destroy_when_not_in_use()

    # ------------------------------------------------------------------ what a node defines
    def configure(self) -> list:
        """Load what the node needs and create its publishers (returned); raise CONFIGURE_ERRORS on failure."""
        return []

    def subscribe(self) -> list:
        """Create the subscriptions (returned) when activated."""
        return []

    def start_serving(self) -> None:
        """Called when activated, after subscribing."""

    def stop_serving(self) -> None:
        """Called when deactivated or shut down, before unsubscribing."""

    def release(self) -> None:
        """Free what configure loaded."""

    def publish_diagnostics(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._io_publishers = self.configure()
        except CONFIGURE_ERRORS as error:
            self.configure_error = str(error)
            if not self._autostarting:  # at autostart the runner reports it as the one start-up error line
                self.get_logger().error(f"configure failed: {error}")
            self.release()
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._io_subscriptions = self.subscribe()
        self.start_serving()
        self.diagnostics_timer = self.create_timer(self.p["diagnostics_period"], self.publish_diagnostics)
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for publisher in self._io_publishers:
            if hasattr(publisher, "on_activate"):  # lifecycle publishers are also managed entities
                self.destroy_lifecycle_publisher(publisher)
            else:
                self.destroy_publisher(publisher)
        self._io_publishers = []
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop()
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def _stop(self) -> None:
        if self.diagnostics_timer is not None:
            self.destroy_timer(self.diagnostics_timer)
            self.diagnostics_timer = None
        self.stop_serving()
        for subscription in self._io_subscriptions:
            self.destroy_subscription(subscription)
        self._io_subscriptions = []

    def set_diagnostics_period(self, seconds: float) -> None:
        if self.diagnostics_timer is not None:
            self.diagnostics_timer.timer_period_ns = int(seconds * 1e9)
            self.diagnostics_timer.reset()

    def state_label(self) -> str:
        return self._state_machine.current_state[1]

    def autostart(self) -> Any:
        """configure -> activate; the configure error (or None) for the caller to report."""
        self._autostarting = True
        try:
            configured = self.trigger_configure()
        finally:
            self._autostarting = False
        if configured != TransitionCallbackReturn.SUCCESS:
            return self.configure_error or "configure failed"
        self.trigger_activate()
        return None
