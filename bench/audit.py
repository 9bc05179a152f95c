"""The local rows as they were at the end of a past run, rebuilt from today's rows and the change
log (`alteracao`): every change made by a later run is undone, field by field."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, Numeric, select
from sqlalchemy.engine import Connection

import lib.db.schema as t

Row = dict[str, Any]


def typed(table: str, field: str, text: str | None) -> Any:
    """A value of the change log (text) back in its column's type."""
    if text is None:
        return None
    column_type = t.metadata.tables[table].c[field].type
    if isinstance(column_type, Boolean):
        return text in ("1", "True", "true")
    if isinstance(column_type, Integer):
        return int(text)
    if isinstance(column_type, Numeric):
        return Decimal(text)
    if isinstance(column_type, DateTime):
        return datetime.fromisoformat(text)
    return text


class Audit:
    """The change log and the runs, to answer "what did this row hold after run R?"."""

    def __init__(self, conn: Connection) -> None:
        self.changes: dict[tuple[str, int], list[Row]] = defaultdict(list)
        query = select(t.alteracao).where(t.alteracao.c.tabela.in_(t.AUDITED_TABLES)).order_by(t.alteracao.c.id)
        for row in conn.execute(query).mappings():
            self.changes[(row["tabela"], row["registro_id"])].append(dict(row))
        self.runs = {row["id"]: dict(row) for row in conn.execute(select(t.execucao)).mappings()}

    def at(self, table: str, row: Row | None, run_id: int) -> Row | None:
        """`row` (as it is now) as it was when run `run_id` ended; None if it did not exist yet."""
        if row is None or not self.existed(row, run_id):
            return None
        result = dict(row)
        undone: set[str] = set()
        for change in self.changes.get((table, row["id"]), ()):
            if change["execucao_id"] is None or change["execucao_id"] <= run_id or change["campo"] in undone:
                continue
            undone.add(change["campo"])  # the first later change holds the value the row had then
            result[change["campo"]] = typed(table, change["campo"], change["valor_anterior"])
        return result

    def existed(self, row: Row, run_id: int) -> bool:
        """Rows carry no run id: one created after run `run_id` started is not in its state (runs
        of the steps follow one another, each lasting more than the clock's one-second resolution)."""
        run = self.runs.get(run_id)
        created = row.get("criado_em")
        return run is None or created is None or created <= run["iniciada_em"]
