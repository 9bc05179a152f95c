"""A run's working set on disk: a temporary SQLite file of the data directory, removed at the end of
the run (also on error), so that a step's memory does not grow with its input (issue 14). Steps 01
(lib/steps/fetch_spool.py) and 03 (lib/steps/local_spool.py) each keep one; a file a killed run left
behind is removed by the next run of that step (its lock: no other run is using it)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TypeVar

SUFFIX = ".sqlite"
S = TypeVar("S", bound="SpoolFile")
PRAGMAS = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA temp_store = FILE;
"""


def clean(directory: Path, prefix: str) -> None:
    """Remove the spools `prefix`<random>.sqlite a killed run left behind in `directory`."""
    for leftover in Path(directory).glob(f"{prefix}*{SUFFIX}"):
        try:
            leftover.unlink()
        except OSError:
            pass


class SpoolFile:
    """A temporary SQLite file (`db`) with the tables of `SCHEMA`, named `PREFIX`<random>.sqlite;
    a context manager: removed on exit. Nothing is committed: it is the run's own, never read again."""

    PREFIX = ".spool."
    SCHEMA = ""

    def __init__(self, directory: Path | None) -> None:
        """A new spool in `directory` (None: the system's temporary directory)."""
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=self.PREFIX, suffix=SUFFIX, dir=directory)
        os.close(fd)
        self.path = Path(name)
        try:
            self.db = sqlite3.connect(name)
            self.db.executescript(PRAGMAS + self.SCHEMA)
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            self.path.unlink(missing_ok=True)
