"""Step 03: upsert the treated projects into the local database in batches (one transaction each,
written in bulk; a poisoned project is rolled back alone), with the status history
(os_status_historico) and the field-level change log (alteracao)."""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.schema import Table

import lib.db.schema as t
from lib import status as status_module
from lib.clock import db_now
from lib.config import LocalSettings, Settings
from lib.db import pending
from lib.db.values import change_log_rows, changed_fields, check_fits, inserted_id
from lib.errors import RecordError, TransientError
from lib.jsonfiles import FILE_02, stream_envelope
from lib.logs import clip, progress
from lib.run import RunContext
from lib.steps import local_merge, local_people
from lib.steps.local_input import PAGAMENTO_FIELDS, File02, Movement, ProjectInput, Unreadable, address_key
from lib.steps.local_merge import MergeCard
from lib.steps.local_spool import MergeSpool
from lib.steps.local_state import Row, RunIndex, Snapshot, streamed_chunks

log = logging.getLogger("sync.03")

STEP = "03"
ORIGIN = "03"  # alteracao.origem of the changes this step makes


class Plan:
    """The writes of a batch, gathered project by project and sent in bulk: inserts (ids taken
    ahead, after the largest id of each table) and updates, one `executemany` per table and
    column set. A project's writes join the plan only when the whole project succeeded."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.inserts: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in WRITE_ORDER}
        self.updates: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in WRITE_ORDER}
        self.audit: list[dict[str, Any]] = []
        self._top: dict[str, int] = {}  # largest id of each table when the batch began
        self._taken: dict[str, int] = {}  # ids taken after it

    def take_id(self, table: Table) -> int:
        if table.name not in self._top:
            self._top[table.name] = int(self.conn.execute(select(func.max(table.c.id))).scalar() or 0)
        self._taken[table.name] = self._taken.get(table.name, 0) + 1
        return self._top[table.name] + self._taken[table.name]

    def mark(self) -> dict[str, int]:
        return dict(self._taken)

    def give_back(self, mark: dict[str, int]) -> None:
        """A project failed: the ids it took go to the next one (no gaps)."""
        self._taken = dict(mark)

    def add(self, writer: Writer) -> None:
        for table, row_id, values, is_insert in writer.ops:
            if is_insert:
                self.inserts[table.name][row_id] = values
            elif row_id in self.inserts[table.name]:  # a row of this batch changed again
                self.inserts[table.name][row_id].update(values)
            else:
                self.updates[table.name].setdefault(row_id, {}).update(values)
        self.audit += writer.audit

    def flush(self) -> None:
        for name in WRITE_ORDER:
            table = t.metadata.tables[name]
            for rows in _same_columns(self.inserts[name].values()):
                self.conn.execute(table.insert(), rows)
        for name in WRITE_ORDER:
            table = t.metadata.tables[name]
            changes = [{"_id": row_id, **values} for row_id, values in self.updates[name].items()]
            for rows in _same_columns(changes):
                columns = [column for column in rows[0] if column != "_id"]
                statement = (table.update().where(table.c.id == bindparam("_id"))
                             .values({column: bindparam(column) for column in columns}))
                self.conn.execute(statement, rows)
        if self.audit:
            self.conn.execute(t.alteracao.insert(), self.audit)


@functools.cache
def _column_names(table: Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.c)


WRITE_ORDER = ("cliente", "endereco", "os", "pagamento", "os_status_historico")  # parents first


def _same_columns(rows) -> list[list[dict[str, Any]]]:
    """`rows` grouped by their set of columns (one executemany each), first appearance first."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


@dataclass
class Writer:
    """The writes of one project: rows, their audit, and what to remember about them once they are
    written. With a `plan` the writes are gathered for the batch's bulk write; without one (a batch
    that the database refused in bulk is redone project by project) they are executed at once."""

    conn: Connection
    run_id: int | None
    record: str
    plan: Plan | None = None
    now: datetime = field(default_factory=db_now)
    audit: list[dict[str, Any]] = field(default_factory=list)
    ops: list[tuple[Table, int, dict[str, Any], bool]] = field(default_factory=list)  # table, id, values, insert?
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    counts: list[tuple[str, str, int]] = field(default_factory=list)  # kind, outcome, row id

    def insert(self, table: Table, values: dict[str, Any]) -> Row:
        values = dict(values)
        if "criado_em" in table.c:
            values.update(criado_em=self.now, atualizado_em=self.now)
        check_fits(table, values, self.record)
        if self.plan is not None:
            values["id"] = new_id = self.plan.take_id(table)
            self.ops.append((table, new_id, values, True))
        else:
            new_id = inserted_id(self.conn.execute(table.insert().values(**values)))
        row: Row = dict.fromkeys(_column_names(table))
        row.update(values, id=int(new_id))
        return row

    def update(self, table: Table, current: Row, values: dict[str, Any],
               bookkeeping: dict[str, Any] | None = None) -> tuple[Row, bool]:
        """Write the audited fields of `values` that differ (logged) and `bookkeeping` (not logged,
        not an update: detalhes_em). atualizado_em moves only with an audited change."""
        changes = changed_fields(table, current, values)
        quiet = {name: value for name, value in (bookkeeping or {}).items() if current.get(name) != value}
        if not changes and not quiet:
            return current, False
        fresh = {name: new for name, (_old, new) in changes.items()}
        check_fits(table, {**fresh, **quiet}, self.record)
        if changes:
            quiet["atualizado_em"] = self.now
        if self.plan is not None:
            self.ops.append((table, current["id"], {**fresh, **quiet}, False))
        else:
            self.conn.execute(table.update().where(table.c.id == current["id"]).values(**fresh, **quiet))
        self.audit += change_log_rows(table, current["id"], changes, run_id=self.run_id, origin=ORIGIN,
                                      moment=self.now)
        return {**current, **fresh, **quiet}, bool(changes)

    def event(self, os_row: Row, before: tuple[str | None, int | None], when: datetime) -> Row:
        """A status-history row for the os moving from `before` (status, column) to where it is now."""
        status_before, coluna_before = before
        values = {
            "os_id": os_row["id"], "status": os_row["status"], "coluna_id": os_row["coluna_id"],
            "status_anterior": status_before, "coluna_anterior": coluna_before,
            "data_status": when, "execucao_id": self.run_id, "enviado_field": False,
            "observacao": status_module.describe_move(status_before, coluna_before, os_row["status"],
                                                      os_row["coluna_id"]),
        }
        row = self.insert(t.os_status_historico, values)
        self.counts.append(("historico", "criados", row["id"]))
        return row

    def flush_audit(self) -> None:
        if self.audit:
            self.conn.execute(t.alteracao.insert(), self.audit)


# --------------------------------------------------------------------------- the step

def run(ctx: RunContext[LocalSettings]) -> None:
    """The body of 03_sync_dados_local.py (see run.run_step)."""
    path = Path(getattr(ctx.args, "arquivo", None) or ctx.data_dir / FILE_02)
    envelope = stream_envelope(path, "02", produced_by="02_tratar_dados_clientes.py", arrays=("projetos", "movimentos"))
    sync_input(ctx, File02(envelope.data(), ctx.settings.colunas), ids=getattr(ctx.args, "ids", None))


BATCH_SIZE = 500  # projects per transaction
MERGE_CHUNK = 500  # shared documents whose cards are merged together (one query for their stored names)


class Item(NamedTuple):
    """One project or movement of a batch and the work that writes it."""

    label: str
    isales_id: str
    doc: str | None  # the client's document (None for a movement)
    work: Callable[[Writer, Snapshot], None]


YOUNG_OBJECTS = 10_000  # objects allocated between two young collections while 03 runs (Python's default: 700)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The garbage collector's first threshold raised while the step runs. A batch builds thousands
    of rows that live until it is written (none of them in a cycle): with the default threshold they
    were scanned again and again, young and old (≈ 1,500 collections, six of the whole heap, for
    10,000 projects: about a tenth of the step's CPU). At most YOUNG_OBJECTS objects wait for a
    collection, whatever the size of the file; the thresholds are restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def sync_input(ctx: RunContext[Settings], source: File02, ids: list[str] | None = None) -> None:
    """Upsert every project and movement of `source` (only those of `ids` when given), reading the
    file in passes and holding at most one batch of projects: a first pass keeps ids, documents
    and movements; a second types only the projects of documents that several cards carry (their
    merged values and names); the last one writes the projects batch by batch."""
    with fewer_collections():
        _sync_input(ctx, source, ids)


def _sync_input(ctx: RunContext[Settings], source: File02, ids: list[str] | None) -> None:
    with MergeSpool(ctx.data_dir) as spool:
        _sync_spooled(ctx, source, ids, spool)


def _sync_spooled(ctx: RunContext[Settings], source: File02, ids: list[str] | None, spool: MergeSpool) -> None:
    engine, summary = ctx.engine, ctx.summary
    wanted = set(ids) if ids else None
    survey = source.survey(wanted, count_doc=spool.add_doc)
    spool.settle_docs()
    if wanted is not None and (absent := wanted - survey.seen):
        summary.warn(f"projeto(s) {', '.join(sorted(absent))} de --ids não estão em {FILE_02}: "
                     "rode 01 e 02 com --ids antes")
    if source.pending_upstream:
        log.info("%d projeto(s) ficaram pendentes na etapa 02 e não são gravados agora "
                 "(mudanças de coluna deles são registradas)", source.pending_upstream)
    for isales_id, reason in [*survey.repeated.items(), *survey.invalid_moves]:
        if wanted is None or isales_id in wanted:
            _pending(engine, ctx, isales_id, reason)
    with engine.connect() as conn:
        index = RunIndex.load(conn, spool.docs(), chain(map(str, survey.project_ids), (m.isales_id for m in survey.movements)),
                              clientes=spool.mapping("clientes"), oss=spool.mapping("oss"))
    repeated, total = survey.repeated, len(survey.project_ids)
    # as for any project that fails: its data waits, but a column move of a stored one is still history
    movements = survey.movements
    del survey  # every id of the file: from here on the run keeps one batch (the rest is in the spool)
    refused = _refuse_and_merge_shared(engine, ctx, source, repeated, spool, index, wanted)
    movements += [card.movement for card in refused if card.isales_id in index.oss]
    unknown = sum(1 for m in movements if m.isales_id not in index.oss)
    log.info("%d projeto(s) e %d mudança(s) de coluna a conferir (só o que mudou é gravado)%s",
             total, len(movements) - unknown, f"; {unknown} mudança(s) de coluna de projeto(s) "
             "que nunca foram gravados: ignorada(s)" if unknown else "")
    stale = 0

    def write_projects(batch: list[ProjectInput]) -> None:
        nonlocal stale
        shared = spool.shared_among(p.cliente["doc_pessoal"] for p in batch)
        merged = spool.merged_of(shared)
        singles = [local_people.Card.of(p) for p in batch if p.cliente["doc_pessoal"] not in shared]
        with engine.connect() as conn:
            stored = local_people.stored_names(conn, index, {card.doc for card in singles})
        others = local_people.other_people(singles, stored)  # before the merge: each card's own name
        chosen: list[ProjectInput] = []
        for project in batch:
            if project.isales_id in others:
                _pending(engine, ctx, project.isales_id, others[project.isales_id])
                if project.isales_id in index.oss:
                    movements.append(Movement(project.isales_id, project.coluna_id, project.status))
                continue
            key = index.oss.get(project.isales_id)
            if _is_stale(project, key.detalhes_em if key else None):
                stale += 1
                summary.add("os", "ignorados")
                continue
            local_merge.apply(project, merged.get(project.cliente["doc_pessoal"]), key)
            chosen.append(project)
        if not chosen:
            return
        items = [Item(p.label, p.isales_id, p.cliente["doc_pessoal"],
                      partial(sync_project, p=p, observed_at=source.observed_at)) for p in chosen]
        for project, writer in zip(chosen, _write_batch(engine, ctx, index, items, shared, resolve=True)):
            if writer is None:
                if project.isales_id in index.oss:  # its data stays pending, but a column move is still history
                    movements.append(Movement(project.isales_id, project.coluna_id, project.status))
                continue
            several = project.cliente["doc_pessoal"] in shared
            for kind, outcome, row_id in writer.counts:
                # a client or address shared by projects is counted once
                if (several and kind in ("cliente", "endereco") and not spool.first_count(kind, row_id)
                        and outcome == "sem_alteracao"):
                    continue
                summary.add(kind, outcome)
            for warning in project.warnings:
                log.debug("%s: aviso da etapa 02: %s", project.label, warning)

    batch: list[ProjectInput] = []
    skip = {**repeated, **{card.isales_id: "" for card in refused}}
    for item in progress(source.projects(skip, wanted=wanted), total=total, desc="projetos"):
        if isinstance(item, Unreadable):
            _pending(engine, ctx, item.isales_id, item.reason)
            if item.movement is not None:
                movements.append(item.movement)
            continue
        batch.append(item)
        if len(batch) >= BATCH_SIZE:
            write_projects(batch)
            batch = []
    if batch:
        write_projects(batch)
    del batch
    if stale:
        summary.warn(f"{stale} projeto(s) do arquivo 02 são mais antigos que os dados já gravados "
                     "(arquivo 02 antigo?) e foram ignorados")
    moves: list[Item] = []
    for movement in movements:
        if movement.isales_id not in index.oss:
            summary.add("movimento", "ignorados")  # a project never stored: nothing to move
            continue
        moves.append(Item(movement.label, movement.isales_id, None,
                          partial(sync_movement, m=movement, observed_at=source.observed_at)))
    for start in range(0, len(moves), BATCH_SIZE):
        for writer in _write_batch(engine, ctx, index, moves[start:start + BATCH_SIZE], set(), resolve=False):
            for kind, outcome, _row_id in writer.counts if writer is not None else ():
                summary.add("movimento" if kind == "os" else kind, outcome)
    log.debug("leitura do arquivo 02 (todas as passagens): %.1f s", source.read_s)


def _refuse_and_merge_shared(engine: Engine, ctx: RunContext[Settings], source: File02, repeated: dict[str, str],
                             spool: MergeSpool, index: RunIndex, wanted: set[str] | None) -> list[local_people.Card]:
    """A pass over the projects of the documents that several cards carry, into the spool; then,
    one document at a time, the cards whose name is another person's (pending items now) and the
    merged values of the others (into the spool). The refused cards are returned: they are left
    out of the writing pass."""
    if not spool.has_shared:
        return []
    for item in source.projects(repeated, wanted=wanted, docs=spool):
        if isinstance(item, ProjectInput):  # an unreadable one is reported by the writing pass
            spool.add_card(item.cliente["doc_pessoal"],
                           (local_people.Card.of(item), MergeCard.of(item, index.oss.get(item.isales_id))))
    refused: list[local_people.Card] = []
    for group in streamed_chunks(spool.groups(), MERGE_CHUNK):
        with engine.connect() as conn:
            stored = local_people.stored_names(conn, index, [doc for doc, _cards in group])
        others = local_people.other_people((card for _doc, cards in group for card, _merge in cards), stored)
        spool.put_merged((doc, local_merge.merge(m for card, m in cards if card.isales_id not in others))
                         for doc, cards in group)
        for _doc, cards in group:
            for card, _merge in cards:
                if card.isales_id in others:
                    refused.append(card)
                    _pending(engine, ctx, card.isales_id, others[card.isales_id])
    spool.drop_cards()
    return refused



def _is_stale(project: ProjectInput, detalhes_em: datetime | None) -> bool:
    return bool(detalhes_em and project.obtido_em and project.obtido_em < detalhes_em)


class _RefusedInBulk(Exception):
    """The database refused the batch's bulk write: it is redone project by project."""


def _write_batch(engine: Engine, ctx: RunContext[Settings], index: RunIndex, items: list[Item],
                 shared: set[str], *, resolve: bool) -> list[Writer | None]:
    """Write `items` in one transaction, committed at the end: each project is planned on its own
    (a RecordError drops only its writes) and the batch goes to the database in bulk. When the
    database refuses the bulk write (a constraint, a value the driver rejects), the batch is
    redone in one transaction with a SAVEPOINT per project, so that only the poisoned project is
    rolled back. Each item's Writer, or None: it failed and is now a pending item."""
    label = items[0].label if len(items) == 1 else f"lote de {len(items)} projetos (de {items[0].label})"
    failures: list[tuple[Item, str]] = []
    try:
        try:
            written, snap = _bulk(engine, ctx, index, items, failures, resolve=resolve)
        except _RefusedInBulk as refused:
            log.info("o banco recusou a gravação em lote (%s); gravando %s um a um", refused, label)
            failures.clear()
            written, snap = _one_by_one(engine, ctx, index, items, failures, resolve=resolve)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise TransientError(f"{label}: banco de dados indisponível ({_db_reason(exc)}); "
                             "os projetos já gravados ficam; rode de novo") from None
    index.absorb(snap, shared)
    for item, reason in failures:
        _pending(engine, ctx, item.isales_id, reason)
    return written


def _load(conn: Connection, index: RunIndex, items: list[Item]) -> Snapshot:
    return Snapshot.load(conn, index, [item.doc for item in items if item.doc], [item.isales_id for item in items])


def _resolve(conn: Connection, ctx: RunContext[Settings], items: list[Item], written: list[Writer | None]) -> None:
    keys = [pending.project_key(item.isales_id) for item, writer in zip(items, written) if writer is not None]
    pending.resolve(conn, STEP, keys, run_id=ctx.run_id)


def _bulk(engine: Engine, ctx: RunContext[Settings], index: RunIndex, items: list[Item],
          failures: list[tuple[Item, str]], *, resolve: bool) -> tuple[list[Writer | None], Snapshot]:
    written: list[Writer | None] = []
    try:
        with engine.begin() as conn:
            snap = _load(conn, index, items)
            plan = Plan(conn)
            for item in items:
                writer = Writer(conn, ctx.run_id, item.label, plan=plan)
                mark = plan.mark()
                try:
                    item.work(writer, snap)
                except RecordError as exc:  # this project's writes never join the plan
                    plan.give_back(mark)
                    failures.append((item, exc.message))
                    written.append(None)
                    continue
                plan.add(writer)
                for apply in writer.after_commit:
                    apply()
                written.append(writer)
            plan.flush()
            if resolve:
                _resolve(conn, ctx, items, written)
    except (sa_exc.OperationalError, sa_exc.InterfaceError):
        raise
    except sa_exc.StatementError as exc:  # IntegrityError, DataError and values the driver refuses
        raise _RefusedInBulk(_db_reason(exc)) from None
    return written, snap


def _one_by_one(engine: Engine, ctx: RunContext[Settings], index: RunIndex, items: list[Item],
                failures: list[tuple[Item, str]], *, resolve: bool) -> tuple[list[Writer | None], Snapshot]:
    written: list[Writer | None] = []
    with engine.begin() as conn:
        snap = _load(conn, index, items)
        for item in items:
            writer = Writer(conn, ctx.run_id, item.label)
            try:
                with conn.begin_nested():
                    item.work(writer, snap)
                    writer.flush_audit()
            except RecordError as exc:
                reason = exc.message
            except (sa_exc.OperationalError, sa_exc.InterfaceError):
                raise
            except sa_exc.StatementError as exc:
                reason = f"{item.label}: o banco recusou o registro: {_db_reason(exc)}"
            else:
                for apply in writer.after_commit:
                    apply()
                written.append(writer)
                continue
            failures.append((item, reason))
            written.append(None)
        if resolve:
            _resolve(conn, ctx, items, written)
    return written, snap


def _pending(engine: Engine, ctx: RunContext[Settings], isales_id: str | None, reason: str) -> None:
    log.warning("%s", reason)
    if isales_id is None:  # no key to retry it by: a defect of the 02 file itself
        ctx.summary.add("os", "falhas")
        return
    ctx.summary.add("os", "pendentes")
    with engine.begin() as conn:
        pending.record(conn, STEP, pending.project_key(isales_id), reason, isales_id=isales_id, run_id=ctx.run_id)


def _db_reason(exc: sa_exc.StatementError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return clip(text[0] if text else type(exc).__name__, 300)


# --------------------------------------------------------------------------- one project

def sync_project(w: Writer, snap: Snapshot, p: ProjectInput, observed_at: datetime | None) -> None:
    """Upsert the cliente, endereco, os and pagamento of `p` and its history (inside `w`'s transaction)."""
    cliente = _cliente(w, snap, p)
    current = snap.oss.get(p.isales_id)
    endereco_id = _endereco(w, snap, p, cliente["id"], current)
    values = {**p.os, "coluna_id": p.coluna_id, "status": p.status, "cliente_id": cliente["id"],
              "endereco_id": endereco_id}
    when = p.obtido_em or observed_at or w.now
    event: Row | None
    if current is None:
        row = w.insert(t.os, {**values, "isales_id": p.isales_id, "detalhes_em": p.obtido_em or w.now,
                              "cliente_assinatura": p.client_signature, "endereco_assinatura": p.address_signature,
                              "listagem_hash": p.listagem})
        w.counts.append(("os", "criados", row["id"]))
        event = w.event(row, (None, None), when)
    else:
        kept = {name: value for name, value in values.items()
                if value is not None or name in ("coluna_id", "status", "cliente_id") or name in p.authoritative}
        detalhes = max(filter(None, (current["detalhes_em"], p.obtido_em)), default=None)
        before = _before(current, snap.last_event.get(current["id"]))
        bookkeeping = {"detalhes_em": detalhes, "cliente_assinatura": p.client_signature}
        if p.address_signature is not None:  # a card without an address keeps the stored fingerprint
            bookkeeping["endereco_assinatura"] = p.address_signature
        if p.listagem is not None:  # a 02 file from before the fingerprint keeps the stored one
            bookkeeping["listagem_hash"] = p.listagem
        row, changed = w.update(t.os, current, kept, bookkeeping)
        w.counts.append(("os", "atualizados" if changed else "sem_alteracao", row["id"]))
        event = w.event(row, before, when) if _moved(before, row) else None
    w.after_commit.append(lambda: snap.put_os(row, current["endereco_id"] if current is not None else None))
    if event is not None:
        w.after_commit.append(lambda: snap.put_event(event))
    _pagamento(w, snap, p, row["id"])


def sync_movement(w: Writer, snap: Snapshot, m: Movement, observed_at: datetime | None) -> None:
    """Record the column move of a known os whose details were not fetched."""
    current = snap.oss[m.isales_id]
    before = _before(current, snap.last_event.get(current["id"]))
    row, changed = w.update(t.os, current, {"coluna_id": m.coluna_id, "status": m.status})
    w.counts.append(("os", "atualizados" if changed else "sem_alteracao", row["id"]))
    if _moved(before, row):
        event = w.event(row, before, observed_at or w.now)
        w.after_commit.append(lambda: snap.put_event(event))
    w.after_commit.append(lambda: snap.put_os(row, current["endereco_id"]))


def _before(os_row: Row, last_event: Row | None) -> tuple[str | None, int | None]:
    """Where the os was: its own columns, else (legacy rows) its last history row."""
    last = last_event or {}
    status = os_row.get("status") or last.get("status")
    coluna = os_row["coluna_id"] if os_row.get("coluna_id") is not None else last.get("coluna_id")
    return status, coluna


def _moved(before: tuple[str | None, int | None], row: Row) -> bool:
    status, coluna = before
    if coluna is not None:
        return coluna != row["coluna_id"]
    return status != row["status"]


def _cliente(w: Writer, snap: Snapshot, p: ProjectInput) -> Row:
    current = snap.clientes.get(p.cliente["doc_pessoal"])
    if current is None:
        row = w.insert(t.cliente, p.cliente)
        w.counts.append(("cliente", "criados", row["id"]))
    else:  # an empty value never erases a stored one
        values = {name: value for name, value in p.cliente.items() if value is not None}
        row, changed = w.update(t.cliente, current, values)
        w.counts.append(("cliente", "atualizados" if changed else "sem_alteracao", row["id"]))
    w.after_commit.append(lambda: snap.put_cliente(row))
    return row


def _endereco(w: Writer, snap: Snapshot, p: ProjectInput, cliente_id: int, os_row: Row | None) -> int | None:
    """The address of the project (docs/design.md §6), updated or created; its id."""
    if p.endereco is None:
        return os_row["endereco_id"] if os_row else None
    key = address_key(p.endereco)
    current = snap.enderecos.get(os_row["endereco_id"]) if os_row else None
    if current is not None and current["cliente_id"] != cliente_id:
        current = None  # the project changed client: the old client's address is not ours to edit
    target, edited = None, False
    if current is not None and address_key(current) == key:
        target = current
    else:
        # An address of the client with that key is reused before editing the current one in place:
        # it keeps its FieldControl location, and the client never gets two rows of one address.
        target = next((row for row in snap.enderecos_of_cliente(cliente_id) if address_key(row) == key), None)
        if (target is None and current is not None and os_row is not None
                and not snap.users_of.get(current["id"], set()) - {os_row["id"]}):
            target, edited = current, True
    if target is None:
        row = w.insert(t.endereco, {**p.endereco, "cliente_id": cliente_id})
        w.counts.append(("endereco", "criados", row["id"]))
    elif (target is current and os_row is not None and os_row.get("endereco_assinatura") == p.address_signature
          and snap.users_of.get(target["id"], set()) - {os_row["id"]}):
        # The card's copy of a shared address is as at its last sync: another card of the client may
        # have changed the row since, and this stale copy must not undo that (design.md §6). A row
        # only this card uses still takes its copy (it heals a value edited outside iSales).
        row = target
        w.counts.append(("endereco", "sem_alteracao", row["id"]))
    else:
        if edited:  # another address: old coordinates and the FieldControl location no longer apply
            values = {**p.endereco, "location_field_id": None}
        else:
            values = {name: value for name, value in p.endereco.items() if value is not None}
        row, changed = w.update(t.endereco, target, values)
        w.counts.append(("endereco", "atualizados" if changed else "sem_alteracao", row["id"]))
    w.after_commit.append(lambda: snap.put_endereco(row))
    return row["id"]


def _pagamento(w: Writer, snap: Snapshot, p: ProjectInput, os_id: int) -> None:
    current = snap.pagamentos.get(os_id)
    if current is None:
        if p.pagamento is None:
            return
        row = w.insert(t.pagamento, {**p.pagamento, "os_id": os_id})
        w.counts.append(("pagamento", "criados", row["id"]))
    else:  # an empty value erases a stored one only when its source (the custom fields) came
        values = {name: value for name, value in (p.pagamento or dict.fromkeys(PAGAMENTO_FIELDS)).items()
                  if value is not None or f"pagamento.{name}" in p.authoritative}
        row, changed = w.update(t.pagamento, current, values)
        w.counts.append(("pagamento", "atualizados" if changed else "sem_alteracao", row["id"]))
    w.after_commit.append(lambda: snap.put_pagamento(row))


def history_of(conn: Connection, isales_id: str) -> list[Row]:
    """The status history of one project, oldest first (for reports and tests)."""
    hist = t.os_status_historico
    query = (select(hist).join(t.os, t.os.c.id == hist.c.os_id)
             .where(t.os.c.isales_id == str(isales_id)).order_by(hist.c.id))
    return [dict(row) for row in conn.execute(query).mappings()]
