"""Step 01's working set on disk: the funnel listing, what the local database knew of each project
and the decision taken for each card, in a temporary SQLite file of the data directory (removed at
the end of the run, also on error), so that the memory of step 01 does not grow with the funnel."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lib import spoolfile
from lib.isales import Card
from lib.spoolfile import SpoolFile

PREFIX = ".01_selecao."  # data/.01_selecao.<random>.sqlite while step 01 runs
BATCH = 500  # rows read or written per statement batch: all that is held of them at once

# decision kinds of a card
FETCH, SKIP, NO_COLUMN, UNCLASSIFIED, MOVE, CONFLICT = "fetch", "skip", "no_column", "unclassified", "move", "conflict"
OF_INTEREST = (FETCH, SKIP, NO_COLUMN, UNCLASSIFIED, CONFLICT)

SCHEMA = """
CREATE TABLE card (cliente_id INTEGER PRIMARY KEY, coluna_id INTEGER, nome TEXT, fingerprint TEXT NOT NULL,
                   row TEXT, first INTEGER NOT NULL);
CREATE TABLE local (chave TEXT PRIMARY KEY, os_id INTEGER, coluna_id INTEGER, detalhes_em TEXT, listagem TEXT);
CREATE TABLE finished (os_id INTEGER PRIMARY KEY, moment TEXT NOT NULL);
CREATE TABLE pending (chave TEXT PRIMARY KEY);
CREATE TABLE decision (cliente_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, motivo TEXT, status TEXT,
                       rotation INTEGER NOT NULL DEFAULT 0, detalhes_em TEXT);
CREATE INDEX decision_kind ON decision (kind, cliente_id);
"""
KNOWN = """SELECT l.coluna_id, l.detalhes_em, l.listagem, f.moment FROM local l
           LEFT JOIN finished f ON f.os_id = l.os_id"""


@dataclass(frozen=True, slots=True)
class LocalOs:
    """What the local database knows of a project (table `os`, and its FieldControl history)."""

    coluna_id: int | None
    detalhes_em: datetime | None
    listagem: str | None = None  # fingerprint of the listing row its stored details came with
    concluido_em: datetime | None = None  # when we learned its FieldControl work is finished

    @property
    def in_rotation(self) -> bool:
        """Finished work leaves the rolling refresh once its details were fetched after we learned it."""
        return self.concluido_em is None or self.detalhes_em is None or self.detalhes_em < self.concluido_em


def stamp(moment: datetime | None) -> str | None:
    """A moment as text whose order is the moments' order (fixed width)."""
    return None if moment is None else moment.isoformat(sep=" ", timespec="microseconds")


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def clean(directory: Path) -> None:
    """Remove the spools a killed run left behind (step 01's lock: no other run is using one)."""
    spoolfile.clean(directory, PREFIX)


class Spool(SpoolFile):
    """The temporary SQLite file of one run of step 01 (a context manager: removed on exit).

    It is also the `CardStore` the listing is read into (`put`)."""

    PREFIX = PREFIX
    SCHEMA = SCHEMA

    def __init__(self, directory: Path | None) -> None:
        super().__init__(directory)
        self.size = 0

    # -- the listing (CardStore) --------------------------------------------------------------------
    def put(self, card: Card, position: int) -> tuple[int, int | None] | None:
        values = (card.coluna_id, card.nome, card.fingerprint, card.row_text, card.cliente_id)
        try:
            self.db.execute("INSERT INTO card (coluna_id, nome, fingerprint, row, cliente_id, first) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (*values, position))
        except sqlite3.IntegrityError:  # listed before: the later entry is the one kept
            first, coluna_id = self.db.execute("SELECT first, coluna_id FROM card WHERE cliente_id = ?",
                                               (card.cliente_id,)).fetchone()
            self.db.execute("UPDATE card SET coluna_id = ?, nome = ?, fingerprint = ?, row = ? WHERE cliente_id = ?",
                            values)
            return first, coluna_id
        self.size += 1
        return None

    def __len__(self) -> int:
        return self.size

    def cards(self, ids: Iterable[int]) -> list[Card]:
        """The cards of `ids` (a few: conflicts), without their listing rows."""
        found = []
        for cliente_id in sorted(ids):
            row = self.db.execute("SELECT coluna_id, nome, fingerprint FROM card WHERE cliente_id = ?",
                                  (cliente_id,)).fetchone()
            if row is not None:
                found.append(Card.stored(cliente_id, row[0], row[1], row[2], None))
        return found

    # -- what the local database knew --------------------------------------------------------------
    def add_local(self, rows: Iterable[tuple[str, int | None, int | None, datetime | None, str | None]]) -> None:
        """(isales_id, os id, coluna_id, detalhes_em, listagem) of the `os` rows; a later row of the same
        isales_id replaces an earlier one."""
        self._insert("INSERT OR REPLACE INTO local (chave, os_id, coluna_id, detalhes_em, listagem) "
                     "VALUES (?, ?, ?, ?, ?)",
                     ((key, os_id, coluna_id, stamp(detalhes_em), listagem)
                      for key, os_id, coluna_id, detalhes_em, listagem in rows))

    def add_finished(self, rows: Iterable[tuple[int, datetime]]) -> None:
        """(os id, when its FieldControl work was learned finished)."""
        self._insert("INSERT OR REPLACE INTO finished (os_id, moment) VALUES (?, ?)",
                     ((os_id, stamp(when)) for os_id, when in rows))

    def add_pending(self, keys: Iterable[str]) -> None:
        """isales ids with an open pending item."""
        self._insert("INSERT OR IGNORE INTO pending (chave) VALUES (?)", ((key,) for key in keys))

    def known(self, key: str) -> LocalOs | None:
        """What the local database knew of the project stored as `key` (isales_id), or None."""
        row = self.db.execute(f"{KNOWN} WHERE l.chave = ?", (key,)).fetchone()
        return None if row is None else LocalOs(row[0], moment(row[1]), row[2], moment(row[3]))

    def _insert(self, statement: str, rows: Iterable[tuple]) -> None:
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                self.db.executemany(statement, batch)
                batch.clear()
        if batch:
            self.db.executemany(statement, batch)
        self.db.commit()

    # -- the selection -----------------------------------------------------------------------------
    def listing(self) -> Iterator[list[tuple[int, int | None, str, LocalOs | None, bool]]]:
        """Every card with what is known of it, by cliente_id, a batch at a time: (cliente_id,
        coluna_id, fingerprint, what the local database knew or None, whether it has a pending item)."""
        last = None
        while True:
            rows = self.db.execute(
                "SELECT c.cliente_id, c.coluna_id, c.fingerprint, l.chave IS NOT NULL, l.coluna_id, l.detalhes_em, "
                "l.listagem, f.moment, p.chave IS NOT NULL FROM card c "
                "LEFT JOIN local l ON l.chave = CAST(c.cliente_id AS TEXT) "
                "LEFT JOIN finished f ON f.os_id = l.os_id "
                "LEFT JOIN pending p ON p.chave = CAST(c.cliente_id AS TEXT) "
                f"{'' if last is None else 'WHERE c.cliente_id > ?'} ORDER BY c.cliente_id LIMIT {BATCH}",
                () if last is None else (last,)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(cliente_id, coluna_id, fingerprint,
                    LocalOs(local_coluna, moment(detalhes_em), listagem, moment(finished)) if known else None,
                    bool(pending))
                   for cliente_id, coluna_id, fingerprint, known, local_coluna, detalhes_em, listagem, finished, pending
                   in rows]

    def decide(self, rows: list[tuple[int, str, str | None, str | None, bool, str | None]]) -> None:
        """Record (cliente_id, kind, motivo, status, in rotation, detalhes_em) of a batch of cards."""
        self.db.executemany("INSERT OR REPLACE INTO decision (cliente_id, kind, motivo, status, rotation, "
                            "detalhes_em) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def refresh(self, count: int, motivo: str) -> None:
        """Move the `count` skipped cards in rotation with the oldest details (never fetched first,
        then by id) to the cards to fetch, with `motivo`."""
        self.db.execute(f"UPDATE decision SET kind = '{FETCH}', motivo = ? WHERE cliente_id IN ("
                        f"SELECT cliente_id FROM decision WHERE kind = '{SKIP}' AND rotation = 1 "
                        "ORDER BY detalhes_em IS NOT NULL, detalhes_em, cliente_id LIMIT ?)", (motivo, max(0, count)))
        self.db.commit()

    def count(self, *kinds: str, rotation: bool | None = None) -> int:
        where = f"kind IN ({', '.join('?' for _ in kinds)})" + ("" if rotation is None else " AND rotation = ?")
        params: tuple = kinds if rotation is None else (*kinds, int(rotation))
        return int(self.db.execute(f"SELECT count(*) FROM decision WHERE {where}", params).fetchone()[0])

    def reasons(self) -> dict[str, int]:
        """motivo → how many cards are fetched for it."""
        return dict(self.db.execute(f"SELECT motivo, count(*) FROM decision WHERE kind = '{FETCH}' GROUP BY motivo"))

    def of_interest(self, ids: Iterable[int]) -> set[int]:
        """Those of `ids` (a few: open pending items) whose card is in the columns of interest."""
        kinds = ", ".join(f"'{kind}'" for kind in OF_INTEREST)
        return {cliente_id for cliente_id in set(ids)
                if self.db.execute(f"SELECT 1 FROM decision WHERE cliente_id = ? AND kind IN ({kinds})",
                                   (cliente_id,)).fetchone()}

    def decided(self, kind: str) -> Iterator[tuple[Card, str | None, str | None]]:
        """(card with its listing row, motivo, status) of every card of `kind`, by cliente_id, read
        a batch at a time."""
        last = None
        while True:
            rows = self.db.execute(
                "SELECT c.cliente_id, c.coluna_id, c.nome, c.fingerprint, c.row, d.motivo, d.status "
                "FROM decision d JOIN card c ON c.cliente_id = d.cliente_id WHERE d.kind = ? "
                f"{'' if last is None else 'AND d.cliente_id > ?'} ORDER BY d.cliente_id LIMIT {BATCH}",
                (kind,) if last is None else (kind, last)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for cliente_id, coluna_id, nome, fingerprint, row, motivo, status in rows:
                yield Card.stored(cliente_id, coluna_id, nome, fingerprint, row), motivo, status
