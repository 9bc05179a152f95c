"""What FieldControl cannot be made to follow, handed to the operator: "revise no FieldControl: …"
items (an old phone or e-mail the integration created and cannot update or remove; a ticket already
turned into an order whose text would now differ). Each is a pending item of step 04 with a
`revisar:` key, listed once in data/pendencias.json and in the e-mail report until the operator marks
it done (`04_sync_field_api.py --revisado CHAVE`) or it disappears from FieldControl; once closed it
never comes back.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

import lib.db.schema as t
from lib.config import Settings
from lib.db import pending
from lib.run import RunContext

STEP = "04"
PREFIX = "revisar:"


def key(*parts: object) -> str:
    return (PREFIX + ":".join(str(p) for p in parts))[:191]


def is_review(chave: str) -> bool:
    return chave.startswith(PREFIX)


def report(conn: Connection, chave: str, message: str, *, isales_id: object = None, run_id: int | None = None) -> bool:
    """Open the item unless it was ever closed (done by the operator, or gone); True when newly opened."""
    row = conn.execute(select(t.pendencia.c.resolvida_em).where(t.pendencia.c.etapa == STEP,
                                                                t.pendencia.c.chave == chave)).first()
    if row is not None and row.resolvida_em is not None:
        return False
    pending.record(conn, STEP, chave, f"revise no FieldControl: {message}", isales_id=isales_id, run_id=run_id)
    return row is None


def close(conn: Connection, keys: Iterable[str], run_id: int | None = None) -> int:
    """Close items (done by the operator, gone from FieldControl, or superseded)."""
    return pending.resolve(conn, STEP, [k for k in keys if is_review(k)], run_id=run_id)


def states(conn: Connection, keys: list[str]) -> dict[str, bool]:
    """For each key with an item: True while open, False once closed (keys never reported are absent)."""
    result: dict[str, bool] = {}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 500):
        query = select(t.pendencia.c.chave, t.pendencia.c.resolvida_em).where(
            t.pendencia.c.etapa == STEP, t.pendencia.c.chave.in_(wanted[start:start + 500]))
        result.update({row.chave: row.resolvida_em is None for row in conn.execute(query)})
    return result


def open_items(conn: Connection, prefix: str = "") -> list[str]:
    return sorted(pending.open_keys(conn, STEP, prefix=PREFIX + prefix))


def mark_done(ctx: RunContext[Settings]) -> None:
    """The body of `04_sync_field_api.py --revisado CHAVE…`: the operator says those items are done."""
    wanted = list(dict.fromkeys(ctx.args.revisado))
    with ctx.engine.begin() as conn:
        known = set(open_items(conn))
        for chave in wanted:
            if chave in known:
                close(conn, [chave], ctx.run_id)
                print(f"marcado como revisado: {chave}")
                ctx.summary.add("revisao", "resolvidos")
            else:
                print(f"não há item aberto com a chave {chave!r} (veja data/pendencias.json)")
                ctx.summary.add("revisao", "ignorados")
