"""Rate limits enforced with real 429s: a minimum spacing per key (FieldControl, Nominatim, Google)
and a sliding one-minute window per key (iSales, Laravel-style).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# A request is allowed when this much less than 1/rps has passed (network jitter).
SPACING_TOLERANCE = 0.02


class SpacingLimiter:
    """At most `rps` requests per second per key: each allowed request must come at least
    1/rps - tolerance after the previous allowed one. A refused request does not use the slot.
    """

    def __init__(self, rps: Callable[[], float], tolerance: float = SPACING_TOLERANCE) -> None:
        self.rps = rps
        self.tolerance = tolerance
        self.last: dict[str, float] = {}
        self.lock = threading.Lock()

    def check(self, key: str) -> float | None:
        """None when allowed (and recorded), else the seconds until the next slot."""
        rps = self.rps()
        if not rps or rps <= 0:
            return None
        interval = 1.0 / rps - self.tolerance
        now = time.monotonic()
        with self.lock:
            last = self.last.get(key)
            if last is not None and now - last < interval:
                return interval - (now - last)
            self.last[key] = now
            return None

    def reset(self) -> None:
        with self.lock:
            self.last.clear()


class WindowLimiter:
    """At most `per_minute` requests in any 60-second window per key."""

    def __init__(self, per_minute: Callable[[], int], window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def check(self, key: str) -> tuple[bool, int, int]:
        """(allowed, remaining, retry_after_seconds)."""
        limit = self.per_minute()
        if not limit or limit <= 0:
            return True, 0, 0
        now = time.monotonic()
        with self.lock:
            hits = self.hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            while len(hits) > limit:  # the limit was lowered at run time
                hits.popleft()
            if len(hits) >= limit:
                return False, 0, max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return True, limit - len(hits), 0

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
