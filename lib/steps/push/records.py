"""What step 04 reads from the local database (projects with events to send or already in
FieldControl, with their client, address and payment, read in batches) and the local receipts it
writes (FieldControl ids, sent events, dispensed events), every field change logged in `alteracao`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select, Update

import lib.db.schema as t
from lib import fieldcontrol as fcm
from lib.clock import db_now
from lib.db.values import change_log_rows, changed_fields, check_fits, chunks
from lib.status import TICKET_OF_STATUS
from lib.steps.push.outbox import Keys, digest

log = logging.getLogger(__name__)

ORIGIN = "04"

Row = dict[str, Any]
TABLES = {"cliente": t.cliente, "endereco": t.endereco, "os_status_historico": t.os_status_historico}


# statements built once per table (their compiled form and cache key are kept with them): ids and
# values come at execution
_statements: dict[tuple[str, str], Any] = {}


def _statement(kind: str, table: Table) -> Any:
    key = (kind, table.name)
    if key not in _statements:
        if kind == "in":
            _statements[key] = select(table).where(table.c.id.in_(bindparam("ids_", expanding=True)))
        elif kind == "one":
            _statements[key] = select(table).where(table.c.id == bindparam("id_"))
        elif kind == "lock":
            _statements[key] = select(table).where(table.c.id == bindparam("id_")).with_for_update()
        else:
            _statements[key] = table.update().where(table.c.id == bindparam("id_"))
    return _statements[key]


_hist = t.os_status_historico
# only iSales rows are events; rows FieldControl's task statuses wrote (origem) are history only
EVENTS_OF = (select(_hist).where(_hist.c.os_id.in_(bindparam("ids_", expanding=True)), _hist.c.origem == "isales")
             .order_by(_hist.c.id))
PAYMENTS_OF = (select(t.pagamento).where(t.pagamento.c.os_id.in_(bindparam("ids_", expanding=True)))
               .order_by(t.pagamento.c.id))


# a project with its client and address (step 04 re-reads each client's just before sending)
OS_WITH_CLIENT = (select(t.os, t.cliente, t.endereco)
                  .select_from(t.os.outerjoin(t.cliente, t.os.c.cliente_id == t.cliente.c.id)
                               .outerjoin(t.endereco, t.os.c.endereco_id == t.endereco.c.id))
                  .where(t.os.c.id.in_(bindparam("ids_", expanding=True))))


def select_in(table: Table) -> Select:
    """SELECT * FROM table WHERE id IN :ids_ (expanding)."""
    return _statement("in", table)


def update_by_id(table: Table) -> Update:
    """UPDATE table SET <the columns given at execution> WHERE id = :id_."""
    return _statement("update", table)


def rows_by_id(conn: Connection, table: Table, ids: Iterable[int]) -> dict[int, Row]:
    result: dict[int, Row] = {}
    for chunk in chunks(ids):
        for row in conn.execute(select_in(table), {"ids_": chunk}).mappings():
            result[row["id"]] = dict(row)
    return result


def sent_kind(row: Row) -> str:
    """The ticket kind of a sent history row (legacy rows without ticket_tipo: from their status)."""
    return row.get("ticket_tipo") or TICKET_OF_STATUS.get(row.get("status") or "", "instalacao")


def address_of(endereco: Row) -> dict:
    """The FieldControl address of an `endereco` row."""
    return fcm.address_body(cep=endereco.get("cep"), logradouro=endereco.get("logradouro"),
                            numero=endereco.get("numero"), complemento=endereco.get("complemento"),
                            bairro=endereco.get("bairro"), cidade=endereco.get("cidade"),
                            estado=endereco.get("estado"), latitude=endereco.get("latitude"),
                            longitude=endereco.get("longitude"))


def external_id(cliente: Row) -> str:
    """The external id of a customer this integration creates (stable: the document)."""
    return f"isales-sync:cliente:{cliente.get('doc_pessoal')}"


@dataclass
class Project:
    """One `os` with its unresolved events (id order) and the last event sent to FieldControl."""

    os: Row
    pagamento: Row | None = None
    events: list[Row] = field(default_factory=list)
    last_sent: Row | None = None
    sent_before: Row | None = None  # the sent event before last_sent (a cancellation's message names it)

    @property
    def id(self) -> int:
        return self.os["id"]

    @property
    def isales_id(self) -> str:
        return str(self.os["isales_id"])

    @property
    def last_kind(self) -> str | None:
        return sent_kind(self.last_sent) if self.last_sent else None


@dataclass
class Client:
    cliente: Row
    projects: list[Project] = field(default_factory=list)
    enderecos: dict[int, Row] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.cliente["id"]

    def label(self, project: Project | None = None) -> str:
        """"projeto 4711 (Maria da Silva)" — or all the client's projects when none is given."""
        ids = [project.isales_id] if project else [p.isales_id for p in self.projects]
        word = "projeto" if len(ids) == 1 else "projetos"
        return f"{word} {', '.join(ids)} ({self.cliente.get('nome') or 'sem nome'})"


BATCH = 500  # clients read from the database at a time (step 04 holds one batch, issue 14 §2)


class Source:
    """The clients of a run, a batch at a time (keyset pages of `cliente.id`): every client with a
    project that has unresolved events or was sent before — of all projects, or of those of --ids.
    `warnings`: --ids that are not in the database, projects without a client."""

    def __init__(self, engine: Engine, ids: list[str] | None, size: int | None = None):
        self.engine, self.size = engine, size or BATCH
        self.warnings: list[str] = []
        self._projects_of: dict[int, list[int]] | None = None  # --ids: each client's os ids among them
        with engine.connect() as conn:
            if ids:
                found: set[str] = set()
                self._projects_of = {}
                orphans: list[Row] = []
                for chunk in chunks(ids):
                    for row in conn.execute(select(t.os).where(t.os.c.isales_id.in_(chunk))).mappings():
                        found.add(str(row["isales_id"]))
                        if row["cliente_id"] is None:
                            orphans.append(dict(row))
                        else:
                            self._projects_of.setdefault(row["cliente_id"], []).append(row["id"])
                unknown = sorted(set(ids) - found, key=int)
                if unknown:
                    self.warnings.append(
                        f"{'projeto' if len(unknown) == 1 else 'projetos'} {', '.join(unknown)} de --ids "
                        f"{'não está' if len(unknown) == 1 else 'não estão'} no banco local: nada a enviar "
                        "(confira o número, ou rode 01, 02 e 03 com --ids antes)")
            else:
                orphans = [dict(r) for r in conn.execute(select(t.os).where(t.os.c.cliente_id.is_(None))).mappings()]
            self.warnings += _clients(conn, orphans)[1]

    def batches(self) -> Iterator[list[Client]]:
        """The clients, `size` client ids at a time (each batch read in a connection of its own)."""
        if self._projects_of is not None:
            order = sorted(self._projects_of)
            for start in range(0, len(order), self.size):
                yield self.clients_of(order[start:start + self.size])
            return
        last = 0  # ids start at 1
        while True:
            with self.engine.connect() as conn:
                page = [row[0] for row in conn.execute(
                    select(t.os.c.cliente_id).where(t.os.c.cliente_id > last).distinct()
                    .order_by(t.os.c.cliente_id).limit(self.size))]
                if not page:
                    return
                clients = self._load(conn, t.os.c.cliente_id, page)
            yield clients
            last = page[-1]

    def clients_of(self, cliente_ids: Iterable[int | None]) -> list[Client]:
        """The clients of the run among `cliente_ids` (as the database holds them now)."""
        with self.engine.connect() as conn:
            if self._projects_of is None:
                return self._load(conn, t.os.c.cliente_id, cliente_ids)
            os_ids = [os_id for cliente_id in cliente_ids for os_id in self._projects_of.get(cliente_id or 0, ())]
            return self._load(conn, t.os.c.id, os_ids)

    @staticmethod
    def _load(conn: Connection, column: Any, values: Iterable[Any]) -> list[Client]:
        os_rows: list[Row] = []
        for chunk in chunks(values):
            os_rows += [dict(r) for r in conn.execute(select(t.os).where(column.in_(chunk))).mappings()]
        return _clients(conn, os_rows)[0]


def keys_of(clients: Iterable[Client]) -> Keys:
    """What the outbox actions of these clients can be recorded under (outbox.load)."""
    keys = Keys()
    for client in clients:
        keys.cliente_ids.add(client.id)
        keys.endereco_ids.update(client.enderecos)
        for project in client.projects:
            keys.historico_ids.update(row["id"] for row in (*project.events, project.last_sent, project.sent_before)
                                      if row)
    return keys


def reread(conn: Connection, client: Client) -> Client | None:
    """The client's rows as the database holds them now, read just before its actions are sent (step
    03 may have edited them since the run began). A project that moved to another client, or that
    no longer needs anything, waits for the next run; None when nothing of the client is left."""
    os_rows: list[Row] = []
    known: dict[str, dict[int, Row]] = {"cliente": {}, "endereco": {}}
    for chunk in chunks([project.id for project in client.projects]):
        for row in conn.execute(OS_WITH_CLIENT, {"ids_": chunk}):
            os_rows.append({column.name: row._mapping[column] for column in t.os.c})
            for name in known:  # the client and address of each project, read in the same statement
                table = TABLES[name]
                if row._mapping[table.c.id] is not None:
                    known[name][row._mapping[table.c.id]] = {column.name: row._mapping[column] for column in table.c}
    clients, _warnings = _clients(conn, os_rows, known)
    return next((fresh for fresh in clients if fresh.id == client.id), None)


def _clients(conn: Connection, os_rows: list[Row],
             known: dict[str, dict[int, Row]] | None = None) -> tuple[list[Client], list[str]]:
    """`known`: the `cliente` and `endereco` rows of the projects, when read with them."""
    projects = {row["id"]: Project(os=row) for row in os_rows}
    for chunk in chunks(list(projects)):
        for row in conn.execute(EVENTS_OF, {"ids_": chunk}).mappings():
            project = projects[row["os_id"]]
            if row["enviado_field"]:
                project.sent_before, project.last_sent = project.last_sent, dict(row)
            elif row["motivo_dispensa"] is None:
                project.events.append(dict(row))
    wanted = [p for p in projects.values() if p.events or p.last_sent]
    warnings = [f"projeto {p.isales_id}: sem cliente no banco local; rode 03_sync_dados_local.py de novo"
                for p in wanted if p.os["cliente_id"] is None]
    wanted = [p for p in wanted if p.os["cliente_id"] is not None]
    for chunk in chunks([p.id for p in wanted]):
        for row in conn.execute(PAYMENTS_OF, {"ids_": chunk}).mappings():
            project = projects[row["os_id"]]
            project.pagamento = project.pagamento or dict(row)
    if known is None:
        clientes = rows_by_id(conn, t.cliente, (p.os["cliente_id"] for p in wanted))
        enderecos = rows_by_id(conn, t.endereco, (p.os["endereco_id"] for p in wanted))
    else:
        clientes, enderecos = known["cliente"], known["endereco"]
    clients: dict[int, Client] = {}
    for project in sorted(wanted, key=lambda p: p.id):
        client = clients.setdefault(project.os["cliente_id"], Client(cliente=clientes[project.os["cliente_id"]]))
        client.projects.append(project)
        endereco_id = project.os["endereco_id"]
        if endereco_id in enderecos:
            client.enderecos[endereco_id] = enderecos[endereco_id]
    return list(clients.values()), warnings


class Rows:
    """Rows read by id, kept for one batch of clients (the rows of clients outside the batch)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._rows: dict[tuple[str, int], Row | None] = {}

    def clear(self) -> None:
        """Forget what was read (at the end of each batch of clients)."""
        self._rows.clear()

    def row(self, table: str, row_id: int | None, conn: Connection | None = None) -> Row | None:
        """`conn`: inside a transaction (a receipt), read with it — another connection would wait for
        the transaction's own write lock on SQLite."""
        if row_id is None:
            return None
        key = (table, row_id)
        if key not in self._rows:
            if conn is not None:
                self._rows[key] = rows_by_id(conn, TABLES[table], [row_id]).get(row_id)
            else:
                with self.engine.connect() as own:
                    self._rows[key] = rows_by_id(own, TABLES[table], [row_id]).get(row_id)
        return self._rows[key]


# --------------------------------------------------------------------------- receipts

def audited_update(conn: Connection, table: Table, row_id: int, values: Row, run_id: int | None,
                   record: str) -> dict:
    """Update the fields of `values` that changed and log each change in `alteracao`."""
    current = conn.execute(_statement("one", table), {"id_": row_id}).mappings().first()
    if current is None:
        return {}
    changes = changed_fields(table, current, values)
    if not changes:
        return {}
    new_values = {name: new for name, (_old, new) in changes.items()}
    check_fits(table, new_values, record)
    conn.execute(update_by_id(table), {**new_values, "id_": row_id})
    conn.execute(t.alteracao.insert(),
                 change_log_rows(table, row_id, changes, run_id=run_id, origin=ORIGIN, moment=db_now()))
    return changes


def record_customer(conn: Connection, cliente_id: int, customer_id: str, *, ours: bool,
                    run_id: int | None) -> None:
    audited_update(conn, t.cliente, cliente_id, {"field_id": customer_id, "criado_pelo_script": ours},
                   run_id, f"cliente {cliente_id}")


def record_location(conn: Connection, endereco_id: int, location_id: str, run_id: int | None) -> None:
    audited_update(conn, t.endereco, endereco_id, {"location_field_id": location_id}, run_id,
                   f"endereço {endereco_id}")


def bind_location(conn: Connection, endereco_id: int, location_id: str, sent: dict, run_id: int | None) -> bool:
    """Compare-and-set: the location is recorded on the address row only if the row still holds the
    address that was sent (step 03 may have edited it meanwhile) and has no other location. The row
    is read locked (FOR UPDATE on MySQL; SQLite's transactions already hold its only write lock)."""
    row = conn.execute(_statement("lock", t.endereco), {"id_": endereco_id}).mappings().first()
    if row is None or (row["location_field_id"] and row["location_field_id"] != location_id):
        return False
    if digest(address_of(dict(row))) != digest(sent):
        log.info("endereço %s mudou enquanto o local %s era enviado: o local fica com o endereço enviado e o "
                 "endereço novo recebe o seu na próxima passada", endereco_id, location_id)
        return False
    record_location(conn, endereco_id, location_id, run_id)
    return True


def record_ticket(conn: Connection, event_id: int, os_id: int, kind: str, ticket_id: str, service_id: str | None,
                  run_id: int | None, identifier: str | None = None) -> None:
    """The event is sent; the os points at its last ticket and that ticket's service."""
    hist = t.os_status_historico
    values = {"enviado_field": True, "ticket_tipo": kind, "ticket_field_id": ticket_id, "enviado_em": db_now(),
              "motivo_dispensa": None}
    if identifier:  # a receipt without it (found again by id only) keeps the one already recorded
        values["ticket_identificador"] = identifier[:50]
    conn.execute(update_by_id(hist), {**values, "id_": event_id})
    audited_update(conn, t.os, os_id, {"field_id": ticket_id, "tipo_servico": service_id, "criado_pelo_script": True},
                   run_id, f"os {os_id}")


def record_identifier(conn: Connection, event_id: int, identifier: str) -> None:
    conn.execute(update_by_id(t.os_status_historico), {"ticket_identificador": identifier[:50], "id_": event_id})


def reopen_after(conn: Connection, event: Row) -> tuple[list[int], list[int]]:
    """A dispensed event whose ticket turned out to exist (an open POST that landed; earlier versions
    dispensed such events): the later events of its project that were dispensed judging it not sent
    lose their reason, so the next decision of the rule sees the ticket (a cancellation then sends its
    ticket). Not when a later event was sent since: (reopened ids, ids left for the operator)."""
    hist = t.os_status_historico
    later = conn.execute(select(hist.c.id, hist.c.enviado_field, hist.c.motivo_dispensa).where(
        hist.c.os_id == event["os_id"], hist.c.id > event["id"], hist.c.origem == "isales")).all()
    dispensed = [row.id for row in later if not row.enviado_field and row.motivo_dispensa is not None]
    if not dispensed:
        return [], []
    if any(row.enviado_field for row in later):
        return [], dispensed
    conn.execute(hist.update().where(hist.c.id.in_(dispensed), hist.c.enviado_field.isnot(True))
                 .values(motivo_dispensa=None))
    return dispensed, []


def record_dispensed(conn: Connection, event_id: int, reason: str) -> None:
    hist = t.os_status_historico
    conn.execute(hist.update().where(hist.c.id == event_id, hist.c.enviado_field.isnot(True))
                 .values(motivo_dispensa=reason))
