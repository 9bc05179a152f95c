"""The project's clock: now in UTC, aware for files and messages, naive to the second for the database."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def db_now() -> datetime:
    """Now as stored in the database: naive UTC, whole seconds (MySQL DATETIME keeps no fraction)."""
    return utcnow().replace(tzinfo=None, microsecond=0)
