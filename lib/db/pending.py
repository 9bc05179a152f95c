"""The pending-item store: records that could not go on, retried on every run until they pass.

One open item per (step, key). Keys name the record: `isales:<cliente_id>` for a project,
`acao:<outbox key>` for a FieldControl action. `data/pendencias.json` is regenerated from the
open items at the end of every run, so an operator sees them without opening the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from lib.clock import db_now
from lib.db.schema import pendencia
from lib.jsonfiles import FILE_PENDENCIAS, iso, write_envelope
from lib.logs import redact

MAX_REASON = 4000
STREAM_ROWS = 100  # rows a streamed read holds at once (SQLAlchemy's buffer grows to 1,000 by default)


def project_key(isales_id: object) -> str:
    return f"isales:{isales_id}"


def record(conn: Connection, step: str, key: str, reason: str, *, isales_id: object = None,
           run_id: int | None = None) -> None:
    """Open (or refresh) the pending item of `key` at `step` with its pt-BR reason."""
    reason = redact(reason)[:MAX_REASON]
    now = db_now()
    row = conn.execute(
        select(pendencia.c.id, pendencia.c.resolvida_em).where(pendencia.c.etapa == step, pendencia.c.chave == key)
    ).first()
    if row is None:
        conn.execute(pendencia.insert().values(
            etapa=step, chave=key, isales_id=None if isales_id is None else str(isales_id), motivo=reason,
            primeira_vez=now, ultima_vez=now, tentativas=1, execucao_id=run_id))
        return
    values = {"motivo": reason, "ultima_vez": now, "execucao_id": run_id, "resolvida_em": None,
              "tentativas": pendencia.c.tentativas + 1}
    if row.resolvida_em is not None:  # it came back: a new episode
        values.update(primeira_vez=now, tentativas=1)
    conn.execute(pendencia.update().where(pendencia.c.id == row.id).values(**values))


def resolve(conn: Connection, step: str, keys: Iterable[str], *, run_id: int | None = None) -> int:
    """Mark the open items of `keys` at `step` as resolved; return how many were open."""
    keys = list(keys)
    total = 0
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        result = conn.execute(
            pendencia.update()
            .where(pendencia.c.etapa == step, pendencia.c.chave.in_(chunk), pendencia.c.resolvida_em.is_(None))
            .values(resolvida_em=db_now(), execucao_id=run_id)
        )
        total += result.rowcount or 0
    return total


def open_keys(conn: Connection, step: str, *, prefix: str = "") -> set[str]:
    """The keys of the open items of `step` (those starting with `prefix`)."""
    query = select(pendencia.c.chave).where(pendencia.c.etapa == step, pendencia.c.resolvida_em.is_(None))
    if prefix:
        query = query.where(pendencia.c.chave.startswith(prefix, autoescape=True))
    return {row.chave for row in conn.execute(query)}


def count_open(conn: Connection, step: str | None = None, *, run_id: int | None = None) -> int:
    """Open items (of `step`; with `run_id`, only those that run recorded or refreshed)."""
    condition: ColumnElement[bool] = pendencia.c.resolvida_em.is_(None)
    if step is not None:
        condition = and_(condition, pendencia.c.etapa == step)
    if run_id is not None:
        condition = and_(condition, pendencia.c.execucao_id == run_id)
    return int(conn.execute(select(func.count()).select_from(pendencia).where(condition)).scalar_one())


def iter_open_items(conn: Connection, step: str | None = None) -> Iterator[dict]:
    """The open items (of `step`), oldest first per step, as they are read."""
    query = select(pendencia).where(pendencia.c.resolvida_em.is_(None))
    if step is not None:
        query = query.where(pendencia.c.etapa == step)
    for r in conn.execute(query.order_by(pendencia.c.etapa, pendencia.c.primeira_vez, pendencia.c.id)).mappings():
        yield {"etapa": r["etapa"], "chave": r["chave"], "isales_id": r["isales_id"], "motivo": r["motivo"],
               "primeira_vez": iso(r["primeira_vez"]), "ultima_vez": iso(r["ultima_vez"]),
               "tentativas": r["tentativas"]}


def open_items(conn: Connection, step: str | None = None) -> list[dict]:
    return list(iter_open_items(conn, step))


def export(engine: Engine, data_dir: Path, run_id: int | None = None) -> Path:
    """Rewrite data/pendencias.json with every open item of every step, each written as it is read (a
    first load of tens of thousands of projects may leave thousands: never all held, issue 14 §2)."""
    path = Path(data_dir) / FILE_PENDENCIAS
    # one connection (one snapshot) for the counts and the items; stream_results: MySQL's driver would
    # otherwise fetch the whole result first
    with engine.connect().execution_options(stream_results=True, max_row_buffer=STREAM_ROWS) as conn:
        by_step = {row.etapa: int(row.n) for row in conn.execute(
            select(pendencia.c.etapa, func.count().label("n")).where(pendencia.c.resolvida_em.is_(None))
            .group_by(pendencia.c.etapa).order_by(pendencia.c.etapa))}
        write_envelope(path, "pendencias", run_id, {"contagens": {"total": sum(by_step.values()), "por_etapa": by_step},
                                                    "pendencias": iter_open_items(conn)})
    return path
