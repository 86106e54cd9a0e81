"""Approximate-time pairing of two or more streams by stamp (message_filters is not installable here).

Each stream keeps at most `queue_size` items. When every stream has an item, the candidate set anchored
on the newest of the streams' oldest items is formed from each stream's item nearest to it; if all lie
within `slop` seconds of each other the set is emitted and everything up to it is discarded. Items that
can no longer be matched are dropped (and counted), so a stream that stops does not hold memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any


class ApproximateTimePairer:
    def __init__(self, streams: int, queue_size: int = 10, slop: float = 0.05,
                 callback: Callable[..., None] | None = None):
        if streams < 2:
            raise ValueError("pairing needs at least two streams")
        if queue_size < 1 or slop < 0:
            raise ValueError("queue_size must be >= 1 and slop >= 0")
        self.queues: list[deque[tuple[float, Any]]] = [deque() for _ in range(streams)]
        self.queue_size = queue_size
        self.slop = slop
        self.callback = callback
        self.dropped = 0
        self.matched = 0

    def add(self, stream: int, stamp: float, item: Any) -> list[tuple[Any, ...]]:
        """Add an item; returns the sets matched by it (and calls the callback with each)."""
        queue = self.queues[stream]
        if queue and stamp < queue[-1][0]:
            self.dropped += 1  # out of order: older than what we already hold
            return []
        queue.append((stamp, item))
        if len(queue) > self.queue_size:
            queue.popleft()
            self.dropped += 1
        matches = []
        while all(self.queues):
            pivot = max(q[0][0] for q in self.queues)
            chosen = []
            for q in self.queues:
                best = min(range(len(q)), key=lambda i: abs(q[i][0] - pivot))
                chosen.append(best)
            stamps = [q[i][0] for q, i in zip(self.queues, chosen)]
            if max(stamps) - min(stamps) <= self.slop:
                items = tuple(q[i][1] for q, i in zip(self.queues, chosen))
                for q, i in zip(self.queues, chosen):
                    for _ in range(i + 1):
                        q.popleft()
                    self.dropped += i
                self.matched += 1
                matches.append(items)
                if self.callback:
                    self.callback(*items)
                continue
            # The oldest head cannot match anything newer within slop: drop it.
            oldest = min(range(len(self.queues)), key=lambda k: self.queues[k][0][0])
            if pivot - self.queues[oldest][0][0] > self.slop:
                self.queues[oldest].popleft()
                self.dropped += 1
                continue
            break
        return matches


class ExactTimePairer:
    """Pairs items of two streams whose stamps are equal; unmatched items age out after `queue_size`."""

    def __init__(self, queue_size: int = 30):
        self.pending: list[dict[Any, Any]] = [{}, {}]
        self.order: list[deque] = [deque(), deque()]
        self.queue_size = queue_size
        self.dropped = 0

    def add(self, stream: int, key: Any, item: Any) -> tuple[Any, Any] | None:
        other = 1 - stream
        if key in self.pending[other]:
            match = self.pending[other].pop(key)
            self.order[other].remove(key)
            return (item, match) if stream == 0 else (match, item)
        self.pending[stream][key] = item
        self.order[stream].append(key)
        if len(self.order[stream]) > self.queue_size:
            old = self.order[stream].popleft()
            self.pending[stream].pop(old, None)
            self.dropped += 1
        return None
