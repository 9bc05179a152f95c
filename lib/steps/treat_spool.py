"""Step 02's working set on disk: the ids of the 01 file (the repeated-id check), the keys of the
open 02 items, and what a run sets aside of its projects (moves, projects left pending, cancelled
ones without data, refused records, those whose item is resolved), in a temporary SQLite file of the
data directory (removed at the end of the run, also on error), so that the memory of step 02 does
not grow with the funnel. Each is read back in the order it was added."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from lib import spoolfile
from lib.spoolfile import SpoolFile

PREFIX = ".02_tratamento."  # data/.02_tratamento.<random>.sqlite while step 02 runs
BATCH = 500  # rows read or written per statement: all that is held of them at once

# kinds of what a run sets aside
MOVE, STUCK, DROPPED, REFUSED, DONE = "move", "stuck", "dropped", "refused", "done"

SCHEMA = """
CREATE TABLE seen (chave TEXT NOT NULL);
CREATE TABLE open_item (chave TEXT PRIMARY KEY);
CREATE TABLE kept (n INTEGER PRIMARY KEY, kind TEXT NOT NULL, isales_id TEXT, rotulo TEXT, motivo TEXT,
                   movimento TEXT);
CREATE INDEX kept_kind ON kept (kind, n);
"""


class Kept(NamedTuple):
    """One thing set aside: an isales_id, the project's label, the reason, its movement."""

    isales_id: str
    label: str | None
    reason: str | None
    movement: dict[str, Any] | None


def clean(directory: Path) -> None:
    """Remove the spools a killed run left behind (step 02's lock: no other run is using one)."""
    spoolfile.clean(directory, PREFIX)


class Spool(SpoolFile):
    """The temporary SQLite file of one run of step 02 (a context manager: removed on exit)."""

    PREFIX = PREFIX
    SCHEMA = SCHEMA

    def __init__(self, directory: Path | None) -> None:
        if directory is not None:
            clean(directory)
        super().__init__(directory)

    def _insert(self, statement: str, rows: Iterable[tuple]) -> None:
        rows = iter(rows)
        while batch := list(islice(rows, BATCH)):
            self.db.executemany(statement, batch)

    # -- the ids of the 01 file --------------------------------------------------------------------
    def listed_twice(self, keys: Iterable[str | None]) -> set[str]:
        """The canonical ids among `keys` (None is skipped) that occur more than once; the ids are
        counted on disk (the canonical text of an id is one text per number)."""
        self.db.execute("DELETE FROM seen")
        self._insert("INSERT INTO seen (chave) VALUES (?)", ((key,) for key in keys if key is not None))
        twice = {key for (key,) in self.db.execute("SELECT chave FROM seen GROUP BY chave HAVING count(*) > 1")}
        self.db.execute("DELETE FROM seen")
        return twice

    # -- the open items of step 02 -----------------------------------------------------------------
    def add_open(self, keys: Iterable[str]) -> None:
        self._insert("INSERT OR IGNORE INTO open_item (chave) VALUES (?)", ((key,) for key in keys))

    def open_among(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` (a batch) with an open item when the run began."""
        return {key for key in keys
                if self.db.execute("SELECT 1 FROM open_item WHERE chave = ?", (key,)).fetchone() is not None}

    # -- what the run sets aside -------------------------------------------------------------------
    def keep(self, kind: str, rows: Iterable[Kept]) -> None:
        self._insert("INSERT INTO kept (kind, isales_id, rotulo, motivo, movimento) VALUES (?, ?, ?, ?, ?)",
                     ((kind, row.isales_id, row.label, row.reason,
                       None if row.movement is None else json.dumps(row.movement, ensure_ascii=False))
                      for row in rows))

    def count(self, kind: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM kept WHERE kind = ?", (kind,)).fetchone()[0])

    def batches(self, kind: str) -> Iterator[list[Kept]]:
        """What was kept of `kind`, in the order it was added, a batch at a time."""
        last = 0
        while True:
            rows = self.db.execute("SELECT n, isales_id, rotulo, motivo, movimento FROM kept WHERE kind = ? AND n > ? "
                                   f"ORDER BY n LIMIT {BATCH}", (kind, last)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [Kept(isales_id, label, reason, None if movement is None else json.loads(movement))
                   for _n, isales_id, label, reason, movement in rows]

    def kept(self, kind: str) -> Iterator[Kept]:
        for batch in self.batches(kind):
            yield from batch
