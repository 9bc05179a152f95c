"""Step 04's plan, a value: per client, the actions a run would take with their payloads, the ones
that would stay pending and the events it would dispense; made by one walk with no request and no
write. `--dry-run` prints it; its request count is the run's estimate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from lib.logs import redact
from lib.run import Summary
from lib.steps.push.outbox import CONCLUIDA, OPEN, REJEITADA, Outbox, Outcome, Result, Spec

T = TypeVar("T")
UNCERTAIN_BEFORE = "envio anterior interrompido ou incerto: será conferido no FieldControl antes de qualquer novo envio"


def waiting_message(label: str, waiting: int) -> str:
    return f"{label}: {waiting} evento(s) aguardam a próxima execução (a ordem dos eventos importa)"


@dataclass(frozen=True)
class Entry:
    """One planned step: an action (`request` and `payload` set), or a note about a record."""

    kind: str
    label: str
    notes: tuple[str, ...] = ()
    request: str | None = None
    payload: Any = None
    requests: int = 0  # requests it would take (sends and look-ups)
    chave: str | None = None

    @property
    def sends(self) -> bool:
        """An action the run would send (or look up first and then send)."""
        return self.request is not None and self.requests > 0

    def text(self) -> str:
        lines = [f"[{self.kind}] {self.label}", *(f"  {note}" for note in self.notes)]
        if self.request is not None:
            lines.append(f"  {self.request}")
            lines.extend("  " + line for line in json.dumps(self.payload, ensure_ascii=False, indent=2).splitlines())
        return redact("\n".join(lines))


@dataclass
class ClientPlan:
    cliente_id: int | None
    label: str
    entries: list[Entry] = field(default_factory=list)


class Plan:
    """Built by ClientSync and Reconciler in place of the real run's `Send` (same calls, nothing done):
    each action is judged against the outbox as it stands (done, rejected and not due, open…)."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self.summary = Summary()  # what the run would count ("previstos", "pendentes"…)
        self.opening: list[Entry] = []  # open actions of earlier runs, looked up first
        self.clients: list[ClientPlan] = []
        self.lookups: Counter[str] = Counter()  # look-ups before a first send, by tipo
        self.notes: list[str] = []  # what the run would tell (logged by --dry-run; the real run tells it as it goes)
        self.requests = 0  # requests of every entry so far, taken ones included
        self.projects = self.client_count = 0  # projects and clients walked so far

    def start(self, cliente_id: int | None, label: str, projects: int = 1) -> None:
        self.clients.append(ClientPlan(cliente_id, label))
        self.projects += projects
        self.client_count += 1

    def _add(self, entry: Entry) -> None:
        self.clients[-1].entries.append(entry)
        self.requests += entry.requests

    @property
    def entries(self) -> list[Entry]:
        return self.opening + [entry for client in self.clients for entry in client.entries]

    def take(self) -> tuple[list[Entry], list[str]]:
        """The entries and notes written down since the last take, dropped from the plan (a run holds
        one batch of clients; the counts stay)."""
        taken = self.entries, self.notes
        self.opening, self.clients, self.notes = [], [], []
        return taken

    def drop(self) -> None:
        """Keep the counts only (the real run's estimate)."""
        self.take()

    def sends(self) -> list[str]:
        """The keys of the actions the run would send, in order."""
        return [entry.chave for entry in self.entries if entry.sends and entry.chave]

    # -- the calls of ClientSync and Reconciler ---------------------------------------------------
    def reconcile(self, spec: Spec) -> bool:
        self.opening.append(Entry(spec.kind, spec.label, (UNCERTAIN_BEFORE,), requests=1, chave=spec.chave))
        self.requests += 1
        return False

    def perform(self, spec: Spec, *, redo: bool = False) -> Result:
        action = self.outbox.get(spec.chave)
        if action is not None and action.estado == CONCLUIDA and not redo:
            return Result(Outcome.DONE, action.field_id)
        due = action is None or action.estado != REJEITADA or self.outbox.retry_due(action, spec.payload)
        notes = []
        if action is not None and action.estado in OPEN:
            notes.append("envio anterior com resultado incerto: será conferido no FieldControl antes de reenviar")
        elif action is not None and action.estado == REJEITADA:
            notes.append("recusada antes pelo FieldControl; " + (
                "seria tentada de novo" if due else
                "aguarda dados novos, 6 horas ou --reprocessar-pendentes (não seria enviada)"))
        if spec.look_first and spec.lookup_note:
            notes.append(spec.lookup_note)
        looks = spec.look_first or (action is not None and action.estado in OPEN)
        requests = 1 + (spec.lookup_cost if looks else 0) if due else 0
        if due and spec.look_first and not (action is not None and action.estado in OPEN):
            self.lookups[spec.tipo] += 1
        self._add(Entry(spec.kind, spec.label, tuple(notes), spec.request, spec.payload, requests, spec.chave))
        if not due:
            self.summary.add(spec.kind, "pendentes")
            return Result(Outcome.BLOCKED)
        self.summary.add(spec.kind, "previstos")
        return Result(Outcome.PLANNED, f"<{spec.kind} a criar>")

    def block(self, spec: Spec, problem: str) -> None:
        self._add(Entry(spec.kind, spec.label, (f"ficaria pendente: {problem}",), chave=spec.chave))

    def dispense(self, label: str, event_id: int, reason: str) -> None:
        self._add(Entry("evento", label, (f"seria dispensado (sem OS): {reason}",)))
        self.summary.add("evento", "previstos")

    def wait(self, label: str, waiting: int) -> None:
        self.notes.append(waiting_message(label, waiting))
        self.summary.add("evento", "pendentes", waiting)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def read(self, fetch: Callable[[], T]) -> T | None:
        """Nothing is asked of FieldControl while planning."""
        return None

    def write(self, action: Callable[[Connection], None]) -> None:
        """Nothing is written while planning."""
