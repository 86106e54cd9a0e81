"""A one-slot mailbox between a subscription callback and an inference worker.

The callback stores the newest frame and returns at once; the worker takes the newest frame when it is
free. A frame replaced before the worker took it is dropped and counted: the node keeps up with the
camera by skipping stale frames instead of queueing latency.
"""

from __future__ import annotations

import threading
from typing import Any


class LatestFrameSlot:
    def __init__(self):
        self._item: Any = None
        self._has_item = False
        self._condition = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.received = 0

    def put(self, item: Any) -> None:
        with self._condition:
            if self._has_item:
                self.dropped += 1
            self._item = item
            self._has_item = True
            self.received += 1
            self._condition.notify()

    def take(self, timeout: float | None = None) -> Any:
        """The newest item, or None on timeout or after close()."""
        with self._condition:
            if not self._has_item and not self._closed:
                self._condition.wait(timeout)
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item

    def reopen(self) -> None:
        """Serve again after close(); a frame left from before is stale and dropped."""
        with self._condition:
            self._closed = False
            self._item, self._has_item = None, False

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
