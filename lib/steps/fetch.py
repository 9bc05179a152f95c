"""Step 01: list the funnel, pick the cards whose details are needed (the incremental rule, plus a
rolling refresh of the stalest cards under a per-run budget), fetch them concurrently and write
data/01_projetos_isales.json. A card that fails becomes a pending item.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

import lib.db.schema as t
from lib import status as statuses
from lib.clock import utcnow
from lib.config import OBSOLETE_ISALES, FetchSettings, IsalesSettings
from lib.db import pending
from lib.errors import BadResponse, ConfigError, RecordError, TransientError
from lib.isales import Card, Details, Funnel, IsalesClient
from lib.jsonfiles import FILE_01, iso, write_envelope
from lib.logs import progress
from lib.run import RunContext
from lib.steps.fetch_spool import (
    BATCH,
    CONFLICT,
    FETCH,
    MOVE,
    NO_COLUMN,
    OF_INTEREST,
    SKIP,
    UNCLASSIFIED,
    LocalOs,
    Spool,
    stamp,
)
from lib.steps.fetch_spool import clean as clean_spools

log = logging.getLogger(__name__)

STEP = "01"
PENDING_STEPS = ("01", "02", "03", "04")  # an open item at any of them asks for fresh details

NOVO, COLUNA_ALTERADA, CARD_ALTERADO, PENDENTE = "novo", "coluna_alterada", "card_alterado", "pendente"
RENOVACAO, COMPLETO, IDS = "renovacao", "completo", "ids"
CALLS_PER_CARD = 3  # /clientes, /propostas, /campo-customizado (IsalesClient.details)
WINDOW_PER_WORKER = 4  # details fetched ahead of the one being written, per worker: all that is held at once


@dataclass(frozen=True, slots=True)  # one per card fetched, made as the card is read from the spool
class Todo:
    card: Card
    status: str
    motivo: str


@dataclass
class Selection:
    """The decision for every card of the listing: kept in the run's spool, one row a card; here
    only its counts, and the decisions read back from the spool a batch at a time."""

    spool: Spool
    of_interest: int = 0  # cards in the columns of interest (with the unclassifiable and repeated ones)
    to_fetch: int = 0
    skipped: int = 0  # of interest, details not needed this run
    no_column: int = 0  # cannot be classified: pending
    movimentos: int = 0
    finished: int = 0  # skipped cards out of the rolling refresh (FieldControl work finished)
    reasons: dict[str, int] = field(default_factory=dict)  # motivo → cards to fetch for it
    missing_ids: list[str] = field(default_factory=list)  # --ids not found among the cards of interest

    def todo(self) -> Iterator[Todo]:
        """The cards to fetch, by cliente_id, with their listing rows."""
        for card, motivo, status in self.spool.decided(FETCH):
            yield Todo(card, status or "", motivo or "")

    def moves(self) -> Iterator[dict[str, Any]]:
        """The movimentos of the 01 file, by isales_id."""
        for card, _motivo, status in self.spool.decided(MOVE):
            yield {"isales_id": card.cliente_id, "coluna_id": card.coluna_id, "status": status, "card": card.raw}

    def unclassified(self) -> Iterator[Card]:
        """The cards without a valid column (each a pending item), with their listing rows."""
        for card, _motivo, _status in self.spool.decided(NO_COLUMN):
            yield card


@dataclass(frozen=True, slots=True)  # one per card being written
class Fetched:
    todo: Todo
    details: Details
    obtido_em: str


@dataclass(frozen=True, slots=True)  # one per card that failed: a pending item
class Failed:
    card: Card
    reason: str


def label(card: Card) -> str:
    """How a project is named in messages: `projeto 4711 (Maria da Silva)`."""
    return f"projeto {card.cliente_id}" + (f" ({card.nome})" if card.nome else "")


def motivo_for(card_column: int, fingerprint: str, known: LocalOs | None, pending_item: bool, *,
               completo: bool, wanted: bool | None) -> str | None:
    """Why a card in a column of interest is fetched (docs/design.md §4), or None: not needed.
    `wanted`: None without --ids, else whether --ids names the card."""
    if wanted is not None:
        return IDS if wanted else None
    if completo:
        return COMPLETO
    if known is None:
        return NOVO
    if known.coluna_id != card_column:
        return COLUNA_ALTERADA
    if known.listagem is not None and known.listagem != fingerprint:
        return CARD_ALTERADO  # unknown (NULL, before the upgrade) is not a change: no burst
    if pending_item:
        return PENDENTE
    return None


def select_cards(spool: Spool, settings: IsalesSettings, *, refresh_cards: int = 0, completo: bool = False,
                 ids: Iterable[str] | None = None, conflicts: Collection[int] = ()) -> Selection:
    """Apply the incremental rule of docs/design.md §4 (`motivo`) to the cards of the listing held in
    `spool` (a batch at a time, each decision written back to it), then add the `refresh_cards`
    stalest of the remaining cards of interest (the rolling refresh). The cards of `conflicts`
    (listed twice in different columns) are of interest but not classified."""
    wanted = set(ids) if ids else None
    found: set[str] = set()  # of `wanted`, the cards fetched or unclassifiable
    for batch in spool.listing():
        decisions: list[tuple[int, str, str | None, str | None, bool, str | None]] = []
        for cliente_id, coluna_id, fingerprint, known, pending_item in batch:
            key = str(cliente_id)
            chosen = None if wanted is None else key in wanted
            if cliente_id in conflicts:
                decisions.append((cliente_id, CONFLICT, None, None, False, None))
                continue
            if coluna_id is None:  # unknown column: of interest, its pending item stays open
                decisions.append((cliente_id, NO_COLUMN if chosen is not False else UNCLASSIFIED, None, None, False,
                                  None))
                if chosen:
                    found.add(key)
                continue
            status = statuses.status_for_column(settings, coluna_id)
            if status == statuses.OUTRO:
                if known is not None and known.coluna_id != coluna_id and chosen is not False:
                    decisions.append((cliente_id, MOVE, None, status, False, None))
                continue
            motivo = motivo_for(coluna_id, fingerprint, known, pending_item, completo=completo, wanted=chosen)
            if motivo is None:
                decisions.append((cliente_id, SKIP, None, status, known is not None and known.in_rotation,
                                  stamp(known.detalhes_em) if known is not None else None))
            else:
                decisions.append((cliente_id, FETCH, motivo, status, False, None))
                if chosen:
                    found.add(key)
        spool.decide(decisions)
    result = Selection(spool)
    if wanted is None and not completo:
        result.finished = spool.count(SKIP, rotation=False)
        spool.refresh(refresh_cards, RENOVACAO)
    spool.db.commit()
    result.of_interest = spool.count(*OF_INTEREST)
    result.to_fetch, result.skipped = spool.count(FETCH), spool.count(SKIP)
    result.no_column, result.movimentos = spool.count(NO_COLUMN), spool.count(MOVE)
    result.reasons = spool.reasons()
    if wanted is not None:
        result.missing_ids = sorted(wanted - found, key=int)
    return result


def fetch_all(client: IsalesClient, todo: Iterable[Todo], workers: int, total: int) -> Iterator[Fetched | Failed]:
    """Details of every card of `todo` (`total` of them), `workers` at a time, given back in the
    order of `todo` as each is ready (a card that fails as a Failed): only a window of a few cards
    per worker is held at once, and `todo` is read as the window moves.

    AuthError stops everything. When iSales stops answering altogether (many transient failures in
    a row) the run stops with TransientError instead of turning every card into a pending item.
    """
    limit = max(5, 2 * workers)
    window = WINDOW_PER_WORKER * workers  # fetched ahead of the one being written
    in_a_row = 0

    def one(item: Todo) -> tuple[Details, str]:
        details = client.details(item.card.cliente_id)
        return details, iso(utcnow())

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="isales")
    queue: deque[tuple[Todo, Future[tuple[Details, str]]]] = deque()
    pending_items = iter(todo)

    def in_order() -> Iterator[tuple[Todo, Future[tuple[Details, str]]]]:
        while True:
            while len(queue) < window:
                ahead = next(pending_items, None)
                if ahead is None:
                    break
                queue.append((ahead, executor.submit(one, ahead)))
            if not queue:
                return
            yield queue.popleft()

    try:
        for item, future in progress(in_order(), total=total, desc="detalhes do iSales"):
            try:
                details, obtido_em = future.result()
            except TransientError as exc:
                in_a_row += 1
                yield Failed(item.card, f"{label(item.card)}: {exc.message}")
                if in_a_row >= limit:
                    raise TransientError(
                        f"o iSales parou de responder durante a busca dos detalhes ({in_a_row} projetos "
                        f"seguidos falharam; o último: {exc.message}); nenhum arquivo foi gravado: tente mais tarde"
                    ) from None
                continue
            except (RecordError, BadResponse) as exc:
                in_a_row = 0
                yield Failed(item.card, f"{label(item.card)}: {exc.message}")
                continue
            in_a_row = 0
            yield Fetched(item, details, obtido_em)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def load_local(engine: Engine, spool: Spool) -> dict[str, str]:
    """Copy to `spool` what the local database knows: every `os` row (by isales_id, with when its
    FieldControl work was learned finished) and the ids with an open pending item at steps 01–04,
    read a batch at a time. Gives the open 01 items (key → id): a few, the failures of earlier runs."""
    pending_ids: set[str] = set()
    open_01: dict[str, str] = {}
    with engine.connect() as conn:
        spool.add_finished(finished_work(conn))
        rows = conn.execute(select(t.os.c.id, t.os.c.isales_id, t.os.c.coluna_id, t.os.c.detalhes_em,
                                   t.os.c.listagem_hash).execution_options(yield_per=BATCH))
        spool.add_local((str(row.isales_id).strip(), row.id, row.coluna_id, row.detalhes_em, row.listagem_hash)
                        for row in rows if row.isales_id is not None)
        for item in pending.open_items(conn):
            if item["etapa"] not in PENDING_STEPS:
                continue
            isales_id = item["isales_id"] or (item["chave"][len("isales:"):] if item["chave"].startswith("isales:")
                                              else None)
            if isales_id:
                pending_ids.add(str(isales_id))
            if item["etapa"] == STEP:
                open_01[item["chave"]] = isales_id or ""
    spool.add_pending(pending_ids)
    return open_01


def finished_work(conn: Any) -> Iterator[tuple[int, datetime]]:
    """(os id, when the local database learned that its FieldControl work is finished), read a
    batch at a time: its latest FieldControl history row says `done` for the ticket of the project's
    current status (an installation's task for `instalacao`, the cancellation ticket's for
    `cancelado`: an installation done before the card moved to `aumento` does not finish the
    expansion). The moment is the start of the step-04 run that wrote the row (else the task's own time)."""
    hist = t.os_status_historico
    latest = (select(func.max(hist.c.id).label("id")).where(hist.c.origem == statuses.FIELDCONTROL_ORIGIN)
              .group_by(hist.c.os_id).subquery())
    query = (select(hist.c.os_id, hist.c.status, hist.c.ticket_tipo, hist.c.data_status, t.execucao.c.iniciada_em,
                    t.os.c.status.label("os_status"))
             .join(latest, latest.c.id == hist.c.id)
             .join(t.os, t.os.c.id == hist.c.os_id)
             .outerjoin(t.execucao, t.execucao.c.id == hist.c.execucao_id))
    for row in conn.execute(query.execution_options(yield_per=BATCH)):
        kind = statuses.TICKET_OF_STATUS.get(row.os_status)
        of_now = row.ticket_tipo == kind or (row.ticket_tipo is None and row.os_status != statuses.CANCELADO)
        if row.status == "done" and kind is not None and of_now:
            moment = row.iniciada_em or row.data_status
            if moment is not None:
                yield row.os_id, moment


def window_end() -> date:
    """Today, never behind the UTC date (a card created late in the evening is in the window)."""
    return max(date.today(), utcnow().date())


def run(ctx: RunContext[FetchSettings]) -> None:
    """The body of step 01 (see `run.run_step`). The listing, what the local database knows and the
    selection go to a temporary SQLite file (`fetch_spool`), read back a batch at a time: the memory
    of a run does not grow with the funnel or the database."""
    isales = ctx.settings.isales
    args = ctx.args
    ate = window_end()
    if isales.desde > ate:
        raise ConfigError(f"configuração inválida: ISALES_DESDE={isales.desde.isoformat()} está no futuro")
    completo, ids = bool(getattr(args, "completo", False)), getattr(args, "ids", None)
    for name in isales.obsolete:
        log.warning("a variável %s não é mais usada e pode ser removida do .env: %s", name, OBSOLETE_ISALES[name])
    client = IsalesClient.from_settings(ctx.settings)
    clean_spools(ctx.data_dir)
    try:
        with Spool(ctx.data_dir) as spool:
            funnel = client.list_cards(isales.funil_id, isales.desde, ate, store=spool)
            log.info("funil %s (%s a %s): %d cards em %d página(s)", isales.funil_id, isales.desde.isoformat(),
                     ate.isoformat(), funnel.size, funnel.pages)
            if not funnel.size and not funnel.invalid:
                ctx.summary.warn(f"o funil {isales.funil_id} não tem nenhum card entre {isales.desde.isoformat()} e "
                                 f"{ate.isoformat()}: confira ISALES_FUNIL_ID e ISALES_DESDE")
            for problem in funnel.invalid:
                ctx.summary.warn(problem)
                ctx.summary.add("cards", "falhas")
            conflicts = repeated_cards(ctx, funnel)
            open_01 = load_local(ctx.engine, spool)
            selection = select_cards(spool, isales, refresh_cards=isales.refresh_budget // CALLS_PER_CARD,
                                     completo=completo, ids=ids, conflicts=conflicts)
            for missing in selection.missing_ids:
                ctx.summary.warn(f"projeto {missing} pedido em --ids não está nas colunas de interesse do funil "
                                 f"{isales.funil_id} nesta janela: nada a buscar")
            reasons = selection.reasons
            log.info("%d nas colunas de interesse: buscando detalhes de %d (%s), %d sem mudança (%d com o trabalho "
                     "concluído no FieldControl, fora da renovação); %d movimento(s)",
                     selection.of_interest, selection.to_fetch,
                     ", ".join(f"{name}: {n}" for name, n in sorted(reasons.items())) or "nenhum",
                     selection.skipped, selection.finished, selection.movimentos)
            # the listing rows of the cards not fetched are not written: only ids, column and fingerprint stay
            listing_failed = [Failed(card.without_row(), f"{label(card)}: o card não tem coluna_id válida na "
                                                         f"listagem do funil (veio {card.raw.get('coluna_id')!r})")
                              for card in selection.unclassified()]
            listing_failed += [Failed(card, conflicts[card.cliente_id]) for card in spool.cards(conflicts)
                               if not ids or str(card.cliente_id) in ids]
            outcome = Outcome(open_keys=set(open_01), failed=listing_failed)
            body = build_body(isales, client.origin, ate, funnel_size=funnel.size, selection=selection,
                              projetos=_written(fetch_all(client, selection.todo(), isales.max_workers,
                                                          selection.to_fetch), outcome),
                              outcome=outcome)
            path = ctx.data_dir / FILE_01
            write_envelope(path, STEP, ctx.run_id, body)  # the details are written as they are fetched
            listed = spool.of_interest(int(value) for value in open_01.values() if value.isdigit())
    finally:
        client.close()
    failed = outcome.sorted_failed()
    for item in failed:
        log.warning("%s", item.reason)
    log.info("%s gravado: %d projeto(s), %d movimento(s), %d pendência(s)", path, outcome.fetched,
             selection.movimentos, len(failed))
    stale = {} if funnel.invalid else {key: value for key, value in open_01.items()
                                       if not value.isdigit() or int(value) not in listed}
    update_pending(ctx, outcome.resolved, failed, stale)  # only keys with an open item: a first load has none

    ctx.summary.add("projetos", "detalhados", outcome.fetched)
    ctx.summary.add("projetos", "ignorados", selection.skipped)
    ctx.summary.add("projetos", "pendentes", len(failed))
    ctx.summary.add("movimentos", "listados", selection.movimentos)
    ctx.summary.extra.update(cards_no_funil=funnel.size, cards_de_interesse=selection.of_interest,
                             paginas=funnel.pages, renovados=reasons.get(RENOVACAO, 0))


@dataclass
class Outcome:
    """What the run keeps of the fetched cards once they are written: how many, those with an open
    01 item and the failures, never the details themselves (they go to the file as they arrive)."""

    open_keys: set[str] = field(default_factory=set)  # keys of the open 01 items
    fetched: int = 0  # projects written
    resolved: list[int] = field(default_factory=list)  # cliente_id of the projects written with an open 01 item
    failed: list[Failed] = field(default_factory=list)

    def sorted_failed(self) -> list[Failed]:
        return sorted(self.failed, key=lambda item: item.card.cliente_id)


def _written(results: Iterator[Fetched | Failed], outcome: Outcome) -> Iterator[dict[str, Any]]:
    """The 01 records of the fetched cards, in order; counts and failures in `outcome`."""
    for result in results:
        if isinstance(result, Failed):
            outcome.failed.append(Failed(result.card.without_row(), result.reason))
            continue
        outcome.fetched += 1
        if pending.project_key(result.todo.card.cliente_id) in outcome.open_keys:
            outcome.resolved.append(result.todo.card.cliente_id)
        yield project_record(result)


def repeated_cards(ctx: RunContext[FetchSettings], funnel: Funnel) -> dict[int, str]:
    """Report every client listed twice, naming both entries. In one column it is one card read
    twice (used once); in different columns nobody can tell which is right: the card is not
    fetched this run and becomes a pending item (cliente_id → its reason)."""
    conflicts = {}
    for cliente_id, entries in sorted(funnel.repeated.items()):
        shown = "; ".join(f"item {position}: coluna_id {coluna}" for position, coluna in entries)
        if len({coluna for _position, coluna in entries}) == 1:
            ctx.summary.warn(f"projeto {cliente_id} aparece {len(entries)} vezes na listagem do funil ({shown}), "
                             "na mesma coluna: usado uma vez")
        else:
            conflicts[cliente_id] = (f"projeto {cliente_id} aparece {len(entries)} vezes na listagem do funil, "
                                     f"em colunas diferentes ({shown}): não foi buscado nesta execução (o card "
                                     "mudou de coluna enquanto a listagem era lida?); tentado de novo na próxima")
    return conflicts


def project_record(item: Fetched) -> dict[str, Any]:
    """One project of data/01_projetos_isales.json (docs/design.md §4)."""
    return {"isales_id": item.todo.card.cliente_id, "coluna_id": item.todo.card.coluna_id,
            "status": item.todo.status, "motivo": item.todo.motivo, "obtido_em": item.obtido_em,
            "listagem": item.todo.card.fingerprint, "card": item.todo.card.raw, "cliente": item.details.cliente,
            "proposta": item.details.proposta, "campos": item.details.campos}


def build_body(isales: IsalesSettings, origem: str, ate: date, *, funnel_size: int, selection: Selection,
               projetos: Iterator[dict[str, Any]], outcome: Outcome) -> dict[str, Any]:
    """The body of data/01_projetos_isales.json (docs/design.md §4), after the envelope. The
    projects are written as they are produced; what is known only once they are all written (the
    pending items and the counts) comes after them in the file."""
    return {
        "origem": origem, "funil_id": isales.funil_id,
        "janela": {"desde": isales.desde.isoformat(), "ate": ate.isoformat()},
        "colunas": {statuses.INSTALACAO: list(isales.colunas_instalacao),
                    statuses.AUMENTO: list(isales.colunas_aumento),
                    statuses.CANCELADO: list(isales.colunas_cancelado)},
        "projetos": projetos,
        "movimentos": selection.moves(),
        "pendencias": lambda: [{"isales_id": item.card.cliente_id, "motivo": item.reason}
                               for item in outcome.sorted_failed()],
        "contagens": lambda: {
            "cards_no_funil": funnel_size, "cards_de_interesse": selection.of_interest,
            "detalhados": outcome.fetched,
            "ignorados_sem_mudanca": selection.of_interest - selection.to_fetch - selection.no_column,
            "movimentos": selection.movimentos, "pendentes": len(outcome.failed)},
    }


def update_pending(ctx: RunContext[FetchSettings], fetched: list[int], failed: list[Failed],
                   stale: dict[str, str]) -> None:
    """Open the items of failed cards, resolve those of fetched cards (`fetched`: the ones with an
    open item) and of cards no longer of interest."""
    with ctx.engine.begin() as conn:
        for item in failed:
            pending.record(conn, STEP, pending.project_key(item.card.cliente_id), item.reason,
                           isales_id=item.card.cliente_id, run_id=ctx.run_id)
        done = pending.resolve(conn, STEP, [pending.project_key(cliente_id) for cliente_id in fetched],
                               run_id=ctx.run_id)
        if done:
            log.info("%d pendência(s) da etapa 01 resolvida(s): os detalhes foram obtidos", done)
        if stale:
            pending.resolve(conn, STEP, list(stale), run_id=ctx.run_id)
            for key in sorted(stale):
                log.info("pendência da etapa 01 de %s resolvida: o card não está mais nas colunas de interesse "
                         "do funil", key.replace("isales:", "projeto "))
