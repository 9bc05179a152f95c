"""`04_sync_field_api.py --conferir`: read-only reconciliation of the local database against the
FieldControl account. Every customer, location, phone, e-mail and ticket the integration created or
adopted must still exist there, not archived, carrying what the integration last sent (fields and
external.id). Each difference is printed and becomes a pending item of the step `conferir` (exit 3);
a difference no longer found is closed. Nothing is written to FieldControl.

Cost (paced like every call): per customer one GET plus its locations, phones and e-mails lists;
one GET per ticket sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

import lib.db.schema as t
from lib import fieldcontrol as fcm
from lib.config import PushSettings
from lib.db import pending
from lib.db.values import chunks
from lib.errors import BadResponse, RecordError
from lib.run import RunContext
from lib.steps.push.outbox import CONCLUIDA

log = logging.getLogger(__name__)

STEP = "conferir"

Row = dict[str, Any]


@dataclass
class Scope:
    """The local side of one customer: its rows and what the outbox says was sent or adopted."""

    cliente: Row
    isales_ids: list[str] = field(default_factory=list)
    enderecos: list[Row] = field(default_factory=list)
    actions: list[Row] = field(default_factory=list)
    tickets: list[Row] = field(default_factory=list)  # sent history rows, with the project's isales_id

    def label(self) -> str:
        word = "projeto" if len(self.isales_ids) == 1 else "projetos"
        return f"{word} {', '.join(self.isales_ids) or '?'} ({self.cliente.get('nome') or 'sem nome'})"

    def last_payload(self, *kinds: str, where: Callable[[Row], bool] = lambda a: True) -> dict | None:
        """The payload of the last concluded action of those kinds (what FieldControl should hold)."""
        sent = [a for a in self.actions if a["tipo"] in kinds and a["payload"] and where(a)]
        if not sent:
            return None
        last = max(sent, key=lambda a: (a["execucao_id"] or 0, a["concluida_em"] or a["atualizada_em"], a["id"]))
        return json.loads(last["payload"])


def load(conn: Connection, ids: list[str] | None) -> list[Scope]:
    """Customers known in FieldControl (field_id) of the projects in scope, with what they own."""
    os_query = select(t.os.c.id, t.os.c.isales_id, t.os.c.cliente_id)
    os_rows = []
    if ids:
        for chunk in chunks(ids):
            os_rows += list(conn.execute(os_query.where(t.os.c.isales_id.in_(chunk))))
    else:
        os_rows = list(conn.execute(os_query))
    cliente_ids = sorted({r.cliente_id for r in os_rows if r.cliente_id is not None})
    scopes: dict[int, Scope] = {}
    for chunk in chunks(cliente_ids):
        for row in conn.execute(select(t.cliente).where(t.cliente.c.id.in_(chunk), t.cliente.c.field_id.isnot(None))
                                .order_by(t.cliente.c.id)).mappings():
            scopes[row["id"]] = Scope(cliente=dict(row))
    isales_of = {}
    for os_row in sorted(os_rows, key=lambda r: r.id):
        if os_row.cliente_id in scopes:
            scopes[os_row.cliente_id].isales_ids.append(str(os_row.isales_id))
            isales_of[os_row.id] = str(os_row.isales_id)
    for chunk in chunks(list(scopes)):
        for row in conn.execute(select(t.endereco).where(t.endereco.c.cliente_id.in_(chunk),
                                                         t.endereco.c.location_field_id.isnot(None))).mappings():
            scopes[row["cliente_id"]].enderecos.append(dict(row))
        for row in conn.execute(select(t.acao_field).where(t.acao_field.c.cliente_id.in_(chunk),
                                                           t.acao_field.c.estado == CONCLUIDA)).mappings():
            scopes[row["cliente_id"]].actions.append(dict(row))
    hist = t.os_status_historico
    for chunk in chunks(list(isales_of)):
        query = (select(hist, t.os.c.cliente_id).join(t.os, t.os.c.id == hist.c.os_id)
                 .where(hist.c.os_id.in_(chunk), hist.c.enviado_field.is_(True), hist.c.ticket_field_id.isnot(None),
                        hist.c.origem == "isales").order_by(hist.c.id))
        for row in conn.execute(query).mappings():
            scopes[row["cliente_id"]].tickets.append({**row, "isales_id": isales_of[row["os_id"]]})
    return list(scopes.values())


class Checker:
    """Compares each scope with FieldControl; `differences` maps pending key → (isales_id, pt-BR text)."""

    def __init__(self, fc: fcm.FieldControl, echo: Callable[[str], None] = print):
        self.fc, self.echo = fc, echo
        self.differences: dict[str, tuple[str | None, str]] = {}
        self.checked: set[str] = set()
        self.counts: dict[str, int] = {}

    def _key(self, *parts: object) -> str:
        key = ":".join(str(p) for p in (STEP, *parts))[:191]
        self.checked.add(key)
        return key

    def differ(self, key: str, scope: Scope, text: str, isales_id: str | None = None) -> None:
        message = f"{scope.label()}: {text}"
        self.differences[key] = (isales_id or next(iter(scope.isales_ids), None), message)
        self.echo(f"DIFERENÇA {message}")

    def expect(self, key: str, scope: Scope, what: str, wanted: Any, got: Any, isales_id: str | None = None) -> None:
        if wanted != got:
            self.differ(key, scope, f"{what} no FieldControl é {got!r}; esperado {wanted!r}", isales_id)

    def archived(self, key: str, scope: Scope, what: str, archived: bool, isales_id: str | None = None) -> None:
        if archived:
            self.differ(key, scope, f"{what} está arquivado(a) no FieldControl", isales_id)

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def run(self, scopes: list[Scope]) -> None:
        for scope in scopes:
            try:
                self.customer(scope)
            except (RecordError, BadResponse) as exc:  # NotFound is handled; an odd answer: that customer only
                self.differ(self._key("cliente", scope.cliente["id"], "leitura"), scope,
                            f"não foi possível conferir no FieldControl ({exc.message})")

    # -- customer and what hangs from it ------------------------------------------------------------
    def customer(self, scope: Scope) -> None:
        cliente = scope.cliente
        cid, customer_id = cliente["id"], cliente["field_id"]
        self._count("clientes")
        gone = self._key("cliente", cid, "existe")
        try:
            remote = self.fc.get_customer(customer_id)
        except fcm.NotFound:
            self.differ(gone, scope, f"o cliente {customer_id} não existe mais no FieldControl (apagado?)")
            return
        self.archived(self._key("cliente", cid, "arquivado"), scope, f"o cliente {customer_id}", remote.archived)
        self.expect(self._key("cliente", cid, "documento"), scope, f"cliente {customer_id}: CPF/CNPJ",
                    fcm.document_key(cliente.get("doc_pessoal")), fcm.document_key(remote.document_number))
        sent = scope.last_payload("customer", "customer-put")
        if sent is not None:  # created (or updated) by the integration: it must hold what was sent last
            self.expect(self._key("cliente", cid, "nome"), scope, f"cliente {customer_id}: nome", sent.get("name"),
                        remote.name)
            self.expect(self._key("cliente", cid, "external"), scope, f"cliente {customer_id}: external.id",
                        (sent.get("external") or {}).get("id"), remote.external_id)
            if "contact" in sent:
                contact = sent.get("contact") or {}
                self.expect(self._key("cliente", cid, "contato-telefone"), scope,
                            f"cliente {customer_id}: telefone do contato principal",
                            fcm.phone_key(contact.get("phone")) or None, fcm.phone_key(remote.contact_phone) or None)
                self.expect(self._key("cliente", cid, "contato-email"), scope,
                            f"cliente {customer_id}: e-mail do contato principal",
                            fcm.email_key(contact.get("email")) or None, fcm.email_key(remote.contact_email) or None)
            if sent.get("address") and not fcm.same_address(remote.address, sent["address"]):
                self.differ(self._key("cliente", cid, "endereco"), scope,
                            f"cliente {customer_id}: endereço no FieldControl ({fcm.location_name(remote.address)}) "
                            f"não é o enviado ({fcm.location_name(sent['address'])})")
        self.locations(scope, customer_id)
        self.contacts(scope, customer_id, "phone", "telefone", self.fc.phones)
        self.contacts(scope, customer_id, "email", "e-mail", self.fc.emails)
        for ticket in scope.tickets:
            self.ticket(scope, ticket)

    def locations(self, scope: Scope, customer_id: str) -> None:
        if not scope.enderecos:
            return
        theirs = {loc.id: loc for loc in self.fc.locations(customer_id)}
        for endereco in scope.enderecos:
            self._count("locais")
            location_id = endereco["location_field_id"]
            key = self._key("local", endereco["id"], "existe")
            remote = theirs.get(location_id)
            if remote is None:
                self.differ(key, scope, f"o local {location_id} do endereço {endereco['id']} não existe mais "
                                        f"entre os locais do cliente {customer_id} no FieldControl")
                continue
            self.archived(self._key("local", endereco["id"], "arquivado"), scope, f"o local {location_id}",
                          remote.archived)
            ours = fcm.address_body(cep=endereco.get("cep"), logradouro=endereco.get("logradouro"),
                                    numero=endereco.get("numero"), complemento=endereco.get("complemento"),
                                    bairro=endereco.get("bairro"), cidade=endereco.get("cidade"),
                                    estado=endereco.get("estado"), latitude=endereco.get("latitude"),
                                    longitude=endereco.get("longitude"))
            if not fcm.same_address(remote.address, ours):
                self.differ(self._key("local", endereco["id"], "endereco"), scope,
                            f"local {location_id}: endereço no FieldControl ({fcm.location_name(remote.address)}) "
                            f"não é o do banco local ({fcm.location_name(ours)})")

    def contacts(self, scope: Scope, customer_id: str, tipo: str, word: str, listing: Callable[[str], list]) -> None:
        made = [a for a in scope.actions if a["tipo"] == tipo and a["field_id"]]
        if not made:
            return
        theirs = {item.id for item in listing(customer_id)}
        for action in made:
            self._count(f"{word}s")
            value = json.loads(action["payload"]).get("number" if tipo == "phone" else "address") \
                if action["payload"] else action["field_id"]
            if action["field_id"] not in theirs:
                self.differ(self._key(tipo, action["id"], "existe"), scope,
                            f"{word} {value} ({action['field_id']}) não existe mais no cliente {customer_id} "
                            "no FieldControl")

    def ticket(self, scope: Scope, event: Row) -> None:
        self._count("tickets")
        ticket_id, isales_id = event["ticket_field_id"], event["isales_id"]
        name = event.get("ticket_identificador") or ticket_id
        try:
            remote = self.fc.get_ticket(ticket_id)
        except fcm.NotFound:
            self.differ(self._key("ticket", event["id"], "existe"), scope,
                        f"a OS {name} (evento {event['id']}) não existe mais no FieldControl (apagada?)", isales_id)
            return
        self.archived(self._key("ticket", event["id"], "arquivado"), scope, f"a OS {name}", remote.archived,
                      isales_id)
        sent = scope.last_payload("ticket", "ticket-put", where=lambda a: a["historico_id"] == event["id"])
        if sent is None:
            return  # sent by the scripts before the outbox existed: existing is what can be checked
        for field_name, wanted, got in (
                ("external.id", (sent.get("external") or {}).get("id"), remote.external_id),
                ("cliente", (sent.get("customer") or {}).get("id"), remote.customer_id),
                ("serviço", (sent.get("service") or {}).get("id"), remote.service_id),
                ("local", (sent.get("location") or {}).get("id"), remote.location_id),
                ("nome", sent.get("name"), remote.name),
                ("assunto", sent.get("subject"), remote.subject)):
            self.expect(self._key("ticket", event["id"], field_name), scope, f"OS {name}: {field_name}", wanted, got,
                        isales_id)
        if (sent.get("message") or "") != (remote.message or ""):
            self.differ(self._key("ticket", event["id"], "mensagem"), scope,
                        f"OS {name}: a mensagem no FieldControl não é a enviada pela integração", isales_id)


def run(ctx: RunContext[PushSettings]) -> None:
    """The body of `04_sync_field_api.py --conferir` (step `conferir`)."""
    ids = getattr(ctx.args, "ids", None)
    with ctx.engine.connect() as conn:
        scopes = load(conn, ids)
    print(f"conferindo {len(scopes)} cliente(s) no FieldControl (somente leitura)…", flush=True)
    checker = Checker(fcm.FieldControl.from_settings(ctx.settings), echo=lambda line: print(line, flush=True))
    checker.run(scopes)
    with ctx.engine.begin() as conn:
        for key, (isales_id, message) in checker.differences.items():
            pending.record(conn, STEP, key, message, isales_id=isales_id, run_id=ctx.run_id)
        open_keys = pending.open_keys(conn, STEP)
        scope_keys = open_keys if not ids else checker.checked
        closed = pending.resolve(conn, STEP, sorted((open_keys & scope_keys) - set(checker.differences)),
                                 run_id=ctx.run_id)
    for kind, n in sorted(checker.counts.items()):
        ctx.summary.add(kind, "conferidos", n)
    if checker.differences:
        ctx.summary.add("diferenca", "pendentes", len(checker.differences))
    if closed:
        ctx.summary.extra["diferencas_resolvidas"] = closed
    print(f"{len(checker.differences)} diferença(s) entre o banco local e o FieldControl"
          + (f"; {closed} diferença(s) anterior(es) não existem mais" if closed else ""), flush=True)
