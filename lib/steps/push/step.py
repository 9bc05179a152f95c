"""The run of step 04: load the clients and the outbox, make the plan (plan.py: its request count is
the estimate), then either print it (--dry-run) or check the configured services and do each client's
actions (client.py) after the open actions of earlier runs (reconcile.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lib.config import PushSettings
from lib.db import migrate
from lib.db.engine import make_engine
from lib.errors import ConfigError, TransientError
from lib.fieldcontrol import FieldControl
from lib.logs import human_duration, progress
from lib.run import RunContext
from lib.steps.push import records
from lib.steps.push.client import ClientSync
from lib.steps.push.outbox import Outbox
from lib.steps.push.plan import Plan
from lib.steps.push.receipts import Receipts
from lib.steps.push.reconcile import Reconciler
from lib.steps.push.remote import Remote
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
          connect: Callable[[], FieldControl] | None = None) -> tuple[Reconciler, ClientSync]:
    """The collaborators of one walk: the open actions' reconciler and the per-client sync, sharing
    `act`, the FieldControl look-ups and the receipts; `rows` are read once per run."""
    remote, receipts = Remote(outbox, connect), Receipts(outbox, ctx.run_id)
    reconciler = Reconciler(outbox, act, remote, receipts, rows, scope_all=not getattr(ctx.args, "ids", None))
    return reconciler, ClientSync(outbox, act, remote, receipts, rows, service_ids(ctx.settings.fieldcontrol))


def _walk(reconciler: Reconciler, sync: ClientSync, clients: list[records.Client], *, plan: Plan | None = None,
          bar: bool = False) -> None:
    reconciler.reconcile_open(clients)
    for loaded in progress(clients, total=len(clients), desc="FieldControl") if bar else clients:
        if plan is not None:
            plan.start(loaded.id, loaded.label())
            client: records.Client | None = loaded
        else:  # the real run re-reads each client just before sending: step 03 may have edited it since
            client = sync.reread(loaded)
        if client is not None:
            sync.sync_client(client, [(project, decisions_for(project)) for project in client.projects])


def make_plan(ctx: RunContext[PushSettings], outbox: Outbox, rows: records.Rows, clients: list[records.Client]) -> Plan:
    """The plan of this run (no request, no write), judged against the loaded outbox."""
    plan = Plan(outbox)
    _walk(*_sync(plan, outbox, ctx, rows), clients, plan=plan)
    return plan


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
        with engine.connect() as conn:
            clients, warnings = records.load_clients(conn, ids)
            outbox.load(conn)
        for warning in warnings:
            ctx.summary.warn(warning)
        rows = records.Rows(engine)
        plan = make_plan(ctx, outbox, rows, clients)
        planned, rate = plan.requests, settings.rate_per_second
        planned += 1 if planned else 0  # the check of the configured services
        log.info("o FieldControl real permite %g requisição por segundo por chave; ritmo configurado: %g/s. "
                 "%d projeto(s) de %d cliente(s) a conferir; cerca de %d requisição(ões) previstas "
                 "(≈ %s no ritmo configurado; %s a 1 req/s)", REAL_RATE, rate,
                 sum(len(c.projects) for c in clients), len(clients), planned, human_duration(planned / rate),
                 human_duration(planned / REAL_RATE))
        if dry_run:
            _dry_run(ctx, plan)
            return
        remote: list[FieldControl] = []

        def connect() -> FieldControl:
            fc = FieldControl.from_settings(ctx.settings)
            check_services(fc, settings)
            remote.append(fc)
            return fc

        reconciler, sync = _sync(Send(outbox, engine), outbox, ctx, rows, connect)
        sync.remote.expected_lookups = plan.lookups["customer"]
        if planned:
            sync.remote.fc  # noqa: B018 - the configured services are checked before anything is recorded or sent
        _walk(reconciler, sync, clients, bar=True)
        closed = outbox.resolve_obsolete(sync.needed, set(ids) if ids else None)
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


def _dry_run(ctx: RunContext[PushSettings], plan: Plan) -> None:
    print("SIMULAÇÃO (--dry-run): nada é alterado, nem no banco local nem no FieldControl; "
          "nenhuma requisição é feita.")
    for entry in plan.entries:
        print(entry.text())
    for note in plan.notes:
        log.info("%s", note)
    for kind, outcomes in plan.summary.counts.items():
        for outcome, count in outcomes.items():
            ctx.summary.add(kind, outcome, count)
    if not ctx.summary.counts:
        print("nada a enviar ao FieldControl")
