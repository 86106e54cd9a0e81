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


# A camera stamp further than this from the node's clock is from another clock (a bag replayed without
# use_sim_time, an unsynchronised camera): its "latency" says nothing, so it is not averaged in.
COMPARABLE_CLOCK_S = 60.0


class InferenceCounters:
    """What an inference node reports in /diagnostics: processed, rejected, rate, model and end-to-end time.

    WARN is held for `warn_hold_s` after the last rejected frame, so a monitor polling slower than the
    diagnostics period still sees a burst; the running total of rejects is always reported."""

    def __init__(self, warn_hold_s: float = 10.0, clock=time.monotonic):
        self.processed = 0
        self.rejected = 0
        self.last_error = ""
        self.warn_hold_s = float(warn_hold_s)
        self._clock = clock
        self._last_reject_at: float | None = None
        self.stamps_not_comparable = 0
        self.rate = RateMeter()
        self.model_ms = RollingStats()
        self.end_to_end_ms = RollingStats()

    def record(self, model_seconds: float, end_to_end_seconds: float) -> None:
        self.processed += 1
        self.rate.tick()
        self.model_ms.add(model_seconds * 1000)
        if -1.0 <= end_to_end_seconds <= COMPARABLE_CLOCK_S:
            self.end_to_end_ms.add(end_to_end_seconds * 1000)
        else:
            self.stamps_not_comparable += 1

    def reject(self, error: Exception) -> str:
        self.rejected += 1
        self.last_error = str(error)
        self._last_reject_at = self._clock()
        return self.last_error

    def report(self) -> tuple[bool, str, dict]:
        """(no rejected frame within the hold time, status message, values)."""
        held = self._last_reject_at is not None and self._clock() - self._last_reject_at <= self.warn_hold_s
        model, e2e = self.model_ms.summary(), self.end_to_end_ms.summary()
        values = {"frames_processed": self.processed, "frames_rejected": self.rejected, "rate_hz": self.rate.rate(),
                  "processing_ms_median": model["median"], "processing_ms_p99": model["p99"]}
        if e2e["count"]:
            values.update(end_to_end_ms_median=e2e["median"], end_to_end_ms_p99=e2e["p99"])
        else:
            values["end_to_end_ms_median"] = "n/a (no camera stamp on this node's clock)" \
                if self.stamps_not_comparable else "n/a (no frame yet)"
        if self.stamps_not_comparable:
            values["stamps_not_comparable"] = self.stamps_not_comparable
        values["last_error"] = self.last_error
        message = "ok" if not held else f"{self.rejected} frames rejected so far; last: {self.last_error}"
        return not held, message, values
