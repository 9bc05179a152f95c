"""Edit → arrival under the rolling refresh (issue 13 §1): phones edited in the sandbox's iSales — half
with a new client name too, so the card's row in the funnel listing changes, half without — then
normal cron cycles 01→04 with the default budget until every edit reached the local database and
FieldControl. Reports the delay of each in cycles (and at the README's cron rhythm) and the iSales
calls of every cycle."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

import lib.db.schema as t
from lib.config import IsalesSettings
from lib.steps.fetch import CALLS_PER_CARD

CRON_MINUTES = 30  # README's cron example: every 30 minutes in business hours
DEFAULT_BUDGET = IsalesSettings.refresh_budget
DETAIL_ROUTES = ("/clientes", "/propostas", "/campo-customizado")
KINDS = {"listagem": "nome e telefone (a linha do card na listagem muda)",
         "detalhe": "só o telefone (a listagem não mostra)"}
EXTRA_CYCLES = 2  # beyond a full rotation, before an edit is reported as not arrived


@dataclass
class Tracked:
    """One edit and the cycle (1 = the first after it) in which it reached each side."""

    projeto: int
    tipo: str  # listagem | detalhe
    telefone: str  # the new phone's digits, as the database and FieldControl keep them
    field_id: str
    banco: int | None = None
    fieldcontrol: int | None = None


def digits(text: Any) -> str:
    return "".join(c for c in str(text or "") if c.isdigit())


def candidates(engine) -> list[tuple[int, str]]:
    """(isales_id, customer's FieldControl id) of projects already in FieldControl whose client has
    only that project (an edit of a shared client is merged with its other cards' copies)."""
    os_, cliente = t.os, t.cliente
    single = (select(os_.c.cliente_id).where(os_.c.cliente_id.is_not(None))
              .group_by(os_.c.cliente_id).having(func.count() == 1).subquery())
    query = (select(os_.c.isales_id, cliente.c.field_id)
             .join(cliente, cliente.c.id == os_.c.cliente_id)
             .join(single, single.c.cliente_id == cliente.c.id)
             .where(cliente.c.field_id.is_not(None), os_.c.status.in_(("instalacao", "aumento")))
             .order_by(os_.c.isales_id))
    with engine.connect() as conn:
        return [(int(row.isales_id), row.field_id) for row in conn.execute(query)]


def make_edits(sb, chosen: list[tuple[int, str]], rng: random.Random) -> list[Tracked]:
    """Alternately a new name and phone (the listing row changes) and a new phone only."""
    names = {p["card"]["cliente_id"]: p["cliente"].get("nome") or "Cliente" for p in sb.projects()}
    tracked = []
    for i, (projeto, field_id) in enumerate(chosen):
        number = f"119{rng.randint(6000, 9999)}{rng.randint(1000, 9999)}"
        shown = f"({number[:2]}) {number[2:7]}-{number[7:]}"
        if i % 2 == 0:
            sb.edit_cliente(projeto, nome=f"{names[projeto]} Filho", telefone=shown)
            tracked.append(Tracked(projeto, "listagem", number, field_id))
        else:
            sb.edit_cliente(projeto, telefone=shown)
            tracked.append(Tracked(projeto, "detalhe", number, field_id))
    return tracked


def arrived_in_db(engine, tracked: list[Tracked]) -> set[int]:
    wanted = {str(item.projeto): item.telefone for item in tracked}
    query = (select(t.os.c.isales_id, t.cliente.c.telefone).join(t.cliente, t.cliente.c.id == t.os.c.cliente_id)
             .where(t.os.c.isales_id.in_(list(wanted))))
    with engine.connect() as conn:
        return {int(row.isales_id) for row in conn.execute(query) if digits(row.telefone) == wanted[row.isales_id]}


def arrived_in_fc(sb, tracked: list[Tracked]) -> set[int]:
    """A phone of the customer with the new number, or the new number as its main contact."""
    numbers: dict[str | None, set[str]] = {}
    for phone in sb.fc_phones():
        numbers.setdefault((phone.get("customer") or {}).get("id"), set()).add(digits(phone.get("number")))
    for customer in sb.fc_customers():
        numbers.setdefault(customer["id"], set()).add(digits((customer.get("contact") or {}).get("phone")))
    return {item.projeto for item in tracked if item.telefone in numbers.get(item.field_id, set())}


def spread(values: list[int]) -> dict[str, Any]:
    """Median, 95th percentile (nearest rank) and maximum of delays in cycles."""
    if not values:
        return {"n": 0, "mediana": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"n": len(ordered), "mediana": median, "p95": p95, "max": ordered[-1]}


def measure(runner, calls, cards_of_interest: int, *, edits: int = 100, cycles: int | None = None,
            seed: int = 7, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Edit `edits` projects, then run cycles 01→04 until every edit arrived on both sides (at most
    `cycles`; default: a full rotation of the cards of interest plus EXTRA_CYCLES)."""
    budget = int(runner.env.get("ISALES_REFRESH_BUDGET", DEFAULT_BUDGET))
    per_run = budget // CALLS_PER_CARD
    rotation = math.ceil(cards_of_interest / per_run) if per_run else None
    limit = cycles if cycles is not None else (rotation or 0) + EXTRA_CYCLES
    rng = random.Random(f"atraso:{seed}")
    pool = candidates(runner.db.engine)
    tracked = make_edits(runner.sb, rng.sample(pool, min(edits, len(pool))), rng)
    echo(f"atraso edição → chegada: {len(tracked)} edições no iSales, ciclos 01→04 com "
         f"ISALES_REFRESH_BUDGET={budget} ({per_run} cards por execução, {cards_of_interest} cards de interesse):")
    per_cycle = []
    for cycle in range(1, limit + 1):
        started = time.monotonic()
        steps = {step: runner.step(calls, step) for step in ("01", "02", "03", "04")}
        isales = steps["01"]["chamadas"].get("isales", {})
        in_db, in_fc = arrived_in_db(runner.db.engine, tracked), arrived_in_fc(runner.sb, tracked)
        for item in tracked:
            if item.banco is None and item.projeto in in_db:
                item.banco = cycle
            if item.fieldcontrol is None and item.projeto in in_fc:
                item.fieldcontrol = cycle
        row = {"ciclo": cycle, "tempo_s": round(time.monotonic() - started, 1),
               "chamadas_isales": sum(isales.values()),
               "chamadas_detalhes_isales": sum(n for route, n in isales.items() if route.split(" ", 1)[1] in DETAIL_ROUTES),
               "motivos_01": steps["01"].get("motivos", {}),
               "chamadas_fieldcontrol": sum(steps["04"]["chamadas"].get("fieldcontrol", {}).values()),
               "no_banco": sum(1 for item in tracked if item.banco is not None),
               "no_fieldcontrol": sum(1 for item in tracked if item.fieldcontrol is not None)}
        per_cycle.append(row)
        echo(f"  ciclo {cycle}: {row['chamadas_isales']} chamadas ao iSales "
             f"({', '.join(f'{k}: {v}' for k, v in sorted(row['motivos_01'].items()))}); "
             f"chegaram ao banco {row['no_banco']}/{len(tracked)}, ao FieldControl {row['no_fieldcontrol']}/{len(tracked)}")
        if all(item.banco is not None and item.fieldcontrol is not None for item in tracked):
            break
    return summarize(tracked, per_cycle, budget=budget, per_run=per_run, cards=cards_of_interest, rotation=rotation)


def summarize(tracked: list[Tracked], per_cycle: list[dict], *, budget: int, per_run: int, cards: int,
              rotation: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "orcamento": budget, "cards_por_execucao": per_run, "cards_de_interesse": cards,
        "execucoes_por_rodizio": rotation, "minutos_por_ciclo": CRON_MINUTES, "edicoes": len(tracked),
        "tipos": KINDS, "ciclos": per_cycle, "atrasos": {},
        "chamadas_isales_por_execucao": spread([row["chamadas_isales"] for row in per_cycle]),
        "detalhe": [asdict(item) for item in tracked]}
    for kind in (*KINDS, "todas"):
        group = [item for item in tracked if kind in ("todas", item.tipo)]
        result["atrasos"][kind] = {
            side: {**spread([getattr(item, attr) for item in group if getattr(item, attr) is not None]),
                   "nao_chegaram": sum(1 for item in group if getattr(item, attr) is None)}
            for side, attr in (("banco", "banco"), ("fieldcontrol", "fieldcontrol"))}
    return result
