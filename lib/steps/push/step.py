"""The run of step 04: the clients a batch at a time (records.Source) with the outbox actions of that
batch; the plan made first, keeping only its counts (plan.py: the estimate), then either printed as it
is made (--dry-run) or the configured services checked and each client's actions done (client.py)
after the open actions of earlier runs (reconcile.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

import lib.db.schema as t
from lib.config import PushSettings
from lib.db import migrate
from lib.db.engine import make_engine
from lib.errors import ConfigError, TransientError
from lib.fieldcontrol import FieldControl
from lib.logs import human_duration, progress
from lib.run import RunContext
from lib.steps.push import records
from lib.steps.push.client import ClientSync
from lib.steps.push.outbox import Obsolete, Outbox
from lib.steps.push.plan import Plan
from lib.steps.push.receipts import Receipts
from lib.steps.push.reconcile import Reconciler
from lib.steps.push.remote import LOOKUP_REQUESTS, Remote, lookup_requests
from lib.steps.push.rule import decisions_for
from lib.steps.push.send import Send
from lib.steps.push.status import StatusFollower

log = logging.getLogger(__name__)

REAL_RATE = 1.0  # requests per second the real FieldControl allows per key

# --------------------------------------------------------------------------- the run

def check_services(fc: FieldControl, settings: Any) -> None:
    """One GET /services: every configured service id must exist and be active (not archived);
    otherwise ConfigError (exit 2) naming every wrong variable, before anything is sent."""
    services = {service.id: service for service in fc.services()}
    available = ", ".join(f"{s.id} ({s.name})" for s in services.values() if not s.archived) or "nenhum"
    problems = []
    for variable, service_id in (("FIELDCONTROL_SERVICO_INSTALACAO", settings.servico_instalacao),
                                 ("FIELDCONTROL_SERVICO_AUMENTO", settings.servico_aumento),
                                 ("FIELDCONTROL_SERVICO_CANCELAMENTO", settings.servico_cancelamento)):
        if service_id not in services:
            problems.append(f"{variable}={service_id} não existe no FieldControl")
        elif services[service_id].archived:
            problems.append(f"{variable}={service_id} é o serviço arquivado {services[service_id].name!r}: "
                            "uma OS criada nele some das listas do FieldControl")
    if problems:
        raise ConfigError("configuração inválida: " + "; ".join(problems)
                          + f" (serviços ativos: {available})")


def service_ids(settings: Any) -> dict[str, str]:
    return {"instalacao": settings.servico_instalacao, "aumento": settings.servico_aumento,
            "cancelamento": settings.servico_cancelamento}


def _sync(act: Send | Plan, outbox: Outbox, ctx: RunContext[PushSettings], rows: records.Rows,
          connect: Callable[[], FieldControl] | None = None,
          obsolete: Obsolete | None = None) -> tuple[Reconciler, ClientSync]:
    """The collaborators of one walk: the open actions' reconciler and the per-client sync, sharing
    `act`, the FieldControl look-ups and the receipts."""
    remote, receipts = Remote(outbox, connect), Receipts(outbox, ctx.run_id)
    reconciler = Reconciler(outbox, act, remote, receipts, rows, scope_all=not getattr(ctx.args, "ids", None))
    return reconciler, ClientSync(outbox, act, remote, receipts, rows, service_ids(ctx.settings.fieldcontrol),
                                  obsolete)


def _batches(source: records.Source, sync: ClientSync) -> Iterator[records.Client]:
    """The run's clients, one batch held at a time with its outbox actions (issue 14 §2)."""
    for batch in source.batches():
        with sync.rows.engine.connect() as conn:
            sync.outbox.load(conn, records.keys_of(batch))
        yield from batch
        sync.end_batch()


def _walk(reconciler: Reconciler, sync: ClientSync, source: records.Source, *, plan: Plan | None = None,
          after: Callable[[], None] = lambda: None, total: int | None = None) -> None:
    """The open actions of earlier runs, then every client; `after` each page of them and each client."""
    reconciler.reconcile_open(source)
    after()
    sync.remote.keep_lists()
    clients = _batches(source, sync)
    for loaded in progress(clients, total=total, desc="FieldControl") if total is not None else clients:
        if plan is not None:
            plan.start(loaded.id, loaded.label(), len(loaded.projects))
            client: records.Client | None = loaded
        else:  # the real run re-reads each client just before sending: step 03 may have edited it since
            client = sync.reread(loaded)
        if client is not None:
            sync.sync_client(client, [(project, decisions_for(project)) for project in client.projects])
        after()


def make_plan(ctx: RunContext[PushSettings], outbox: Outbox, rows: records.Rows, source: records.Source,
              after: Callable[[Plan], None] = lambda plan: None) -> Plan:
    """The plan of this run (no request, no write), judged against the outbox as each batch is read;
    `after(plan)` takes its entries as they come (the plan holds one client's, and its counts)."""
    plan = Plan(outbox)
    _walk(*_sync(plan, outbox, ctx, rows), source, plan=plan, after=lambda: after(plan))
    return plan


def estimate(plan: Plan, engine: Engine) -> int:
    """The requests a run of this plan takes: the plan's, with the customer look-ups as the run will
    make them (the account read once when that is cheaper: remote.py), and the services check."""
    wanted = plan.lookups["customer"]
    with engine.connect() as conn:
        known = conn.execute(select(func.count()).select_from(t.cliente).where(t.cliente.c.field_id.isnot(None))).scalar()
    planned = plan.requests - LOOKUP_REQUESTS * wanted + lookup_requests(wanted, known or 0)
    return planned + 1 if planned else 0


def run(ctx: RunContext[PushSettings]) -> None:
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
        outbox = Outbox(engine, ctx.run_id, ctx.summary, force_retry=force, settle_seconds=settings.settle_seconds)
        source = records.Source(engine, ids)
        for warning in source.warnings:
            ctx.summary.warn(warning)
        rows = records.Rows(engine)
        if dry_run:
            _dry_run(ctx, outbox, rows, source, engine)
            return
        plan = make_plan(ctx, outbox, rows, source, Plan.drop)  # counts only
        _log_estimate(plan, estimate(plan, engine), settings.rate_per_second)
        remote: list[FieldControl] = []

        def connect() -> FieldControl:
            fc = FieldControl.from_settings(ctx.settings)
            check_services(fc, settings)
            remote.append(fc)
            return fc

        obsolete = Obsolete(outbox, set(ids) if ids else None)
        reconciler, sync = _sync(Send(outbox, engine), outbox, ctx, rows, connect, obsolete)
        sync.remote.expected_lookups = plan.lookups["customer"]
        if plan.requests:
            sync.remote.fc  # noqa: B018 - the configured services are checked before anything is recorded or sent
        _walk(reconciler, sync, source, total=plan.client_count)
        closed = obsolete.resolve()
        if closed:
            ctx.summary.extra["pendencias_encerradas"] = closed
        followed = StatusFollower(engine, lambda: sync.remote.fc, ctx.run_id).run(ids)
        for change in followed.changes:
            ctx.summary.add("atividade_fieldcontrol", change["status"])
        ctx.summary.extra["requisicoes_fieldcontrol"] = sum(fc.requests_made for fc in remote)
        if outbox.settling:
            raise TransientError(
                f"{len(outbox.settling)} escrita(s) no FieldControl com resultado incerto aguardam o período de "
                f"espera (FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS={settings.settle_seconds:g}) antes de qualquer "
                "reenvio; o resto desta execução terminou normalmente e a próxima execução depois da espera "
                "confere cada uma e só reenvia o que não estiver lá (veja data/pendencias.json)")
    finally:
        if own_engine:
            engine.dispose()


def _log_estimate(plan: Plan, planned: int, rate: float) -> None:
    log.info("o FieldControl real permite %g requisição por segundo por chave; ritmo configurado: %g/s. "
             "%d projeto(s) de %d cliente(s) a conferir; cerca de %d requisição(ões) previstas "
             "(≈ %s no ritmo configurado; %s a 1 req/s)", REAL_RATE, rate, plan.projects, plan.client_count,
             planned, human_duration(planned / rate), human_duration(planned / REAL_RATE))


def _dry_run(ctx: RunContext[PushSettings], outbox: Outbox, rows: records.Rows, source: records.Source,
             engine: Engine) -> None:
    """The plan printed as it is made, a client at a time; the estimate once it is all known."""
    print("SIMULAÇÃO (--dry-run): nada é alterado, nem no banco local nem no FieldControl; "
          "nenhuma requisição é feita.")

    def show(plan: Plan) -> None:
        entries, notes = plan.take()
        for entry in entries:
            print(entry.text())
        for note in notes:
            log.info("%s", note)

    plan = make_plan(ctx, outbox, rows, source, show)
    _log_estimate(plan, estimate(plan, engine), ctx.settings.fieldcontrol.rate_per_second)
    for kind, outcomes in plan.summary.counts.items():
        for outcome, count in outcomes.items():
            ctx.summary.add(kind, outcome, count)
    if not ctx.summary.counts:
        print("nada a enviar ao FieldControl")
