"""Read-only counts of the local database the benchmark and the fidelity check look at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

import lib.db.schema as t
from lib.db import pending
from lib.db.engine import make_engine

COUNTED = ("cliente", "endereco", "os", "pagamento", "os_status_historico", "alteracao", "acao_field", "pendencia")
WRITTEN_BY_03 = ("cliente", "endereco", "os", "pagamento", "os_status_historico", "alteracao")


class LocalDb:
    """The database of DATABASE_URL, opened lazily (step 00 creates it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def counts(self) -> dict[str, int]:
        """Rows per table, plus `tickets` (history rows sent) and `pendencias_abertas`."""
        hist = t.os_status_historico
        with self.engine.connect() as conn:
            result = {name: int(conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar_one())
                      for name in COUNTED}
            result["tickets"] = int(conn.execute(select(func.count()).select_from(hist)
                                                 .where(hist.c.enviado_field.is_(True))).scalar_one())
            result["os_enviadas"] = int(conn.execute(select(func.count(func.distinct(hist.c.os_id)))
                                                     .where(hist.c.enviado_field.is_(True))).scalar_one())
            result["pendencias_abertas"] = int(conn.execute(
                select(func.count()).select_from(t.pendencia).where(t.pendencia.c.resolvida_em.is_(None))).scalar_one())
        return result

    def last_run(self, step: str) -> dict[str, Any]:
        """The `execucao` row of the last run of `step` (contagens decoded)."""
        ex = t.execucao
        with self.engine.connect() as conn:
            row = conn.execute(select(ex).where(ex.c.etapa == step).order_by(ex.c.id.desc()).limit(1)).mappings().first()
        if row is None:
            return {}
        result = dict(row)
        try:
            result["contagens"] = json.loads(row["contagens"] or "{}")
        except ValueError:
            result["contagens"] = {}
        return result


@dataclass
class State:
    """The local rows the reconciliation reads, indexed the way it looks them up."""

    os: dict[str, dict[str, Any]] = field(default_factory=dict)  # by isales_id
    clientes: dict[int, dict[str, Any]] = field(default_factory=dict)
    enderecos: dict[int, dict[str, Any]] = field(default_factory=dict)
    pagamentos: dict[int, dict[str, Any]] = field(default_factory=dict)  # by os_id: the first row
    history: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by os_id, id order
    acoes: dict[str, dict[str, Any]] = field(default_factory=dict)  # acao_field by chave
    pending: list[dict[str, Any]] = field(default_factory=list)  # open items
    pending_by_project: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)

    def pending_of(self, isales_id: str, steps: tuple[str, ...] = ("01", "02", "03", "04")) -> list[dict[str, Any]]:
        """The project's open items that hold it back (a "revise no FieldControl" item holds nothing)."""
        return [item for item in self.pending_by_project.get(isales_id, [])
                if item["etapa"] in steps and not item["chave"].startswith("revisar:")]


def pending_project(item: dict[str, Any]) -> str | None:
    if item.get("isales_id"):
        return str(item["isales_id"])
    key = str(item.get("chave") or "")
    return key[len("isales:"):] if key.startswith("isales:") else None


def load_state(conn) -> State:
    state = State()

    def rows(table) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]

    state.os = {str(r["isales_id"]): r for r in rows(t.os)}
    state.clientes = {r["id"]: r for r in rows(t.cliente)}
    state.enderecos = {r["id"]: r for r in rows(t.endereco)}
    for r in rows(t.pagamento):
        state.pagamentos.setdefault(r["os_id"], r)
    for r in rows(t.os_status_historico):
        if r["origem"] == "isales":  # task statuses read back from FieldControl are not column moves
            state.history.setdefault(r["os_id"], []).append(r)
    state.acoes = {r["chave"]: r for r in rows(t.acao_field)}
    state.pending = pending.open_items(conn)
    for item in state.pending:
        state.pending_by_project.setdefault(pending_project(item), []).append(item)
    return state
