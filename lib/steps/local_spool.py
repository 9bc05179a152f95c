"""Step 03's working set on disk: the documents of the file, which of them several cards carry,
those cards' merge data, the merged values of each such client, the clients the run created for them
and what the summary already counted, in a temporary SQLite file of the data directory (removed at
the end of the run, also on error), and the run's index of the clients and projects the database
already holds. What the run holds in memory is then one batch, whatever the size of the file
(issue 14: the merged values of shared documents and the index grew with it)."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from lib import spoolfile
from lib.spoolfile import SpoolFile

PREFIX = ".03_mescla."  # data/.03_mescla.<random>.sqlite while step 03 runs
BATCH = 500  # rows written per executemany, and documents per IN list: all that is held of them at once

# SQLite's page cache (2 MB by default) and its sorter would fill up with the file's size: kept
# small, the rest is read from the file (the system's cache). The documents are counted in a keyed
# table and the cards are indexed by document: read in order, neither is sorted in memory.
SCHEMA = """
PRAGMA cache_size = -256;
CREATE TABLE doc (doc TEXT PRIMARY KEY, cards INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE shared (doc TEXT PRIMARY KEY, merged BLOB) WITHOUT ROWID;
CREATE TABLE card (doc TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX card_doc ON card (doc);
CREATE TABLE counted (kind TEXT NOT NULL, row_id INTEGER NOT NULL, PRIMARY KEY (kind, row_id)) WITHOUT ROWID;
"""


class MergeSpool(SpoolFile):
    """The temporary SQLite file of one run of step 03 (a context manager: removed on exit, and a
    file a killed run left behind is removed when the next one starts). Values are pickled: they
    come back exactly as they went in (Decimal, datetime, tuples), and the file is the run's own,
    written and read by this process only."""

    PREFIX = PREFIX
    SCHEMA = SCHEMA

    def __init__(self, directory: Path | None) -> None:
        if directory is not None and Path(directory).is_dir():
            spoolfile.clean(directory, PREFIX)
        super().__init__(directory)
        self._docs: list[tuple[str]] = []
        self._cards: list[tuple[str, bytes]] = []
        self.has_shared = False

    # -- the documents of the file -------------------------------------------------------------------
    def add_doc(self, doc: str) -> None:
        self._docs.append((doc,))
        if len(self._docs) >= BATCH:
            self._flush_docs()

    def _flush_docs(self) -> None:
        self.db.executemany("INSERT INTO doc (doc, cards) VALUES (?, 1) "
                            "ON CONFLICT (doc) DO UPDATE SET cards = cards + 1", self._docs)
        self._docs = []

    def settle_docs(self) -> None:
        """Once every document is added: note those that several cards carry."""
        self._flush_docs()
        self.db.execute("INSERT INTO shared (doc) SELECT doc FROM doc WHERE cards > 1")
        self.has_shared = self.db.execute("SELECT 1 FROM shared LIMIT 1").fetchone() is not None

    def docs(self) -> Iterator[str]:
        """Every document of the file, once each (read as it goes)."""
        cursor = self.db.execute("SELECT doc FROM doc")
        while rows := cursor.fetchmany(BATCH):
            yield from (row[0] for row in rows)

    def shared_docs(self) -> Iterator[str]:
        cursor = self.db.execute("SELECT doc FROM shared ORDER BY doc")
        while rows := cursor.fetchmany(BATCH):
            yield from (row[0] for row in rows)

    def __contains__(self, doc: object) -> bool:
        """Whether several cards carry `doc`."""
        return self.db.execute("SELECT 1 FROM shared WHERE doc = ?", (doc,)).fetchone() is not None

    def shared_among(self, docs: Iterable[str]) -> set[str]:
        return {row[0] for chunk in _chunks(docs) for row in self._select("doc", chunk)}

    # -- the cards of shared documents ---------------------------------------------------------------
    def add_card(self, doc: str, data: Any) -> None:
        self._cards.append((doc, pickle.dumps(data, pickle.HIGHEST_PROTOCOL)))
        if len(self._cards) >= BATCH:
            self._flush_cards()

    def _flush_cards(self) -> None:
        self.db.executemany("INSERT INTO card (doc, data) VALUES (?, ?)", self._cards)
        self._cards = []

    def groups(self) -> Iterator[tuple[str, list[Any]]]:
        """(document, its cards in the order they were added), one document at a time."""
        self._flush_cards()
        cursor = self.db.execute("SELECT doc, data FROM card ORDER BY doc, rowid")
        doc: str | None = None
        group: list[Any] = []
        while rows := cursor.fetchmany(BATCH):
            for row_doc, data in rows:
                if row_doc != doc:
                    if doc is not None:
                        yield doc, group
                    doc, group = row_doc, []
                group.append(pickle.loads(data))
        if doc is not None:
            yield doc, group

    def drop_cards(self) -> None:
        self.db.execute("DELETE FROM card")

    # -- the merged values ---------------------------------------------------------------------------
    def put_merged(self, items: Iterable[tuple[str, Any]]) -> None:
        self.db.executemany("UPDATE shared SET merged = ? WHERE doc = ?",
                            ((pickle.dumps(merged, pickle.HIGHEST_PROTOCOL), doc) for doc, merged in items))

    def merged_of(self, docs: Iterable[str]) -> dict[str, Any]:
        """Document → its merged values, for the shared ones of `docs` that have some."""
        return {doc: pickle.loads(merged) for chunk in _chunks(docs)
                for doc, merged in self._select("doc, merged", chunk, "merged IS NOT NULL")}

    # -- the run's index of what the database holds (local_state.RunIndex) ---------------------------
    def mapping(self, name: str) -> SpooledMap:
        return SpooledMap(self.db, name)

    # -- the summary ---------------------------------------------------------------------------------
    def first_count(self, kind: str, row_id: int) -> bool:
        """True the first time (kind, row_id) is counted in this run."""
        return self.db.execute("INSERT OR IGNORE INTO counted (kind, row_id) VALUES (?, ?)",
                               (kind, row_id)).rowcount == 1

    def _select(self, columns: str, docs: list[str], condition: str = "1") -> list[tuple]:
        marks = ", ".join("?" * len(docs))
        return self.db.execute(f"SELECT {columns} FROM shared WHERE doc IN ({marks}) AND {condition}",  # noqa: S608
                               docs).fetchall()


def _chunks(docs: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(docs))
    for start in range(0, len(unique), BATCH):
        yield unique[start:start + BATCH]


class SpooledMap(MutableMapping[str, Any]):
    """A dict kept in a table of the spool (values pickled): each look-up is a query by key."""

    def __init__(self, db: sqlite3.Connection, table: str) -> None:
        self.db, self.table = db, table
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")

    def __getitem__(self, key: str) -> Any:
        row = self.db.execute(f"SELECT value FROM {self.table} WHERE key = ?", (key,)).fetchone()  # noqa: S608
        if row is None:
            raise KeyError(key)
        return pickle.loads(row[0])

    def __contains__(self, key: object) -> bool:
        return self.db.execute(f"SELECT 1 FROM {self.table} WHERE key = ?", (key,)).fetchone() is not None  # noqa: S608

    def __setitem__(self, key: str, value: Any) -> None:
        self.update([(key, value)])

    def update(self, pairs: Any = (), /, **more: Any) -> None:
        rows = pairs.items() if hasattr(pairs, "items") else pairs
        self.db.executemany(f"INSERT OR REPLACE INTO {self.table} (key, value) VALUES (?, ?)",  # noqa: S608
                            ((key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
                             for key, value in [*rows, *more.items()]))

    def __delitem__(self, key: str) -> None:
        if self.db.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,)).rowcount == 0:  # noqa: S608
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        cursor = self.db.execute(f"SELECT key FROM {self.table}")  # noqa: S608
        while rows := cursor.fetchmany(BATCH):
            yield from (row[0] for row in rows)

    def __len__(self) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])  # noqa: S608
