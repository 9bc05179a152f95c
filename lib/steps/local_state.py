"""What step 03 knows of the local database: a light index of the run's clients and projects, read
once, and the full existing rows of one batch of projects, read in a few queries (IN lists of at most
500 ids, never one query per project) and kept current as the batch's projects are written."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

import lib.db.schema as t
from lib.db.values import IN_CHUNK, chunks

Row = dict[str, Any]
T = TypeVar("T")


class OsKey(NamedTuple):
    """What the run needs of an existing os before its batch: its id, the client and address
    fingerprints its card carried last time (the merge) and when its details were fetched (stale input)."""

    id: int
    cliente_assinatura: str | None
    endereco_assinatura: str | None
    detalhes_em: datetime | None


@dataclass
class RunIndex:
    """Which clients (by document) and projects (by isales_id) of the run exist, read once at the
    start (ids only), and the clients that a batch created for a later one. A batch reads the full rows of these ids only: a row that
    appeared meanwhile is not adopted behind the run's back (its insert fails and is pending)."""

    clientes: MutableMapping[str, int] = field(default_factory=dict)  # doc_pessoal → cliente id
    oss: MutableMapping[str, OsKey] = field(default_factory=dict)  # isales_id → os key

    @classmethod
    def load(cls, conn: Connection, docs: Iterable[str], isales_ids: Iterable[str],
             clientes: MutableMapping[str, int] | None = None, oss: MutableMapping[str, OsKey] | None = None) -> RunIndex:
        """The index, into `clientes` and `oss` when given (step 03: tables of its spool, so that
        the run's memory does not grow with the projects already stored)."""
        index = cls(clientes if clientes is not None else {}, oss if oss is not None else {})
        for chunk in streamed_chunks(docs):  # every document of the file (once each): never listed at once
            query = select(t.cliente.c.doc_pessoal, t.cliente.c.id).where(t.cliente.c.doc_pessoal.in_(chunk))
            index.clientes.update((doc, cliente_id) for doc, cliente_id in conn.execute(query))
        for chunk in streamed_chunks(isales_ids):  # every project of the file: never listed at once
            query = (select(t.os.c.isales_id, t.os.c.id, t.os.c.cliente_assinatura, t.os.c.endereco_assinatura,
                            t.os.c.detalhes_em).where(t.os.c.isales_id.in_(chunk)))
            index.oss.update((row.isales_id, OsKey(row.id, row.cliente_assinatura, row.endereco_assinatura,
                                                   row.detalhes_em)) for row in conn.execute(query))
        return index

    def absorb(self, snap: Snapshot, docs: Container[str]) -> None:
        """Remember the clients of `docs` that a committed batch created: a later batch may carry
        them again. A project is not remembered:
        the file lists each one once (an id listed twice is refused), so no later batch asks for it,
        and the run's memory does not grow with it."""
        self.clientes.update((doc, row["id"]) for doc, row in snap.clientes.items() if doc in docs)


@dataclass
class Snapshot:
    """Existing rows by the keys step 03 looks them up with."""

    clientes: dict[str, Row] = field(default_factory=dict)  # by doc_pessoal
    oss: dict[str, Row] = field(default_factory=dict)  # by isales_id
    enderecos: dict[int, Row] = field(default_factory=dict)  # by id
    enderecos_of: dict[int, list[int]] = field(default_factory=dict)  # cliente_id → endereco ids
    users_of: dict[int, set[int]] = field(default_factory=dict)  # endereco_id → os ids using it
    pagamentos: dict[int, Row] = field(default_factory=dict)  # by os_id (its first row)
    last_event: dict[int, Row] = field(default_factory=dict)  # os_id → last os_status_historico row

    @classmethod
    def load(cls, conn: Connection, index: RunIndex, docs: Iterable[str], isales_ids: Iterable[str]) -> Snapshot:
        """The existing rows of one batch: its clients and projects known to `index`, their
        addresses, the projects using those addresses, payments and last history rows."""
        snap = cls()
        for chunk in chunks(index.clientes.get(doc) for doc in docs):
            for row in _rows(conn, select(t.cliente).where(t.cliente.c.id.in_(chunk))):
                snap.clientes[row["doc_pessoal"]] = row
        for chunk in chunks(key.id for i in isales_ids if (key := index.oss.get(i)) is not None):
            for row in _rows(conn, select(t.os).where(t.os.c.id.in_(chunk))):
                snap.oss[row["isales_id"]] = row
        cliente_ids = [row["id"] for row in snap.clientes.values()]
        for chunk in chunks(cliente_ids):
            for row in _rows(conn, select(t.endereco).where(t.endereco.c.cliente_id.in_(chunk))):
                snap.put_endereco(row)
        current = [row["endereco_id"] for row in snap.oss.values() if row["endereco_id"] not in snap.enderecos]
        for chunk in chunks(current):  # an os may point at an address of another client
            for row in _rows(conn, select(t.endereco).where(t.endereco.c.id.in_(chunk))):
                snap.put_endereco(row)
        for chunk in chunks(list(snap.enderecos)):
            query = select(t.os.c.id, t.os.c.endereco_id).where(t.os.c.endereco_id.in_(chunk))
            for os_id, endereco_id in conn.execute(query):
                snap.users_of.setdefault(endereco_id, set()).add(os_id)
        os_ids = [row["id"] for row in snap.oss.values()]
        for chunk in chunks(os_ids):
            query = select(t.pagamento).where(t.pagamento.c.os_id.in_(chunk)).order_by(t.pagamento.c.id.desc())
            for row in _rows(conn, query):
                snap.pagamentos[row["os_id"]] = row  # descending: the first row is the one kept
            hist = t.os_status_historico
            # the last column move: rows FieldControl's task statuses wrote (origem) are not moves
            last_ids = (select(func.max(hist.c.id)).where(hist.c.os_id.in_(chunk), hist.c.origem == "isales")
                        .group_by(hist.c.os_id))
            for row in _rows(conn, select(hist).where(hist.c.id.in_(last_ids))):
                snap.last_event[row["os_id"]] = row
        return snap

    # ------------------------------------------------------------------ after a commit

    def put_cliente(self, row: Row) -> None:
        self.clientes[row["doc_pessoal"]] = row

    def put_endereco(self, row: Row) -> None:
        previous = self.enderecos.get(row["id"])
        if previous is not None and previous["cliente_id"] != row["cliente_id"]:
            others = self.enderecos_of.get(previous["cliente_id"], [])
            if row["id"] in others:
                others.remove(row["id"])
        self.enderecos[row["id"]] = row
        ids = self.enderecos_of.setdefault(row["cliente_id"], [])
        if row["id"] not in ids:
            ids.append(row["id"])

    def put_os(self, row: Row, previous_endereco: int | None) -> None:
        self.oss[row["isales_id"]] = row
        if previous_endereco is not None and previous_endereco != row["endereco_id"]:
            self.users_of.get(previous_endereco, set()).discard(row["id"])
        if row["endereco_id"] is not None:
            self.users_of.setdefault(row["endereco_id"], set()).add(row["id"])

    def put_pagamento(self, row: Row) -> None:
        self.pagamentos[row["os_id"]] = row

    def put_event(self, row: Row) -> None:
        self.last_event[row["os_id"]] = row

    def enderecos_of_cliente(self, cliente_id: int | None) -> list[Row]:
        if cliente_id is None:
            return []
        return [self.enderecos[i] for i in self.enderecos_of.get(cliente_id, []) if i in self.enderecos]


def streamed_chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """`values` in lists of at most `size`, as they come (a repeated value only repeats in an IN list)."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows(conn: Connection, query) -> list[Row]:
    return [dict(row) for row in conn.execute(query).mappings()]
