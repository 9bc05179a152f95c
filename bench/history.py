"""The status history the moves made must leave: one row when a project is first stored, one per column
change seen by a run (each in the run that saw it), and the ticket (or the dispensation) the
cancellation rule gives each row — written here from the rule's text, not from lib/steps/push/rule.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.findings import Findings
from bench.localdb import State
from lib import status as statuses
from lib.config import IsalesSettings

AREA = "histórico"
TICKET = {"instalacao": "instalacao", "aumento": "aumento", "cancelado": "cancelamento"}


def decide(batches: list[list[str]]) -> list[str | None]:
    """The ticket kind (or None: dispensed) of each event; `batches` are the statuses of the events
    each run of step 04 found unresolved, in order (docs/design.md §7)."""
    result: list[str | None] = []
    last: str | None = None
    for batch in batches:
        for index, status in enumerate(batch):
            cancelled_later = statuses.CANCELADO in batch[index + 1:]
            send = (status == statuses.INSTALACAO and last in (None, "cancelamento") and not cancelled_later) or \
                   (status == statuses.AUMENTO and last != "aumento" and not cancelled_later) or \
                   (status == statuses.CANCELADO and last in ("instalacao", "aumento"))
            result.append(TICKET[status] if send else None)
            if send:
                last = TICKET[status]
    return result


class HistoryCheck:
    """Expected rows and tickets from the columns each run saw, against os_status_historico."""

    def __init__(self, state: State, observed: dict[int, list[int | None]], runs_03: list[int],
                 isales: IsalesSettings, findings: Findings):
        self.state, self.observed, self.runs_03, self.isales, self.f = state, observed, runs_03, isales, findings
        self.rows: Counter[str] = Counter()  # esperadas / encontradas
        self.tickets: Counter[tuple[str, str | None]] = Counter()  # (esperado|enviado, kind)

    def status(self, coluna: int | None) -> str | None:
        return None if coluna is None else statuses.status_for_column(self.isales, coluna)

    def run(self) -> None:
        for isales_id, os_row in sorted(self.state.os.items(), key=lambda item: int(item[0])):
            self.project(isales_id, self.state.history.get(os_row["id"], []))

    def project(self, isales_id: str, rows: list[dict[str, Any]]) -> None:
        record = f"projeto {isales_id}"
        seen = self.observed.get(int(isales_id))
        if not rows or seen is None:
            self.f.diff(AREA, record, "histórico", "linhas de histórico e um card no iSales", f"{len(rows)} linha(s)")
            return
        rounds = [self.runs_03.index(r["execucao_id"]) if r["execucao_id"] in self.runs_03 else None for r in rows]
        if rounds[0] is None:
            self.f.diff(AREA, record, "primeira linha", "criada por uma das execuções do 03", rows[0]["execucao_id"])
            return
        first = rounds[0]
        expected = [(None, seen[first], first)] + [(seen[r - 1], seen[r], r) for r in range(first + 1, len(seen))
                                                   if seen[r] != seen[r - 1]]
        found = [(row["coluna_anterior"], row["coluna_id"], rnd) for row, rnd in zip(rows, rounds)]
        self.rows["esperadas"] += len(expected)
        self.rows["encontradas"] += len(found)
        self.f.check(AREA, record, "movimentos (coluna anterior, coluna, rodada)", expected, found)
        for row in rows:
            self.f.check(AREA, f"{record}, linha {row['id']}", "status / status anterior",
                         (self.status(row["coluna_id"]), self.status(row["coluna_anterior"])),
                         (row["status"], row["status_anterior"]))
        if self.state.pending_of(isales_id, ("04",)):
            return  # its events wait for the pending action; listed with the pending projects
        batches: dict[int, list[str]] = {}
        for row, rnd in zip(rows, rounds):
            batches.setdefault(rnd if rnd is not None else -1, []).append(row["status"])
        wanted = decide([batches[key] for key in sorted(batches)])
        for row, kind in zip(rows, wanted):
            sent = row["ticket_tipo"] if row["enviado_field"] else None
            self.tickets[("esperado", kind)] += kind is not None
            self.tickets[("enviado", sent)] += sent is not None
            what = f"{record}, linha {row['id']} ({row['status']})"
            self.f.check(AREA, what, "OS enviada", kind, sent)
            if kind is None and not row["enviado_field"]:
                self.f.check(AREA, what, "motivo da dispensa registrado", True, bool(row["motivo_dispensa"]))

    def summary(self) -> dict[str, Any]:
        by_kind = {state: {kind: n for (s, kind), n in self.tickets.items() if s == state and kind}
                   for state in ("esperado", "enviado")}
        return {"linhas_esperadas": self.rows["esperadas"], "linhas_encontradas": self.rows["encontradas"],
                "tickets_esperados": by_kind["esperado"], "tickets_enviados": by_kind["enviado"]}
