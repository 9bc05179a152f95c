"""Step 02: normalise and validate the projects of data/01, find their coordinates (link → address →
CEP) and write data/02_projetos_tratados.json; a project that cannot go on becomes a pending item.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

import lib.db.schema as t
from lib import documents, status
from lib.config import TreatSettings
from lib.db import pending
from lib.db.schema import pendencia
from lib.documents import InvalidValue, fold
from lib.errors import InputFileError, TransientError
from lib.geocoding import Locator
from lib.jsonfiles import FILE_01, FILE_02, StreamedArray, stream_envelope, write_envelope
from lib.logs import clip, progress
from lib.maplinks import Point
from lib.run import RunContext
from lib.steps import record_checks
from lib.steps.treat_fields import Treated, treat
from lib.steps.treat_spool import DONE, DROPPED, MOVE, REFUSED, STUCK, Kept, Spool

log = logging.getLogger(__name__)

STEP = "02"
NEEDS_COORDINATES = (status.INSTALACAO, status.AUMENTO)


BATCH_SIZE = 500  # projects treated and located together (one read of their stored addresses)
IN_SIZE = 500  # documents per query of stored addresses


@dataclass
class Outcome:
    """What the run keeps of its projects once they are written: counts in memory, and in the spool
    (on disk) the projects left pending or dropped, and those whose open item is resolved; never
    the projects themselves (they stream from the 01 file to the 02 file)."""

    spool: Spool
    treated: int = 0  # projects written
    stuck: int = 0  # projects left pending (spool: STUCK)
    dropped: int = 0  # cancelled projects without data: only their move (spool: DROPPED)
    counts: Counter[str] = field(default_factory=Counter)
    read: int = 0
    without_point: int = 0
    blocked: int = 0


def run(ctx: RunContext[TreatSettings]) -> None:
    """The body of 02_tratar_dados_clientes.py."""
    envelope = stream_envelope(ctx.data_dir / FILE_01, "01", produced_by="01_get_projetos_isales.py",
                               arrays=("projetos", "movimentos", "pendencias"))
    with Spool(ctx.data_dir) as spool:
        _run(ctx, envelope.data(), spool)


def _run(ctx: RunContext[TreatSettings], source: dict[str, Any], spool: Spool) -> None:
    raws = _input_records(source, ctx, spool)
    outcome = Outcome(spool)
    with ctx.engine.connect() as conn:
        spool.add_open(conn.execute(select(pendencia.c.chave).where(
            pendencia.c.etapa == STEP, pendencia.c.resolvida_em.is_(None))).scalars())
    locator = Locator.from_settings(ctx.settings.geocoder, ctx.settings.http, ctx.engine)
    try:
        body = {
            "origem": {"execucao_id_01": source.get("execucao_id"), "gerado_em_01": source.get("gerado_em")},
            "projetos": _treated_records(ctx, locator, raws, outcome),
            # known once the projects are written: these come after them in the file
            "movimentos": lambda: (move.movement for kind in (MOVE, DROPPED, STUCK) for move in spool.kept(kind)),
            "pendencias": lambda: chain(
                ({"isales_id": item.isales_id, "etapa": STEP, "motivo": item.reason}
                 for kind in (STUCK, REFUSED) for item in spool.kept(kind)),
                (dict(item, isales_id=str(item.get("isales_id")), etapa="01")  # not fetched: still waiting upstream
                 for item in _array(source.get("pendencias")) if isinstance(item, dict))),
            "contagens": lambda: {
                "projetos_entrada": outcome.read, "tratados": outcome.treated, "pendentes": outcome.stuck,
                "cancelados_sem_dados": outcome.dropped, "recusados": spool.count(REFUSED),
                "movimentos": spool.count(MOVE),
                "fontes_coordenadas": {k: outcome.counts[k] for k in ("link", "endereco", "cep", "banco", "sem")},
                "geocodificador": _geocoder_counts(locator),
                "links": {"requisicoes": locator.resolver.requests, "cache": locator.link_cache_hits}},
        }
        path = ctx.data_dir / FILE_02
        write_envelope(path, STEP, ctx.run_id, body)
    finally:
        locator.close()
    refused = spool.count(REFUSED)
    _settle_pending(ctx, spool)
    _summarise(ctx, outcome, locator)
    ctx.summary.add("projetos", "ignorados", outcome.dropped)
    ctx.summary.add("projetos", "pendentes", refused)
    log.info("%d projeto(s) tratados e %d pendente(s) nesta execução; arquivo %s", outcome.treated,
             outcome.stuck + refused, path)
    if outcome.blocked:
        raise TransientError(
            f"{outcome.blocked} projeto(s) ficaram pendentes porque o geocodificador não respondeu "
            f"({locator.geocoder.unavailable}); os demais foram gravados em {path}: rode de novo mais tarde")


def _array(value: Any) -> Iterable[Any]:
    """A top-level array of the 01 file (streamed from the file), or nothing."""
    return value if isinstance(value, (list, StreamedArray)) else ()


def _treated_records(ctx: RunContext[TreatSettings], locator: Locator, raws: Iterable[dict[str, Any]],
                     outcome: Outcome) -> Iterator[dict[str, Any]]:
    """The 02 records of `raws`, treated and located BATCH_SIZE at a time; the others in `outcome`."""
    batch: list[Treated] = []
    for project in _treat_all(ctx, raws):
        outcome.read += 1
        batch.append(project)
        if len(batch) >= BATCH_SIZE:
            yield from _settle_batch(ctx, locator, batch, outcome)
            batch = []
    if batch:
        yield from _settle_batch(ctx, locator, batch, outcome)


def _settle_batch(ctx: RunContext[TreatSettings], locator: Locator, batch: list[Treated], outcome: Outcome) -> Iterator[dict[str, Any]]:
    outcome.blocked += _locate_all(ctx.engine, locator, [p for p in batch if not p.problem], outcome.counts)
    spool = outcome.spool
    had_item = spool.open_among(pending.project_key(p.isales_id) for p in batch if not p.problem)
    done, dropped, stuck = [], [], []
    for project in batch:
        if not project.problem:
            outcome.treated += 1
            if pending.project_key(project.isales_id) in had_item:
                done.append(Kept(project.isales_id, None, None, None))
            outcome.without_point += project.endereco["latitude"] is None
            for aviso in project.avisos:
                log.info("%s: %s", project.label, aviso)
            yield project.record()
        elif project.status == status.CANCELADO:
            # a cancelled project needs no customer: whatever is wrong with its data, only its move counts
            log.info("%s (cancelado): %s; só a mudança de coluna é registrada", project.label, project.problem)
            dropped.append(Kept(project.isales_id, None, None, project.movement()))
        else:
            stuck.append(Kept(project.isales_id, project.label, project.problem, project.movement()))
    spool.keep(DONE, done)
    spool.keep(DROPPED, dropped)
    spool.keep(STUCK, stuck)
    outcome.dropped += len(dropped)
    outcome.stuck += len(stuck)


def _input_records(source: dict[str, Any], ctx: RunContext[TreatSettings], spool: Spool) -> Iterator[dict[str, Any]]:
    """The projects of the 01 file that may go on; its movements that may go on (spool: MOVE) and
    the refused records (spool: REFUSED, with the reason): an id listed twice (all its entries) or
    a status that contradicts its column by the current configuration. A record without a valid id
    has no key: it is a failure of the file. The projects are read from the file as they are used;
    the refused ones are complete only once they have all been read."""
    projetos = source.get("projetos")
    if not isinstance(projetos, (list, StreamedArray)):
        raise InputFileError(f"arquivo {ctx.data_dir / FILE_01} sem a lista 'projetos': "
                             "rode 01_get_projetos_isales.py novamente")
    movimentos = _array(source.get("movimentos"))

    def entries() -> Iterator[tuple[str, Any]]:
        return chain(((f"projetos[{i}]", raw) for i, raw in enumerate(projetos)),
                     ((f"movimentos[{i}]", raw) for i, raw in enumerate(movimentos)))

    # a pass that counts the ids on disk, then (only when some id repeats) one naming its entries
    keys = spool.listed_twice(_key(raw) for _position, raw in entries())
    twice = record_checks.repeated(((position, _identity(raw)) for position, raw in entries() if _key(raw) in keys),
                                   "no arquivo 01") if keys else {}
    spool.keep(REFUSED, (Kept(key, None, reason, None) for key, reason in twice.items()))

    def accepted(records: Iterable[Any]) -> Iterator[dict[str, Any]]:
        for raw in records:
            value = raw.get("isales_id") if isinstance(raw, dict) else None
            key = record_checks.isales_id(value)
            if key is None:
                ctx.summary.add("projetos", "falhas")
                ctx.summary.warn(f"{record_checks.id_problem(value, 'do arquivo 01')}: {clip(raw, 120)!r}")
                continue
            if key in twice:
                continue
            problem = (record_checks.status_problem(ctx.settings.colunas, raw.get("coluna_id"), raw.get("status"))
                       if ctx.settings.colunas is not None else None)
            if problem:
                spool.keep(REFUSED, [Kept(key, None, f"projeto {key}: {problem}", None)])
                continue
            yield raw

    spool.keep(MOVE, (Kept(str(item.get("isales_id")), None, None, _movement(item)) for item in accepted(movimentos)))
    return accepted(projetos)


def _key(raw: Any) -> str | None:
    return record_checks.isales_id(raw.get("isales_id")) if isinstance(raw, dict) else None


def _identity(raw: Any) -> Any:
    """The fields of a record the repeated-id check reads (not its details)."""
    if not isinstance(raw, dict):
        return raw
    return {name: raw.get(name) for name in ("isales_id", "coluna_id", "status")}


def _treat_all(ctx: RunContext[TreatSettings], raws: Iterable[dict[str, Any]]) -> Iterator[Treated]:
    labels = ctx.settings.campos
    for raw in raws:
        project = treat(raw, labels)
        if not project.problem and project.status not in status.STATUSES:
            project.problem = f"status {project.status!r} desconhecido no arquivo 01"
        yield project


def _movement(item: dict[str, Any]) -> dict[str, Any]:
    return {"isales_id": str(item.get("isales_id")), "coluna_id": item.get("coluna_id"), "status": item.get("status")}


# --------------------------------------------------------------------------- coordinates

def _locate_all(engine: Engine, locator: Locator, projects: list[Treated], counts: Counter[str]) -> int:
    """Fill the coordinates of every project (or its problem); return how many are waiting for
    a geocoder that did not answer."""
    stored = stored_addresses(engine, {p.cliente["doc_pessoal"] for p in projects})
    blocked = 0
    for project in progress(projects, total=len(projects), desc="coordenadas"):
        endereco = project.endereco
        needed = project.status in NEEDS_COORDINATES
        known = reusable_coordinates(endereco, stored.get(project.cliente["doc_pessoal"], ()))
        if known is not None:
            point, source = known
            _set_point(endereco, point, source)
            counts["banco"] += 1
            continue
        located = locator.locate(endereco, network=needed)
        project.avisos.extend(located.warnings)
        if located.point is not None:
            _set_point(endereco, located.point, located.source)
            counts[located.source or "?"] += 1
            counts["cache"] += located.cached
        elif located.error is not None and needed:
            project.problem = f"coordenadas não obtidas: {located.error.message}"
            blocked += isinstance(located.error, TransientError)
        elif needed:
            project.problem = "sem coordenadas: " + ", ".join(located.misses)
            counts["sem"] += 1
        else:
            project.avisos.append(f"sem coordenadas ({', '.join(located.misses)}); "
                                  f"não exigidas para projeto {project.status}")
            counts["sem"] += 1
    return blocked


def _set_point(endereco: dict[str, Any], point: Point, source: str | None) -> None:
    endereco["latitude"], endereco["longitude"], endereco["fonte_coordenadas"] = point.latitude, point.longitude, source


def _normalised(getter, value: Any) -> str:
    try:
        result = getter(value)
    except InvalidValue:
        result = value
    return fold(str(result)) if result else ""


def address_signature(endereco: Mapping[str, Any]) -> tuple[str, ...]:
    """What the coordinates of an address depend on, normalised the same way for a project of
    this run and a row of `endereco` (legacy rows may hold masks or full state names)."""
    return (_normalised(documents.cep, endereco.get("cep")),
            _normalised(documents.clean_text, endereco.get("logradouro")),
            _normalised(documents.house_number, endereco.get("numero")),
            _normalised(documents.clean_text, endereco.get("cidade")),
            _normalised(documents.uf, endereco.get("estado")),
            (endereco.get("link_localizacao") or "").strip())


def stored_addresses(engine: Engine, doc_values: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Addresses with coordinates already in the database, per client document."""
    forms = {}
    for value in doc_values:
        forms[value] = value
        forms[documents.mask_document(value)] = value  # legacy rows may keep the mask
    result: dict[str, list[dict[str, Any]]] = {}
    names = list(forms)
    e, c = t.endereco, t.cliente
    with engine.connect() as conn:
        for start in range(0, len(names), IN_SIZE):
            chunk = names[start:start + IN_SIZE]
            # always IN_SIZE values (the last one repeated): one statement for the driver to prepare
            # and keep, not one per batch size (SQLite keeps 128, ~100 KB each: RSS growing per batch)
            chunk += chunk[-1:] * (IN_SIZE - len(chunk))
            rows = conn.execute(
                select(c.c.doc_pessoal, e.c.cep, e.c.logradouro, e.c.numero, e.c.cidade, e.c.estado,
                       e.c.link_localizacao, e.c.latitude, e.c.longitude, e.c.fonte_coordenadas)
                .select_from(e.join(c, e.c.cliente_id == c.c.id))
                .where(c.c.doc_pessoal.in_(chunk), e.c.latitude.is_not(None), e.c.longitude.is_not(None))
                .order_by(e.c.id.desc())
            ).mappings()
            for row in rows:
                result.setdefault(forms[row["doc_pessoal"]], []).append(dict(row))
    return result


def reusable_coordinates(endereco: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]
                         ) -> tuple[Point, str | None] | None:
    """The stored coordinates of the same, unchanged address (same normalised address and link)."""
    signature = address_signature(endereco)
    for row in rows:
        if address_signature(row) != signature:
            continue
        point = Point.of(row["latitude"], row["longitude"])
        if point.in_brazil():
            return point, row["fonte_coordenadas"]
    return None


# --------------------------------------------------------------------------- pending items and summary

def _settle_pending(ctx: RunContext[TreatSettings], spool: Spool) -> None:
    resolved = left = 0
    with ctx.engine.begin() as conn:
        for kind in (STUCK, REFUSED):
            for item in spool.kept(kind):
                reason = f"{item.label}: {item.reason}" if kind == STUCK else str(item.reason)
                log.warning("%s", reason)
                pending.record(conn, STEP, pending.project_key(item.isales_id), reason, isales_id=item.isales_id,
                               run_id=ctx.run_id)
        for kind in (DONE, DROPPED):
            for batch in spool.batches(kind):
                resolved += pending.resolve(conn, STEP, [pending.project_key(item.isales_id) for item in batch],
                                            run_id=ctx.run_id)
        # a project that left the columns of interest needs no treatment any more
        for batch in spool.batches(MOVE):
            left += pending.resolve(conn, STEP, [pending.project_key(item.isales_id) for item in batch],
                                    run_id=ctx.run_id)
    if resolved or left:
        log.info("%d pendência(s) da etapa 02 resolvidas", resolved + left)


def _geocoder_counts(locator: Locator) -> dict[str, Any]:
    stats = locator.geocoder.stats
    return {"provedor": locator.geocoder.provider, "consultas": stats["consultas"], "cache": stats["cache"],
            "erros": stats["erros"], **({"indisponivel": locator.geocoder.unavailable}
                                        if locator.geocoder.unavailable else {})}


def _summarise(ctx: RunContext[TreatSettings], outcome: Outcome, locator: Locator) -> None:
    summary, counts = ctx.summary, outcome.counts
    summary.add("projetos", "tratados", outcome.treated)  # 02 creates nothing: it treats and validates
    summary.add("projetos", "pendentes", outcome.stuck)
    summary.add("coordenadas", "criados", sum(counts[k] for k in ("link", "endereco", "cep")) - counts["cache"])
    summary.add("coordenadas", "sem_alteracao", counts["banco"] + counts["cache"])
    summary.add("coordenadas", "ignorados", outcome.without_point)
    summary.extra["geocodificador"] = _geocoder_counts(locator)
    summary.extra["links"] = {"requisicoes": locator.resolver.requests, "cache": locator.link_cache_hits}
