"""Rolling statistics for diagnostics: frame rate and latency percentiles over a bounded window."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RollingStats:
    def __init__(self, window: int = 300):
        self._values: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))

    def summary(self) -> dict[str, float]:
        with self._lock:
            values = np.array(self._values, np.float64)
        if values.size == 0:
            return {"count": 0, "mean": float("nan"), "median": float("nan"), "p99": float("nan")}
        return {"count": int(values.size), "mean": float(values.mean()), "median": float(np.median(values)),
                "p99": float(np.percentile(values, 99))}


class RateMeter:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)
