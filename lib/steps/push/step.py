"""The run of step 04: one walk — the open actions of earlier runs (reconcile.py), then the clients a
batch at a time (records.Source) with the outbox actions of that batch, each client decided once
(client.py) and its plan's steps carried out as they come: written down and printed by --dry-run
(plan.Plan, whose request count is the estimate), done by the real run (send.Send, the configured
services checked before the first one that asks FieldControl), which tells its progress as it goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import distinct, func, or_, select
from sqlalchemy.engine import Engine

import lib.db.schema as t
from lib.config import PushSettings
from lib.db import migrate
from lib.db.engine import make_engine
from lib.db.values import chunks
from lib.errors import ConfigError, TransientError
from lib.fieldcontrol import FieldControl
from lib.logs import human_duration, progress
from lib.run import RunContext
from lib.status import AUMENTO, INSTALACAO
from lib.steps.push import records
from lib.steps.push.client import ClientSync
from lib.steps.push.outbox import Obsolete, Outbox
from lib.steps.push.plan import Hands, Plan, execute
from lib.steps.push.receipts import Receipts
from lib.steps.push.reconcile import Reconciler
from lib.steps.push.remote import LOOKUP_REQUESTS, Remote, lookup_requests
from lib.steps.push.rule import decisions_for
from lib.steps.push.send import Send
from lib.steps.push.status import StatusFollower

log = logging.getLogger(__name__)

REAL_RATE = 1.0  # requests per second the real FieldControl allows per key
PROGRESS_SECONDS = 60.0  # the real run tells its progress this often
SENDS_NEW = (INSTALACAO, AUMENTO)  # the events that may make a new client's first ticket

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


def _collaborators(outbox: Outbox, ctx: RunContext[PushSettings], rows: records.Rows,
                   connect: Callable[[], FieldControl] | None = None,
                   obsolete: Obsolete | None = None) -> tuple[Reconciler, ClientSync]:
    """The deciders of one walk: the open actions' reconciler and the per-client sync, sharing the
    FieldControl look-ups and the receipts."""
    remote, receipts = Remote(outbox, connect), Receipts(outbox, ctx.run_id)
    reconciler = Reconciler(outbox, remote, receipts, rows, scope_all=not getattr(ctx.args, "ids", None))
    return reconciler, ClientSync(outbox, remote, receipts, rows, service_ids(ctx.settings.fieldcontrol), obsolete)


def _clients(source: records.Source, sync: ClientSync,
             batch: Callable[[list[records.Client]], None]) -> Iterator[records.Client]:
    """The run's clients, one batch held at a time with its outbox actions (issue 14 §2)."""
    for clients in source.batches():
        with sync.rows.engine.connect() as conn:
            sync.outbox.load(conn, records.keys_of(clients))
        batch(clients)
        yield from clients
        sync.end_batch()


def _walk(hands: Hands, reconciler: Reconciler, sync: ClientSync, source: records.Source, *,
          fresh: Callable[[records.Client], records.Client | None],
          batch: Callable[[list[records.Client]], None] = lambda clients: None,
          after: Callable[[], None] = lambda: None, total: int | None = None) -> None:
    """The one walk of a run: the open actions of earlier runs, then every client, each decided once
    (ClientSync.decide) with its steps carried out by `hands` as they come — `Send` in the real run,
    the `Plan` in a dry run. `fresh` gives the client as it is to be decided; `after` runs after each
    client."""
    execute(reconciler.reconcile_open(source), hands)
    sync.remote.keep_lists()
    clients = _clients(source, sync, batch)
    for loaded in progress(clients, total=total, desc="FieldControl") if total is not None else clients:
        client = fresh(loaded)
        if client is not None:
            execute(sync.decide(client, [(project, decisions_for(project)) for project in client.projects]), hands)
        after()


def make_plan(ctx: RunContext[PushSettings], outbox: Outbox, rows: records.Rows, source: records.Source,
              after: Callable[[Plan], None] = lambda plan: None) -> Plan:
    """The plan of this run (no request, no write), judged against the outbox as each batch is read;
    `after(plan)` takes its entries as they come (the plan holds one client's, and its counts)."""
    plan = Plan(outbox)

    def start(client: records.Client) -> records.Client:
        plan.start(client.id, client.label(), len(client.projects))
        return client

    _walk(plan, *_collaborators(outbox, ctx, rows), source, fresh=start, after=lambda: after(plan))
    after(plan)  # the look-ups of open actions when no client follows them
    return plan


def estimate(plan: Plan, engine: Engine) -> int:
    """The requests a run of this plan takes: the plan's, with the customer look-ups as the run will
    make them (the account read once when that is cheaper: remote.py), and the services check."""
    wanted = plan.lookups["customer"]
    with engine.connect() as conn:
        known = conn.execute(select(func.count()).select_from(t.cliente).where(t.cliente.c.field_id.isnot(None))).scalar()
    planned = plan.requests - LOOKUP_REQUESTS * wanted + lookup_requests(wanted, known or 0)
    return planned + 1 if planned else 0


def size(engine: Engine, ids: list[str] | None) -> tuple[int, int]:
    """(projects, clients) the run walks — those with an unresolved or a sent iSales event — counted up
    front in one query (the real run's progress; the dry run counts them as it plans)."""
    hist = t.os_status_historico
    busy = select(hist.c.os_id).where(hist.c.origem == "isales",
                                      or_(hist.c.enviado_field.is_(True), hist.c.motivo_dispensa.is_(None)))
    query = select(t.os.c.id, t.os.c.cliente_id).where(t.os.c.cliente_id.isnot(None), t.os.c.id.in_(busy))
    with engine.connect() as conn:
        if not ids:
            walked = query.subquery()
            row = conn.execute(select(func.count(), func.count(distinct(walked.c.cliente_id)))).one()
            return int(row[0]), int(row[1])
        found = [row for chunk in chunks(ids) for row in conn.execute(query.where(t.os.c.isales_id.in_(chunk)))]
    return len(found), len({row.cliente_id for row in found})


def new_customers(clients: list[records.Client]) -> int:
    """Clients of a batch with no FieldControl customer yet and an event that may send a ticket: about
    the customers the batch looks up before creating them (remote.py reads the account once when that
    is cheaper; counted without deciding anything: an over-count by the few dispensed ones)."""
    return sum(1 for client in clients if not client.cliente.get("field_id") and client.cliente.get("doc_pessoal")
               and any(event["status"] in SENDS_NEW for project in client.projects for event in project.events))


class Progress:
    """What the real run tells the operator as it goes: clients done of the total, requests made, and
    the time the rest takes at the pace so far, every `every` seconds (and a last line at the end)."""

    def __init__(self, clients: int, requests: Callable[[], int], every: float = PROGRESS_SECONDS):
        self.clients, self.requests, self.every = clients, requests, every
        self.done = 0
        self.began = self.told = time.monotonic()

    def tick(self) -> None:
        self.done += 1
        if time.monotonic() - self.told >= self.every and self.done < self.clients:
            self.tell()

    def tell(self) -> None:
        self.told = time.monotonic()
        elapsed = self.told - self.began
        rest = ""
        if 0 < self.done < self.clients:
            rest = f"; no ritmo até aqui faltam ≈ {human_duration(elapsed / self.done * (self.clients - self.done))}"
        log.info("FieldControl: %d de %d cliente(s), %d requisição(ões) em %s%s", self.done, self.clients,
                 self.requests(), human_duration(elapsed), rest)


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
        projects, clients = size(engine, ids)
        log.info("o FieldControl real permite %g requisição por segundo por chave; ritmo configurado: %g/s. "
                 "%d projeto(s) de %d cliente(s) a conferir (a estimativa de requisições e de tempo, sem enviar "
                 "nada: --dry-run)", REAL_RATE, settings.rate_per_second, projects, clients)
        remote: list[FieldControl] = []

        def connect() -> FieldControl:
            fc = FieldControl.from_settings(ctx.settings)
            check_services(fc, settings)
            remote.append(fc)
            return fc

        def requests() -> int:
            return sum(fc.requests_made for fc in remote)

        obsolete = Obsolete(outbox, set(ids) if ids else None)
        reconciler, sync = _collaborators(outbox, ctx, rows, connect, obsolete)
        told = Progress(clients, requests)

        def batch(loaded: list[records.Client]) -> None:
            # read the account's customers once when cheaper: decided at the first look-up (remote.py),
            # by the new customers of the batches read so far
            sync.remote.expected_lookups += new_customers(loaded)

        _walk(Send(outbox, engine, lambda: sync.remote.fc), reconciler, sync, source, fresh=sync.reread,
              batch=batch, after=told.tick, total=clients)
        if told.done:
            told.tell()
        closed = obsolete.resolve()
        if closed:
            ctx.summary.extra["pendencias_encerradas"] = closed
        followed = StatusFollower(engine, lambda: sync.remote.fc, ctx.run_id).run(ids)
        for change in followed.changes:
            ctx.summary.add("atividade_fieldcontrol", change["status"])
        ctx.summary.extra["requisicoes_fieldcontrol"] = requests()
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
