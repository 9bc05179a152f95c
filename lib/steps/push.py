"""Step 04: customers, locations, phones, e-mails and tickets to FieldControl, effectively once.
The rules live here: which status events send a ticket (the cancellation rule, `qualify`) and the run;
per-client work in push_client.py, the outbox protocol in outbox.py, remote calls in lib/fieldcontrol.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lib.db import migrate
from lib.db.engine import make_engine
from lib.errors import ConfigError
from lib.fieldcontrol import FieldControl
from lib.logs import human_duration, progress
from lib.run import RunContext, Summary
from lib.steps import push_records as records
from lib.steps.outbox import Outbox
from lib.steps.push_client import ClientSync

log = logging.getLogger(__name__)

REAL_RATE = 1.0  # requests per second the real FieldControl allows per key

# --------------------------------------------------------------------------- the cancellation rule

DISPENSED_OTHER = "movido para uma coluna que não gera OS"
DISPENSED_CANCELLED = "cancelado antes do envio"
DISPENSED_NO_TICKET = "nenhuma OS foi enviada antes: o cancelamento não gera OS"
TICKET_FOR = {"instalacao": "instalacao", "aumento": "aumento", "cancelado": "cancelamento"}
KIND_LABEL = {"instalacao": "instalação", "aumento": "aumento de sistema", "cancelamento": "cancelamento"}


@dataclass(frozen=True)
class Decision:
    """What to do with one unresolved status event: send a ticket of `ticket` kind, or dispense it."""

    event_id: int
    status: str
    ticket: str | None = None
    reason: str | None = None


def qualify(events: Sequence[tuple[int, str]], last_sent: str | None) -> list[Decision]:
    """Decisions for the unresolved events (id, status) of one project, in id order.

    `last_sent` is the ticket kind of the last event already sent (None: nothing was sent). Each
    qualifying event is assumed sent when judging the next one: one ticket per qualifying event,
    in order, never two for one event. A cancellation only follows an installation or expansion.
    """
    decisions = []
    for index, (event_id, status) in enumerate(events):
        later_cancel = any(s == "cancelado" for _, s in events[index + 1:])
        if status not in TICKET_FOR:
            decisions.append(Decision(event_id, status, reason=DISPENSED_OTHER))
        elif status in ("instalacao", "aumento") and later_cancel:
            decisions.append(Decision(event_id, status, reason=DISPENSED_CANCELLED))
        elif status == "instalacao" and last_sent not in (None, "cancelamento"):
            decisions.append(Decision(event_id, status, reason=(
                f"já existe uma OS de {KIND_LABEL[last_sent]} enviada e não cancelada para este projeto")))
        elif status == "aumento" and last_sent == "aumento":
            decisions.append(Decision(event_id, status, reason="a OS de aumento de sistema já foi enviada"))
        elif status == "cancelado" and last_sent not in ("instalacao", "aumento"):
            decisions.append(Decision(event_id, status, reason=DISPENSED_NO_TICKET))
        else:
            decisions.append(Decision(event_id, status, ticket=TICKET_FOR[status]))
            last_sent = TICKET_FOR[status]
    return decisions


def decisions_for(project: records.Project) -> list[Decision]:
    return qualify([(event["id"], event["status"]) for event in project.events], project.last_kind)


# --------------------------------------------------------------------------- the run

def check_services(fc: FieldControl, settings: Any) -> None:
    """One GET /services: every configured service id must exist (ConfigError, exit 2, otherwise)."""
    services = {service.id: service for service in fc.services()}
    available = ", ".join(f"{s.id} ({s.name})" for s in services.values() if not s.archived) or "nenhum"
    for variable, service_id in (("FIELDCONTROL_SERVICO_INSTALACAO", settings.servico_instalacao),
                                 ("FIELDCONTROL_SERVICO_AUMENTO", settings.servico_aumento),
                                 ("FIELDCONTROL_SERVICO_CANCELAMENTO", settings.servico_cancelamento)):
        if service_id not in services:
            raise ConfigError(f"configuração inválida: {variable}={service_id} não existe no FieldControl "
                              f"(serviços disponíveis: {available})")
        if services[service_id].archived:
            log.warning("%s=%s aponta para um serviço arquivado no FieldControl (%s)", variable, service_id,
                        services[service_id].name)


def service_ids(settings: Any) -> dict[str, str]:
    return {"instalacao": settings.servico_instalacao, "aumento": settings.servico_aumento,
            "cancelamento": settings.servico_cancelamento}


def _walk(sync: ClientSync, clients: list[records.Client], *, bar: bool = False) -> None:
    sync.reconcile_open(clients)
    for client in progress(clients, total=len(clients), desc="FieldControl") if bar else clients:
        sync.sync_client(client, [(project, decisions_for(project)) for project in client.projects])


def run(ctx: RunContext) -> None:
    """The body of 04_sync_field_api.py (see the door for the options)."""
    args = ctx.args
    dry_run = bool(getattr(args, "dry_run", False))
    ids = getattr(args, "ids", None)
    force = bool(getattr(args, "reprocessar_pendentes", False))
    settings = ctx.settings.fieldcontrol
    own_engine = not ctx.has_database  # the dry run opens the database itself and writes nothing
    if own_engine:
        engine = make_engine(ctx.settings.database_url)
        migrate.require_current(engine)
    else:
        engine = ctx.engine
    try:
        with engine.connect() as conn:
            clients, warnings = records.load_clients(conn, ids)
            estimate = Outbox(engine, ctx.run_id, Summary(), dry_run=True, force_retry=force)
            estimate.load(conn)
        for warning in warnings:
            ctx.summary.warn(warning)
        _walk(ClientSync(estimate, ctx.run_id, engine, service_ids(settings), scope_all=not ids), clients)
        planned, rate = estimate.planned_requests, settings.rate_per_second
        planned += 1 if planned else 0  # the check of the configured services
        log.info("o FieldControl real permite %g requisição por segundo por chave; ritmo configurado: %g/s. "
                 "%d projeto(s) de %d cliente(s) a conferir; cerca de %d requisição(ões) previstas "
                 "(≈ %s no ritmo configurado; %s a 1 req/s)", REAL_RATE, rate,
                 sum(len(c.projects) for c in clients), len(clients), planned, human_duration(planned / rate),
                 human_duration(planned / REAL_RATE))
        if dry_run:
            _dry_run(ctx, engine, clients, force)
            return
        remote: list[FieldControl] = []

        def connect() -> FieldControl:
            fc = FieldControl.from_settings(ctx.settings)
            check_services(fc, settings)
            remote.append(fc)
            return fc

        outbox = Outbox(engine, ctx.run_id, ctx.summary, force_retry=force)
        with engine.connect() as conn:
            outbox.load(conn)
        sync = ClientSync(outbox, ctx.run_id, engine, service_ids(settings), connect=connect, scope_all=not ids)
        if planned:
            sync.fc  # noqa: B018 - the configured services are checked before anything is recorded or sent
        _walk(sync, clients, bar=True)
        closed = outbox.resolve_obsolete(sync.needed, set(ids) if ids else None)
        if closed:
            ctx.summary.extra["pendencias_encerradas"] = closed
        ctx.summary.extra["requisicoes_fieldcontrol"] = sum(fc.requests_made for fc in remote)
    finally:
        if own_engine:
            engine.dispose()


def _dry_run(ctx: RunContext, engine: Any, clients: list[records.Client], force: bool) -> None:
    print("SIMULAÇÃO (--dry-run): nada é alterado, nem no banco local nem no FieldControl; "
          "nenhuma requisição é feita.")
    with engine.connect() as conn:
        outbox = Outbox(engine, ctx.run_id, ctx.summary, dry_run=True, echo=print, force_retry=force)
        outbox.load(conn)
    _walk(ClientSync(outbox, ctx.run_id, engine, service_ids(ctx.settings.fieldcontrol), echo=print,
                     scope_all=not getattr(ctx.args, "ids", None)), clients)
    if not ctx.summary.counts:
        print("nada a enviar ao FieldControl")
