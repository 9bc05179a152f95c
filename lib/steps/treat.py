"""Step 02: normalise and validate the projects of data/01, find their coordinates (link → address →
CEP) and write data/02_projetos_tratados.json; a project that cannot go on becomes a pending item.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

import lib.db.schema as t
from lib import documents, status
from lib.config import TreatSettings
from lib.db import pending
from lib.documents import InvalidValue, fold
from lib.errors import InputFileError, TransientError
from lib.geocoding import Locator
from lib.jsonfiles import FILE_01, FILE_02, read_envelope, write_envelope
from lib.logs import clip, progress
from lib.maplinks import Point
from lib.run import RunContext
from lib.steps import record_checks
from lib.steps.treat_fields import Treated, treat

log = logging.getLogger(__name__)

STEP = "02"
NEEDS_COORDINATES = (status.INSTALACAO, status.AUMENTO)


def run(ctx: RunContext[TreatSettings]) -> None:
    """The body of 02_tratar_dados_clientes.py."""
    source = read_envelope(ctx.data_dir / FILE_01, "01", produced_by="01_get_projetos_isales.py")
    raws, moves, refused = _input_records(source, ctx)
    projects = _treat_all(ctx, raws)
    counts: Counter[str] = Counter()
    locator = Locator.from_settings(ctx.settings.geocoder, ctx.settings.http, ctx.engine)
    try:
        blocked = _locate_all(ctx.engine, locator, [p for p in projects if not p.problem], counts)
    finally:
        locator.close()

    done = [p for p in projects if not p.problem]
    # a cancelled project needs no customer: whatever is wrong with its data, only its move counts
    dropped = [p for p in projects if p.problem and p.status == status.CANCELADO]
    stuck = [p for p in projects if p.problem and p.status != status.CANCELADO]
    movimentos = [_movement(item) for item in moves]
    body = {
        "origem": {"execucao_id_01": source.get("execucao_id"), "gerado_em_01": source.get("gerado_em")},
        "contagens": {"projetos_entrada": len(projects), "tratados": len(done), "pendentes": len(stuck),
                      "cancelados_sem_dados": len(dropped), "recusados": len(refused), "movimentos": len(movimentos),
                      "fontes_coordenadas": {k: counts[k] for k in ("link", "endereco", "cep", "banco", "sem")},
                      "geocodificador": _geocoder_counts(locator),
                      "links": {"requisicoes": locator.resolver.requests, "cache": locator.link_cache_hits}},
        "projetos": [p.record() for p in done],
        "movimentos": movimentos + [p.movement() for p in dropped + stuck],
        "pendencias": [{"isales_id": p.isales_id, "etapa": STEP, "motivo": p.problem} for p in stuck]
        + [{"isales_id": isales_id, "etapa": STEP, "motivo": reason} for isales_id, reason in refused]
        + [dict(item, isales_id=str(item.get("isales_id")), etapa="01")  # not fetched: still waiting upstream
           for item in source.get("pendencias") or [] if isinstance(item, dict)],
    }
    path = ctx.data_dir / FILE_02
    write_envelope(path, STEP, ctx.run_id, body)
    for project in dropped:
        log.info("%s (cancelado): %s; só a mudança de coluna é registrada", project.label, project.problem)
    _settle_pending(ctx, done + dropped, stuck, movimentos, refused)
    _summarise(ctx, done, stuck, counts, locator)
    ctx.summary.add("projetos", "ignorados", len(dropped))
    ctx.summary.add("projetos", "pendentes", len(refused))
    log.info("%d projeto(s) tratados e %d pendente(s) nesta execução; arquivo %s", len(done),
             len(stuck) + len(refused), path)
    if blocked:
        raise TransientError(
            f"{blocked} projeto(s) ficaram pendentes porque o geocodificador não respondeu "
            f"({locator.geocoder.unavailable}); os demais foram gravados em {path}: rode de novo mais tarde")


def _input_records(source: dict[str, Any], ctx: RunContext[TreatSettings]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[str, str]]]:
    """(projects, movements) of the 01 file that may go on, and the refused ones as (isales_id,
    reason): an id listed twice (all its entries) or a status that contradicts its column by the
    current configuration. A record without a valid id has no key: it is a failure of the file."""
    projetos = source.get("projetos")
    if not isinstance(projetos, list):
        raise InputFileError(f"arquivo {ctx.data_dir / FILE_01} sem a lista 'projetos': "
                             "rode 01_get_projetos_isales.py novamente")
    movimentos = source["movimentos"] if isinstance(source.get("movimentos"), list) else []
    twice = record_checks.repeated([(f"projetos[{i}]", raw) for i, raw in enumerate(projetos)]
                                   + [(f"movimentos[{i}]", raw) for i, raw in enumerate(movimentos)],
                                   "no arquivo 01")
    refused = list(twice.items())
    accepted: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for records, kept in ((projetos, accepted[0]), (movimentos, accepted[1])):
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
                refused.append((key, f"projeto {key}: {problem}"))
                continue
            kept.append(raw)
    return accepted[0], accepted[1], refused


def _treat_all(ctx: RunContext[TreatSettings], raws: list[dict[str, Any]]) -> list[Treated]:
    labels = ctx.settings.campos
    projects = []
    for raw in raws:
        project = treat(raw, labels)
        if not project.problem and project.status not in status.STATUSES:
            project.problem = f"status {project.status!r} desconhecido no arquivo 01"
        projects.append(project)
    return projects


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
        for start in range(0, len(names), 500):
            rows = conn.execute(
                select(c.c.doc_pessoal, e.c.cep, e.c.logradouro, e.c.numero, e.c.cidade, e.c.estado,
                       e.c.link_localizacao, e.c.latitude, e.c.longitude, e.c.fonte_coordenadas)
                .select_from(e.join(c, e.c.cliente_id == c.c.id))
                .where(c.c.doc_pessoal.in_(names[start:start + 500]),
                       e.c.latitude.is_not(None), e.c.longitude.is_not(None))
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

def _settle_pending(ctx: RunContext[TreatSettings], done: list[Treated], stuck: list[Treated], movimentos: list[dict],
                    refused: list[tuple[str, str]]) -> None:
    with ctx.engine.begin() as conn:
        problems = [(p.isales_id, f"{p.label}: {p.problem}") for p in stuck] + refused
        for isales_id, reason in problems:
            log.warning("%s", reason)
            pending.record(conn, STEP, pending.project_key(isales_id), reason, isales_id=isales_id,
                           run_id=ctx.run_id)
        resolved = pending.resolve(conn, STEP, [pending.project_key(p.isales_id) for p in done], run_id=ctx.run_id)
        # a project that left the columns of interest needs no treatment any more
        left = pending.resolve(conn, STEP, [pending.project_key(m["isales_id"]) for m in movimentos],
                               run_id=ctx.run_id)
    if resolved or left:
        log.info("%d pendência(s) da etapa 02 resolvidas", resolved + left)


def _geocoder_counts(locator: Locator) -> dict[str, Any]:
    stats = locator.geocoder.stats
    return {"provedor": locator.geocoder.provider, "consultas": stats["consultas"], "cache": stats["cache"],
            "erros": stats["erros"], **({"indisponivel": locator.geocoder.unavailable}
                                        if locator.geocoder.unavailable else {})}


def _summarise(ctx: RunContext[TreatSettings], done: list[Treated], stuck: list[Treated], counts: Counter[str],
               locator: Locator) -> None:
    summary = ctx.summary
    summary.add("projetos", "tratados", len(done))  # 02 creates nothing: it treats and validates
    summary.add("projetos", "pendentes", len(stuck))
    summary.add("coordenadas", "criados", sum(counts[k] for k in ("link", "endereco", "cep")) - counts["cache"])
    summary.add("coordenadas", "sem_alteracao", counts["banco"] + counts["cache"])
    summary.add("coordenadas", "ignorados", sum(1 for p in done if p.endereco["latitude"] is None))
    summary.extra["geocodificador"] = _geocoder_counts(locator)
    summary.extra["links"] = {"requisicoes": locator.resolver.requests, "cache": locator.link_cache_hits}
    for project in done:
        for aviso in project.avisos:
            log.info("%s: %s", project.label, aviso)
