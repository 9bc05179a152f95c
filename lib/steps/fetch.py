"""Step 01: list the funnel, pick the cards whose details are needed (the incremental rule, plus a
rolling refresh of the stalest cards under a per-run budget), fetch them concurrently and write
data/01_projetos_isales.json. A card that fails becomes a pending item.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Iterator
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

log = logging.getLogger(__name__)

STEP = "01"
PENDING_STEPS = ("01", "02", "03", "04")  # an open item at any of them asks for fresh details

NOVO, COLUNA_ALTERADA, CARD_ALTERADO, PENDENTE = "novo", "coluna_alterada", "card_alterado", "pendente"
RENOVACAO, COMPLETO, IDS = "renovacao", "completo", "ids"
CALLS_PER_CARD = 3  # /clientes, /propostas, /campo-customizado (IsalesClient.details)
WINDOW_PER_WORKER = 4  # details fetched ahead of the one being written, per worker: all that is held at once


@dataclass(frozen=True, slots=True)  # one per card: 50,000 at scale
class LocalOs:
    """What the local database knows of a project (table `os`, and its FieldControl history)."""

    coluna_id: int | None
    detalhes_em: datetime | None
    listagem: str | None = None  # fingerprint of the listing row its stored details came with
    concluido_em: datetime | None = None  # when we learned its FieldControl work is finished

    @property
    def in_rotation(self) -> bool:
        """Finished work leaves the rolling refresh once its details were fetched after we learned it."""
        return self.concluido_em is None or self.detalhes_em is None or self.detalhes_em < self.concluido_em


@dataclass(frozen=True, slots=True)  # one per card: 50,000 at scale
class Todo:
    card: Card
    status: str
    motivo: str


@dataclass
class Selection:
    """The decision for every card of the listing."""

    to_fetch: list[Todo] = field(default_factory=list)
    skipped: list[Card] = field(default_factory=list)  # of interest, details not needed this run
    movimentos: list[dict] = field(default_factory=list)
    no_column: list[Card] = field(default_factory=list)  # cannot be classified: pending
    of_interest: set[int] = field(default_factory=set)  # cliente_ids in the columns of interest
    missing_ids: list[str] = field(default_factory=list)  # --ids not found among the cards of interest
    finished: int = 0  # skipped cards out of the rolling refresh (FieldControl work finished)


@dataclass(frozen=True, slots=True)  # one per card: 50,000 at scale
class Fetched:
    todo: Todo
    details: Details
    obtido_em: str


@dataclass(frozen=True, slots=True)  # one per card: 50,000 at scale
class Failed:
    card: Card
    reason: str


def label(card: Card) -> str:
    """How a project is named in messages: `projeto 4711 (Maria da Silva)`."""
    return f"projeto {card.cliente_id}" + (f" ({card.nome})" if card.nome else "")


def select_cards(cards: Iterable[Card], settings: IsalesSettings, local: dict[str, LocalOs],
                 pending_ids: set[str], *, refresh_cards: int = 0, completo: bool = False,
                 ids: Iterable[str] | None = None) -> Selection:
    """Apply the incremental rule of docs/design.md §4 (`motivo`) to the cards of the listing, then
    add the `refresh_cards` stalest of the remaining cards of interest (the rolling refresh)."""
    wanted = set(ids) if ids else None
    result = Selection()
    for card in cards:
        key = str(card.cliente_id)
        known = local.get(key)
        if card.coluna_id is None:
            result.of_interest.add(card.cliente_id)  # unknown column: keep its pending item open
            if wanted is None or key in wanted:
                result.no_column.append(card)
            continue
        status = statuses.status_for_column(settings, card.coluna_id)
        if status == statuses.OUTRO:
            if known is not None and known.coluna_id != card.coluna_id and (wanted is None or key in wanted):
                result.movimentos.append({"isales_id": card.cliente_id, "coluna_id": card.coluna_id,
                                          "status": status, "card": card.raw})
            continue
        result.of_interest.add(card.cliente_id)
        if wanted is not None:
            motivo = IDS if key in wanted else None
        elif completo:
            motivo = COMPLETO
        elif known is None:
            motivo = NOVO
        elif known.coluna_id != card.coluna_id:
            motivo = COLUNA_ALTERADA
        elif known.listagem is not None and known.listagem != card.fingerprint:
            motivo = CARD_ALTERADO  # unknown (NULL, before the upgrade) is not a change: no burst
        elif key in pending_ids:
            motivo = PENDENTE
        else:
            motivo = None
        if motivo is None:
            result.skipped.append(card)
        else:
            result.to_fetch.append(Todo(card, status, motivo))
    if wanted is None and not completo:
        _rolling_refresh(result, settings, local, refresh_cards)
    if wanted is not None:
        found = {str(todo.card.cliente_id) for todo in result.to_fetch} | {str(c.cliente_id) for c in result.no_column}
        result.missing_ids = sorted(wanted - found, key=int)
    return result


def _rolling_refresh(result: Selection, settings: IsalesSettings, local: dict[str, LocalOs], count: int) -> None:
    """Move the `count` skipped cards with the oldest details (never fetched first) to `to_fetch`."""
    rotation = [card for card in result.skipped if local[str(card.cliente_id)].in_rotation]
    result.finished = len(result.skipped) - len(rotation)
    rotation.sort(key=lambda card: (local[str(card.cliente_id)].detalhes_em or datetime.min, card.cliente_id))
    chosen = {card.cliente_id for card in rotation[:max(0, count)]}
    for card in rotation[:max(0, count)]:
        result.to_fetch.append(Todo(card, statuses.status_for_column(settings, card.coluna_id), RENOVACAO))
    result.skipped = [card for card in result.skipped if card.cliente_id not in chosen]


def fetch_all(client: IsalesClient, todo: list[Todo], workers: int) -> Iterator[Fetched | Failed]:
    """Details of every card, `workers` at a time, given back in the order of `todo` as each is
    ready (a card that fails as a Failed): only a window of a few cards per worker is held at once.

    AuthError stops everything. When iSales stops answering altogether (many transient failures in
    a row) the run stops with TransientError instead of turning every card into a pending item.
    """
    if not todo:
        return
    limit = max(5, 2 * workers)
    window = WINDOW_PER_WORKER * workers  # fetched ahead of the one being written
    in_a_row = 0

    def one(item: Todo) -> tuple[Details, str]:
        details = client.details(item.card.cliente_id)
        return details, iso(utcnow())

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="isales")
    try:
        queue: deque[tuple[Todo, Future[tuple[Details, str]]]] = deque()
        pending_items = iter(todo)
        for item in progress(todo, total=len(todo), desc="detalhes do iSales"):
            while len(queue) < window:
                ahead = next(pending_items, None)
                if ahead is None:
                    break
                queue.append((ahead, executor.submit(one, ahead)))
            _current, future = queue.popleft()  # the same card as `item`: both in the order of `todo`
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


def load_local(engine: Engine) -> tuple[dict[str, LocalOs], set[str], dict[str, str]]:
    """(os by isales_id, ids with an open pending item at steps 01–04, open 01 items key → id)."""
    local: dict[str, LocalOs] = {}
    pending_ids: set[str] = set()
    open_01: dict[str, str] = {}
    with engine.connect() as conn:
        finished = finished_work(conn)
        rows = conn.execute(select(t.os.c.id, t.os.c.isales_id, t.os.c.coluna_id, t.os.c.detalhes_em,
                                   t.os.c.listagem_hash))
        for row in rows:
            if row.isales_id is not None:
                local[str(row.isales_id).strip()] = LocalOs(row.coluna_id, row.detalhes_em, row.listagem_hash,
                                                            finished.get(row.id))
        for item in pending.open_items(conn):
            if item["etapa"] not in PENDING_STEPS:
                continue
            isales_id = item["isales_id"] or (item["chave"][len("isales:"):] if item["chave"].startswith("isales:")
                                              else None)
            if isales_id:
                pending_ids.add(str(isales_id))
            if item["etapa"] == STEP:
                open_01[item["chave"]] = isales_id or ""
    return local, pending_ids, open_01


def finished_work(conn: Any) -> dict[int, datetime]:
    """os id → when the local database learned that its FieldControl work is finished: its latest
    FieldControl history row says `done` for the ticket of the project's current status (an
    installation's task for `instalacao`, the cancellation ticket's for `cancelado`: an installation
    done before the card moved to `aumento` does not finish the expansion). The moment is the start
    of the step-04 run that wrote the row (else the task's own time)."""
    hist = t.os_status_historico
    latest = (select(func.max(hist.c.id).label("id")).where(hist.c.origem == statuses.FIELDCONTROL_ORIGIN)
              .group_by(hist.c.os_id).subquery())
    query = (select(hist.c.os_id, hist.c.status, hist.c.ticket_tipo, hist.c.data_status, t.execucao.c.iniciada_em,
                    t.os.c.status.label("os_status"))
             .join(latest, latest.c.id == hist.c.id)
             .join(t.os, t.os.c.id == hist.c.os_id)
             .outerjoin(t.execucao, t.execucao.c.id == hist.c.execucao_id))
    result = {}
    for row in conn.execute(query):
        kind = statuses.TICKET_OF_STATUS.get(row.os_status)
        of_now = row.ticket_tipo == kind or (row.ticket_tipo is None and row.os_status != statuses.CANCELADO)
        if row.status == "done" and kind is not None and of_now:
            moment = row.iniciada_em or row.data_status
            if moment is not None:
                result[row.os_id] = moment
    return result


def window_end() -> date:
    """Today, never behind the UTC date (a card created late in the evening is in the window)."""
    return max(date.today(), utcnow().date())


def run(ctx: RunContext[FetchSettings]) -> None:
    """The body of step 01 (see `run.run_step`)."""
    isales = ctx.settings.isales
    args = ctx.args
    ate = window_end()
    if isales.desde > ate:
        raise ConfigError(f"configuração inválida: ISALES_DESDE={isales.desde.isoformat()} está no futuro")
    completo, ids = bool(getattr(args, "completo", False)), getattr(args, "ids", None)
    for name in isales.obsolete:
        log.warning("a variável %s não é mais usada e pode ser removida do .env: %s", name, OBSOLETE_ISALES[name])
    client = IsalesClient.from_settings(ctx.settings)
    try:
        funnel = client.list_cards(isales.funil_id, isales.desde, ate)
        log.info("funil %s (%s a %s): %d cards em %d página(s)", isales.funil_id, isales.desde.isoformat(),
                 ate.isoformat(), len(funnel.cards), funnel.pages)
        if not funnel.cards and not funnel.invalid:
            ctx.summary.warn(f"o funil {isales.funil_id} não tem nenhum card entre {isales.desde.isoformat()} e "
                             f"{ate.isoformat()}: confira ISALES_FUNIL_ID e ISALES_DESDE")
        for problem in funnel.invalid:
            ctx.summary.warn(problem)
            ctx.summary.add("cards", "falhas")
        conflicts = repeated_cards(ctx, funnel)
        local, pending_ids, open_01 = load_local(ctx.engine)
        selection = select_cards([card for card in funnel.cards if card.cliente_id not in conflicts], isales,
                                 local, pending_ids, refresh_cards=isales.refresh_budget // CALLS_PER_CARD,
                                 completo=completo, ids=ids)
        selection.of_interest |= set(conflicts)  # their pending item stays open
        for missing in selection.missing_ids:
            ctx.summary.warn(f"projeto {missing} pedido em --ids não está nas colunas de interesse do funil "
                             f"{isales.funil_id} nesta janela: nada a buscar")
        reasons = Counter(todo.motivo for todo in selection.to_fetch)
        log.info("%d nas colunas de interesse: buscando detalhes de %d (%s), %d sem mudança (%d com o trabalho "
                 "concluído no FieldControl, fora da renovação); %d movimento(s)",
                 len(selection.of_interest), len(selection.to_fetch),
                 ", ".join(f"{name}: {n}" for name, n in sorted(reasons.items())) or "nenhum",
                 len(selection.skipped), selection.finished, len(selection.movimentos))
        # the listing rows of the cards not fetched are not written: only ids, column and fingerprint stay
        funnel_size = len(funnel.cards)
        listing_failed = [Failed(card.without_row(), f"{label(card)}: o card não tem coluna_id válida na listagem "
                                                     f"do funil (veio {card.raw.get('coluna_id')!r})")
                          for card in selection.no_column]
        listing_failed += [Failed(card.without_row(), conflicts[card.cliente_id]) for card in funnel.cards
                           if card.cliente_id in conflicts and (not ids or str(card.cliente_id) in ids)]
        funnel.cards = []
        selection.skipped = [card.without_row() for card in selection.skipped]
        selection.no_column = [card.without_row() for card in selection.no_column]
        selection.to_fetch.sort(key=lambda todo: todo.card.cliente_id)
        outcome = Outcome(failed=listing_failed)
        body = build_body(isales, client.origin, ate, funnel_size=funnel_size, selection=selection,
                          projetos=_written(fetch_all(client, selection.to_fetch, isales.max_workers), outcome),
                          outcome=outcome)
        path = ctx.data_dir / FILE_01
        write_envelope(path, STEP, ctx.run_id, body)  # the details are written as they are fetched
    finally:
        client.close()
    failed = outcome.sorted_failed()
    for item in failed:
        log.warning("%s", item.reason)
    log.info("%s gravado: %d projeto(s), %d movimento(s), %d pendência(s)", path, len(outcome.fetched),
             len(selection.movimentos), len(failed))
    stale = {} if funnel.invalid else {key: value for key, value in open_01.items()
                                       if not value.isdigit() or int(value) not in selection.of_interest}
    update_pending(ctx, [cliente_id for cliente_id in outcome.fetched if pending.project_key(cliente_id) in open_01],
                   failed, stale)  # only keys with an open item: a first load of 50,000 has none to update

    ctx.summary.add("projetos", "detalhados", len(outcome.fetched))
    ctx.summary.add("projetos", "ignorados", len(selection.skipped))
    ctx.summary.add("projetos", "pendentes", len(failed))
    ctx.summary.add("movimentos", "listados", len(selection.movimentos))
    ctx.summary.extra.update(cards_no_funil=funnel_size, cards_de_interesse=len(selection.of_interest),
                             paginas=funnel.pages, renovados=reasons.get(RENOVACAO, 0))


@dataclass
class Outcome:
    """What the run keeps of the fetched cards once they are written: ids and failures, never the
    details themselves (they go to the file as they arrive)."""

    fetched: list[int] = field(default_factory=list)  # cliente_id of the projects written
    failed: list[Failed] = field(default_factory=list)

    def sorted_failed(self) -> list[Failed]:
        return sorted(self.failed, key=lambda item: item.card.cliente_id)


def _written(results: Iterator[Fetched | Failed], outcome: Outcome) -> Iterator[dict[str, Any]]:
    """The 01 records of the fetched cards, in order; ids and failures in `outcome`."""
    for result in results:
        if isinstance(result, Failed):
            outcome.failed.append(Failed(result.card.without_row(), result.reason))
            continue
        outcome.fetched.append(result.todo.card.cliente_id)
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
        "movimentos": sorted(selection.movimentos, key=lambda m: m["isales_id"]),
        "pendencias": lambda: [{"isales_id": item.card.cliente_id, "motivo": item.reason}
                               for item in outcome.sorted_failed()],
        "contagens": lambda: {
            "cards_no_funil": funnel_size, "cards_de_interesse": len(selection.of_interest),
            "detalhados": len(outcome.fetched),
            "ignorados_sem_mudanca": len(selection.of_interest) - len(selection.to_fetch) - len(selection.no_column),
            "movimentos": len(selection.movimentos), "pendentes": len(outcome.failed)},
    }


def update_pending(ctx: RunContext[FetchSettings], fetched: list[int], failed: list[Failed],
                   stale: dict[str, str]) -> None:
    """Open the items of failed cards, resolve those of fetched cards and of cards no longer of interest."""
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
