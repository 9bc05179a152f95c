"""The log of every call the simulated systems received, with secrets masked in the query string."""

from __future__ import annotations

import re
import threading
from collections import Counter, deque

from .faults import split_route

MAX_ENTRIES = 200_000
_SECRET_PARAMS = re.compile(r"(^|[?&])(api_token|key)=[^&#]*", re.IGNORECASE)


def mask_secrets(path: str) -> str:
    """"/x?api_token=abc&funil_id=1" → "/x?api_token=***&funil_id=1" (also Google's `key`)."""
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", path)


class CallLog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: deque[dict] = deque(maxlen=MAX_ENTRIES)
        self.counts: Counter[str] = Counter()

    def add(self, *, system: str, method: str, route: str | None, path: str, status: int | None,
            t: float, fault: str | None, user_agent: str | None) -> None:
        entry = {"system": system, "method": method, "route": route, "path": mask_secrets(path),
                 "status": status, "t": t, "fault": fault, "user_agent": user_agent}
        with self.lock:
            self.entries.append(entry)
            self.counts[f"{method} {route or path.split('?')[0]}"] += 1

    def calls(self, system: str | None = None, route: str | None = None,
              method: str | None = None) -> list[dict]:
        method, route = split_route(route, method)
        with self.lock:
            return [dict(e) for e in self.entries
                    if (system is None or e["system"] == system)
                    and (route is None or e["route"] == route)
                    and (method is None or e["method"] == method)]

    def call_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self.lock:
            self.entries.clear()
            self.counts.clear()
