"""Step 04, last phase: what happened in the field comes back. For every ticket the integration sent,
the orders FieldControl staff made of it and the status of each task (scheduled … done, canceled):
each change is a row of os_status_historico with origem='fieldcontrol' and FieldControl's word.

Cost: one listing of the orders changed since the last check (`updated_at>=`, 100 per page), plus one
task listing per changed order of ours; with --ids, one order look-up per ticket of those projects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

import lib.db.schema as t
from lib import fieldcontrol as fcm
from lib.clock import db_now
from lib.db.values import chunks
from lib.status import FIELDCONTROL_ORIGIN, ticket_label
from lib.status import TASK_STATUS_LABELS as STATUS_LABEL

log = logging.getLogger(__name__)

ORIGIN = FIELDCONTROL_ORIGIN
MARK = "fieldcontrol:ordens"  # marcador: the newest order change already read
FIRST_LOOK_BACK = timedelta(days=1)  # before the first ticket sent: no order of ours can be older


@dataclass
class SentTicket:
    ticket_id: str
    historico_id: int
    os_id: int
    isales_id: str
    kind: str | None
    identifier: str | None


@dataclass
class Follow:
    """What one run learned (for the summary and the report)."""

    changes: list[dict] = field(default_factory=list)  # the history rows written
    orders_read: int = 0


def sent_tickets(conn: Connection, ids: Iterable[str] | None = None, *,
                 ticket_ids: Iterable[str] | None = None) -> dict[str, SentTicket]:
    """The tickets the integration sent (their history rows), by FieldControl id: of the projects of
    `ids`, or those among `ticket_ids`, or every one."""
    hist = t.os_status_historico
    query = (select(hist.c.id, hist.c.os_id, hist.c.ticket_field_id, hist.c.ticket_tipo, hist.c.ticket_identificador,
                    t.os.c.isales_id)
             .join(t.os, t.os.c.id == hist.c.os_id)
             .where(hist.c.enviado_field.is_(True), hist.c.ticket_field_id.isnot(None), hist.c.origem == "isales"))
    rows = []
    if ids is not None or ticket_ids is not None:
        column = t.os.c.isales_id if ids is not None else hist.c.ticket_field_id
        for chunk in chunks(list(ids if ids is not None else ticket_ids or ())):
            rows += list(conn.execute(query.where(column.in_(chunk))))
    else:
        rows = list(conn.execute(query))
    return {row.ticket_field_id: SentTicket(row.ticket_field_id, row.id, row.os_id, str(row.isales_id),
                                            row.ticket_tipo, row.ticket_identificador) for row in rows}


def any_sent(conn: Connection) -> bool:
    hist = t.os_status_historico
    return conn.execute(select(hist.c.id).where(hist.c.enviado_field.is_(True), hist.c.ticket_field_id.isnot(None),
                                                hist.c.origem == "isales").limit(1)).first() is not None


def read_mark(conn: Connection, key: str = MARK) -> str | None:
    return conn.execute(select(t.marcador.c.valor).where(t.marcador.c.chave == key)).scalar()


def write_mark(conn: Connection, value: str, key: str = MARK) -> None:
    updated = conn.execute(t.marcador.update().where(t.marcador.c.chave == key)
                           .values(valor=value, atualizado_em=db_now()))
    if not updated.rowcount:
        conn.execute(t.marcador.insert().values(chave=key, valor=value, atualizado_em=db_now()))


def describe(task: fcm.Task, order: fcm.Order, sent: SentTicket, before: str | None) -> str:
    """The pt-BR observation of a FieldControl row."""
    status = task.status or "?"
    label = STATUS_LABEL.get(status, status)
    kind = ticket_label(sent.kind, "serviço")
    ticket = sent.identifier or sent.ticket_id
    text = (f"FieldControl: atividade da ordem de serviço {order.identifier or order.id} (OS de {kind} "
            f"{ticket}) {label} ({status})")
    if status == "scheduled" and task.scheduled:
        text += f" para {task.scheduled:%d/%m/%Y %H:%M}"
    if before:
        text += f"; antes: {STATUS_LABEL.get(before, before)} ({before})"
    if task.status_description:
        text += f". Motivo/observação: {task.status_description}"
    return text + "."


class StatusFollower:
    """Reads orders and tasks of our tickets; writes tarefa_field and the FieldControl history rows.
    `fc` is the client or a function making it (no call at all when no ticket was ever sent)."""

    def __init__(self, engine: Engine, fc: fcm.FieldControl | Callable[[], fcm.FieldControl], run_id: int | None):
        self.engine, self._fc, self.run_id = engine, fc, run_id

    @property
    def fc(self) -> fcm.FieldControl:
        return self._fc if isinstance(self._fc, fcm.FieldControl) else self._fc()

    def run(self, ids: list[str] | None = None) -> Follow:
        result = Follow()
        with self.engine.connect() as conn:
            # with --ids, the tickets of those projects; else only the tickets of the orders listed (never
            # every ticket ever sent: that grows with the account)
            ours = sent_tickets(conn, ids) if ids else {}
            mark = read_mark(conn)
            first_sent = conn.execute(select(func.min(t.os_status_historico.c.enviado_em))
                                      .where(t.os_status_historico.c.enviado_field.is_(True))).scalar()
            if not (ours if ids else any_sent(conn)):
                return result
        if ids:  # a few projects: ask for each ticket's order (q=ticket_id), whatever the mark says
            orders = [order for ticket_id in ours for order in self.fc.orders(ticket_id=ticket_id)]
        else:
            since = fcm.parse_time(mark) or ((first_sent or db_now()) - FIRST_LOOK_BACK)
            orders = self.fc.orders(updated_since=since)
            with self.engine.connect() as conn:
                ours = sent_tickets(conn, ticket_ids={order.ticket_id for order in orders if order.ticket_id})
        marked = newest = fcm.parse_time(mark)
        for order in orders:
            sent = ours.get(order.ticket_id or "")
            if order.updated_at is not None and not ids:
                newest = max(newest or order.updated_at, order.updated_at)
            if sent is None:
                continue  # an order of a ticket typed by hand, or of projects outside --ids
            if not ids and self.seen(order, marked):
                continue
            result.orders_read += 1
            tasks = self.fc.order_tasks(order.id)
            with self.engine.begin() as conn:
                result.changes += self.record(conn, order, tasks, sent)
        if newest is not None and newest != marked and not ids:
            with self.engine.begin() as conn:
                write_mark(conn, newest.isoformat(timespec="milliseconds"))
        return result

    def seen(self, order: fcm.Order, marked: datetime | None) -> bool:
        """An order listed again only because `>=` includes the mark itself: read at that version already."""
        if marked is None or order.updated_at is None or order.updated_at > marked:
            return False
        with self.engine.connect() as conn:
            return conn.execute(select(t.tarefa_field.c.id).where(t.tarefa_field.c.ordem_field_id == order.id)
                                .limit(1)).first() is not None

    def record(self, conn: Connection, order: fcm.Order, tasks: list[fcm.Task], sent: SentTicket) -> list[dict]:
        """Upsert each task's status; a history row for each new status (one transaction per order)."""
        tf = t.tarefa_field
        known = {row.tarefa_field_id: row for row in conn.execute(
            select(tf).where(tf.c.ordem_field_id == order.id))}
        written = []
        now = db_now()
        for task in tasks:
            if not task.status:
                continue
            row = known.get(task.id)
            moment = task.moment.replace(microsecond=0) if task.moment else None
            values: dict[str, Any] = {"ordem_field_id": order.id, "ordem_identificador": order.identifier,
                                      "ticket_field_id": sent.ticket_id, "os_id": sent.os_id,
                                      "historico_id": sent.historico_id, "status": task.status,
                                      "data_status": moment, "atualizada_em": now}
            if row is not None and row.status == task.status:
                continue
            before = row.status if row is not None else None
            if row is None:
                conn.execute(tf.insert().values(tarefa_field_id=task.id, **values))
            else:
                conn.execute(tf.update().where(tf.c.id == row.id).values(**values))
            history = {"os_id": sent.os_id, "status": task.status[:50], "data_status": moment or now,
                       "observacao": describe(task, order, sent, before), "enviado_field": False,
                       "status_anterior": before, "execucao_id": self.run_id, "origem": ORIGIN,
                       "ticket_field_id": sent.ticket_id, "ticket_tipo": sent.kind,
                       "ticket_identificador": sent.identifier}
            conn.execute(t.os_status_historico.insert().values(**history))
            log.info("projeto %s: %s", sent.isales_id, history["observacao"])
            written.append({**history, "isales_id": sent.isales_id, "ordem": order.identifier or order.id})
        return written

