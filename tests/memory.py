"""Helpers of the memory tests (issue 14 §2): a call's traced peak, and open pending items to seed."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import datetime
from typing import Any

MOMENT = datetime(2026, 3, 2, 8, 0)


def traced_peak(call: Callable[[], Any]) -> int:
    """Bytes Python allocated at most during `call()` (tracemalloc's peak)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def open_item(step: str, key: str, reason: str, isales_id: object = None) -> dict:
    """A row of `pendencia` for an open item first seen at MOMENT."""
    return {"etapa": step, "chave": key, "isales_id": None if isales_id is None else str(isales_id), "motivo": reason,
            "primeira_vez": MOMENT, "ultima_vez": MOMENT, "tentativas": 1}
