"""The e-mail run report: what was created or adopted in FieldControl, the pending items, the counts.

Sent after every run of 04 and after any step that ends with pending items, when SMTP_HOST is
set. Sending never changes a run's data or exit code: a failure is a warning in the log.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

import lib.db.schema as t
from lib import config as config_module
from lib.config import ReportSettings, Settings, SmtpSettings
from lib.db import pending
from lib.errors import EXIT_PENDING, ConfigError
from lib.logs import redact
from lib.status import FIELDCONTROL_ORIGIN, TICKET_TITLES

if TYPE_CHECKING:  # lib.run calls after_run: only the type is needed here
    from lib.run import RunContext

log = logging.getLogger(__name__)

REVIEW_PREFIX = "revisar:"  # lib/steps/review.py: items FieldControl cannot be made to follow


def hide_document(doc: str | None) -> str:
    """Only the last digits of a CPF/CNPJ travel in an e-mail."""
    if not doc:
        return "sem documento"
    return "*" * max(len(doc) - 4, 0) + doc[-4:]


def _plural(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


@dataclass
class ReportData:
    step: str
    run_id: int | None
    exit_code: int
    counts_text: str
    customers: list[dict] = field(default_factory=list)   # nome, documento, acao, field_id
    tickets: list[dict] = field(default_factory=list)     # nome, documento, tipo, field_id, isales_id, os
    pending: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    field_done: list[dict] = field(default_factory=list)      # tasks done in FieldControl (seen this run)
    field_canceled: list[dict] = field(default_factory=list)  # tasks cancelled in FieldControl
    review: list[dict] = field(default_factory=list)          # "revise no FieldControl" items (open)


def is_review(item: dict) -> bool:
    """A "revise no FieldControl" item (listed apart from the pending items)."""
    return item["etapa"] == "04" and item["chave"].startswith(REVIEW_PREFIX)


def collect(engine: Engine, step: str, run_id: int | None, exit_code: int, counts_text: str,
            warnings: list[str] | None = None) -> ReportData:
    """What the report of run `run_id` of `step` says, read from the database."""
    data = ReportData(step, run_id, exit_code, counts_text, warnings=list(warnings or []))
    with engine.connect() as conn:
        items = pending.open_items(conn)
        data.pending = [p for p in items if not is_review(p)]
        data.review = [p for p in items if is_review(p)]
        if step != "04" or run_id is None:
            return data
        for name, read in PUSH_READERS.items():
            setattr(data, name, list(read(conn, run_id)))
    return data


def _started(conn: Connection, run_id: int) -> datetime:
    return conn.execute(select(t.execucao.c.iniciada_em).where(t.execucao.c.id == run_id)).scalar_one()


def _done_since(started: datetime) -> ColumnElement[bool]:
    return and_(t.acao_field.c.estado == t.CONCLUIDA, t.acao_field.c.concluida_em >= started)


def _customers(conn: Connection, run_id: int) -> Iterator[dict]:
    """The customers run `run_id` created, then those it adopted, row by row from the database."""
    for row in conn.execute(
        select(t.cliente.c.nome, t.cliente.c.doc_pessoal, t.acao_field.c.field_id)
        .join(t.cliente, t.cliente.c.id == t.acao_field.c.cliente_id)
        .where(_done_since(_started(conn, run_id)), t.acao_field.c.tipo == "customer").order_by(t.acao_field.c.id)
    ):
        yield {"nome": row.nome, "documento": hide_document(row.doc_pessoal), "acao": "criado",
               "field_id": row.field_id}
    for row in conn.execute(
        select(t.cliente.c.nome, t.cliente.c.doc_pessoal, t.cliente.c.field_id)
        .join(t.alteracao, and_(t.alteracao.c.tabela == "cliente", t.alteracao.c.registro_id == t.cliente.c.id))
        .where(t.alteracao.c.campo == "field_id", t.alteracao.c.execucao_id == run_id,
               t.cliente.c.criado_pelo_script.is_not(True))
        .order_by(t.cliente.c.id)
    ):
        yield {"nome": row.nome, "documento": hide_document(row.doc_pessoal), "acao": "adotado",
               "field_id": row.field_id}


def _tickets(conn: Connection, run_id: int) -> Iterator[dict]:
    """The tickets run `run_id` created."""
    h = t.os_status_historico
    for ticket in conn.execute(
        select(t.cliente.c.nome, t.cliente.c.doc_pessoal, h.c.ticket_tipo, t.acao_field.c.field_id,
               t.os.c.isales_id, h.c.ticket_identificador)
        .join(h, h.c.id == t.acao_field.c.historico_id)
        .join(t.os, t.os.c.id == h.c.os_id)
        .join(t.cliente, t.cliente.c.id == t.os.c.cliente_id)
        .where(_done_since(_started(conn, run_id)), t.acao_field.c.tipo == "ticket").order_by(t.acao_field.c.id)
    ):
        yield {"nome": ticket.nome, "documento": hide_document(ticket.doc_pessoal),
               "tipo": TICKET_TITLES.get(ticket.ticket_tipo, ticket.ticket_tipo or "?"),
               "field_id": ticket.field_id, "isales_id": ticket.isales_id,
               # people know a ticket by its human number ("1#00004143"), not the API id
               "os": ticket.ticket_identificador or ticket.field_id or ""}


def _field_events(status: str) -> Callable[[Connection, int], Iterator[dict]]:
    """The tasks FieldControl reported `status` (done, canceled) that run `run_id` read."""
    h = t.os_status_historico

    def read(conn: Connection, run_id: int) -> Iterator[dict]:
        for event in conn.execute(
            select(t.cliente.c.nome, t.cliente.c.doc_pessoal, t.os.c.isales_id, h.c.status, h.c.ticket_tipo,
                   h.c.ticket_identificador, h.c.ticket_field_id, h.c.data_status, h.c.observacao)
            .join(t.os, t.os.c.id == h.c.os_id)
            .join(t.cliente, t.cliente.c.id == t.os.c.cliente_id)
            .where(h.c.origem == FIELDCONTROL_ORIGIN, h.c.execucao_id == run_id, h.c.status == status)
            .order_by(h.c.id)
        ):
            yield {"nome": event.nome, "documento": hide_document(event.doc_pessoal), "isales_id": event.isales_id,
                   "tipo": TICKET_TITLES.get(event.ticket_tipo, event.ticket_tipo or "?"),
                   "os": event.ticket_identificador or event.ticket_field_id or "",
                   "data": event.data_status.strftime("%d/%m/%Y %H:%M") if event.data_status else "",
                   "observacao": event.observacao or ""}
    return read


# what a run of 04 did, by the ReportData list that holds it in the e-mail: each read row by row
PUSH_READERS: dict[str, Callable[[Connection, int], Iterator[dict]]] = {
    "customers": _customers, "tickets": _tickets, "field_done": _field_events("done"),
    "field_canceled": _field_events("canceled")}
_EVENT_HEADER = ["tipo", "cliente", "documento", "projeto iSales", "OS", "quando"]
# (title, header, ReportData list, its row) of each part about what a run of 04 did
PUSH_SECTIONS: tuple[tuple[str, list[str], str, Callable[[dict], list[str]]], ...] = (
    ("Clientes criados ou adotados no FieldControl", ["cliente", "documento", "ação", "id FieldControl"], "customers",
     lambda c: [c["nome"] or "", c["documento"], c["acao"], c["field_id"] or ""]),
    ("OS (tickets) criadas", ["tipo", "cliente", "documento", "projeto iSales", "OS"], "tickets",
     lambda k: [k["tipo"], k["nome"] or "", k["documento"], k["isales_id"] or "", k["os"]]),
    ("Instalações concluídas no FieldControl", _EVENT_HEADER, "field_done",
     lambda k: [k["tipo"], k["nome"] or "", k["documento"], k["isales_id"] or "", k["os"], k["data"]]),
    ("Canceladas no FieldControl", _EVENT_HEADER + ["observação"], "field_canceled",
     lambda k: [k["tipo"], k["nome"] or "", k["documento"], k["isales_id"] or "", k["os"], k["data"],
                k["observacao"]]),
)


def push_sections(conn: Connection, run_id: int) -> Iterator[tuple[str, list[str], int, Iterator[list[str]]]]:
    """The report's parts about what run `run_id` of 04 did, as (title, header, count, rows) with the
    rows read from the database as they are used: a first load creates tens of thousands of customers
    and tickets, and the page (lib/panel.py) never holds them all (issue 14 §2). Each part is read twice
    (its count, then its rows); consume a part's rows before asking for the next part."""
    for title, header, name, row in PUSH_SECTIONS:
        count = sum(1 for _ in PUSH_READERS[name](conn, run_id))
        yield title, header, count, (row(item) for item in PUSH_READERS[name](conn, run_id))


def subject(data: ReportData, when: datetime) -> str:
    day = when.strftime("%d/%m/%Y")
    pend = _plural(len(data.pending), "pendência", "pendências")
    if data.step == "04":
        created = _plural(len(data.tickets), "OS criada", "OS criadas")
        return f"[iSales→FieldControl] {created}, {pend} — {day}"
    return f"[iSales→FieldControl] etapa {data.step}: {pend} — {day}"


def sections(data: ReportData) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each part of the report, shared by the text and HTML bodies."""
    sections = []
    if data.step == "04":
        sections += [(title, header, [row(item) for item in getattr(data, name)])
                     for title, header, name, row in PUSH_SECTIONS]
    if data.review:
        sections.append(("Revise no FieldControl (marque com 04_sync_field_api.py --revisado CHAVE)",
                         ["projeto iSales", "o que revisar", "desde", "chave"],
                         [[p["isales_id"] or "", p["motivo"], p["primeira_vez"], p["chave"]] for p in data.review]))
    sections.append(("Pendências abertas", ["etapa", "registro", "motivo", "desde", "tentativas"],
                     [[p["etapa"], p["chave"], p["motivo"], p["primeira_vez"], str(p["tentativas"])]
                      for p in data.pending]))
    return sections


def render_text(data: ReportData) -> str:
    lines = [f"Relatório da etapa {data.step} (execução #{data.run_id}, código de saída {data.exit_code})", ""]
    for title, _header, rows in sections(data):
        lines.append(f"{title}: {len(rows)}")
        for row in rows:
            lines.append("  - " + " | ".join(row))
        lines.append("")
    lines += ["Contagens da execução:", data.counts_text, ""]
    if data.warnings:
        lines += ["Avisos:"] + [f"  - {w}" for w in data.warnings] + [""]
    if data.exit_code == EXIT_PENDING or data.pending:
        lines.append("As pendências são tentadas de novo automaticamente na próxima execução.")
    return redact("\n".join(lines)) + "\n"


def render_html(data: ReportData) -> str:
    e = html.escape
    parts = [f"<h2>Relatório da etapa {e(data.step)}</h2>",
             f"<p>Execução #{e(str(data.run_id))}, código de saída {data.exit_code}.</p>"]
    for title, header, rows in sections(data):
        parts.append(f"<h3>{e(title)}: {len(rows)}</h3>")
        if rows:
            head = "".join(f"<th>{e(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
            parts.append(f'<table border="1" cellpadding="4" cellspacing="0"><tr>{head}</tr>{body}</table>')
    parts.append(f"<h3>Contagens da execução</h3><pre>{e(data.counts_text)}</pre>")
    if data.warnings:
        parts.append("<h3>Avisos</h3><ul>" + "".join(f"<li>{e(w)}</li>" for w in data.warnings) + "</ul>")
    return redact("<html><body>" + "".join(parts) + "</body></html>")


def build_message(smtp: SmtpSettings, data: ReportData, when: datetime | None = None) -> EmailMessage:
    when = when or datetime.now()
    message = EmailMessage()
    message["Subject"] = subject(data, when)
    message["From"] = smtp.sender
    message["To"] = ", ".join(smtp.recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="isales-field-sync")
    message.set_content(render_text(data))
    message.add_alternative(render_html(data), subtype="html")
    return message


def send(smtp: SmtpSettings, message: EmailMessage, timeout: float = 30.0) -> None:
    with smtplib.SMTP(smtp.host or "", smtp.port, timeout=timeout) as client:
        client.ehlo()
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        client.send_message(message)


def after_run(ctx: RunContext[Settings], exit_code: int) -> None:
    """The hook run.run_step calls at the end of a run of steps 01–04 that used the database."""
    if getattr(ctx.args, "sem_email", False):
        return
    try:
        smtp = config_module.load_for(ReportSettings).smtp
    except ConfigError as exc:
        ctx.summary.warn(f"relatório por e-mail não enviado: {exc.message}")
        return
    if not smtp.host:
        return
    has_pending = bool(ctx.summary.extra.get("pendencias_abertas"))
    if ctx.step != "04" and not has_pending:
        return
    try:
        data = collect(ctx.engine, ctx.step, ctx.run_id, exit_code, ctx.summary.render(), ctx.summary.warnings)
        send(smtp, build_message(smtp, data))
    except (OSError, smtplib.SMTPException) as exc:
        ctx.summary.warn(f"relatório por e-mail não enviado para {smtp.host}:{smtp.port}: "
                         f"{type(exc).__name__}: {redact(exc)}")
        return
    ctx.summary.extra["email_enviado_para"] = len(smtp.recipients)
    log.info("relatório enviado por e-mail para %s", ", ".join(smtp.recipients))

