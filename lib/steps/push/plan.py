"""Step 04's plan, a value: the steps the decisions of a client yield (`Perform` an action, `Block` it,
`Dispense` an event, `Wait`, `Note`, `Read` FieldControl, `Write` locally, `Reconcile` an open action),
and its two executors: `Plan` writes each step down with no request and no write (`--dry-run` prints
it; its request count is the estimate), `send.Send` carries each one out (the real run). `execute`
walks the steps of one decision with either, handing each step's outcome back to the decision.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection

from lib.logs import redact
from lib.run import Summary
from lib.steps.push.outbox import CONCLUIDA, OPEN, REJEITADA, Outbox, Outcome, Result, Spec

T = TypeVar("T")
R = TypeVar("R")
UNCERTAIN_BEFORE = "envio anterior interrompido ou incerto: será conferido no FieldControl antes de qualquer novo envio"


def waiting_message(label: str, waiting: int) -> str:
    return f"{label}: {waiting} evento(s) aguardam a próxima execução (a ordem dos eventos importa)"


class Hands(Protocol):
    """What carries out the steps of a plan: `Plan` (written down) or `send.Send` (done)."""

    def reconcile(self, spec: Spec) -> bool: ...
    def perform(self, spec: Spec, *, redo: bool = False) -> Result: ...
    def block(self, spec: Spec, problem: str) -> None: ...
    def dispense(self, label: str, event_id: int, reason: str) -> None: ...
    def wait(self, label: str, waiting: int) -> None: ...
    def note(self, message: str) -> None: ...
    def read(self, fetch: Callable[[], T]) -> T | None: ...
    def write(self, action: Callable[[Connection], None]) -> None: ...


# -- the steps a decision yields (each carried out by the hands; its value goes back to the decision)

@dataclass(frozen=True)
class Perform:
    """Send an action through the outbox (or judge it against the outbox: the plan)."""

    spec: Spec
    redo: bool = False

    def by(self, hands: Hands) -> Result:
        return hands.perform(self.spec, redo=self.redo)


@dataclass(frozen=True)
class Block:
    """A local reason keeps the action from being sent: a pending item, no request."""

    spec: Spec
    problem: str

    def by(self, hands: Hands) -> Result:
        hands.block(self.spec, self.problem)
        return Result(Outcome.REJECTED)


@dataclass(frozen=True)
class Reconcile:
    """Look up an open action of an earlier run before any new POST (True: found there)."""

    spec: Spec

    def by(self, hands: Hands) -> bool:
        return hands.reconcile(self.spec)


@dataclass(frozen=True)
class Dispense:
    label: str
    event_id: int
    reason: str

    def by(self, hands: Hands) -> None:
        hands.dispense(self.label, self.event_id, self.reason)


@dataclass(frozen=True)
class Wait:
    """Events of a project left for the next run (an earlier one could not be sent)."""

    label: str
    waiting: int

    def by(self, hands: Hands) -> None:
        hands.wait(self.label, self.waiting)


@dataclass(frozen=True)
class Note:
    message: str

    def by(self, hands: Hands) -> None:
        hands.note(self.message)


@dataclass(frozen=True)
class Read:
    """Ask FieldControl (or the database) something outside the outbox; the plan asks nothing (None)."""

    fetch: Callable[[], Any]

    def by(self, hands: Hands) -> Any:
        return hands.read(self.fetch)


@dataclass(frozen=True)
class Write:
    """A local write (a dispensed event's reason, a receipt missed before); the plan writes nothing."""

    action: Callable[[Connection], None]

    def by(self, hands: Hands) -> None:
        hands.write(self.action)


Step = Perform | Block | Reconcile | Dispense | Wait | Note | Read | Write
Steps = Generator[Step, Any, R]  # a decision: yields its steps in order, gets each one's outcome back


def execute(steps: Steps[R], hands: Hands) -> R:
    """Carry out the steps of one decision in order with `hands`, each outcome handed back to the
    decision (the next step may depend on it: the new customer's id, a failed ticket). An error of a
    step is raised inside the decision, where it was yielded (it may catch it, as a direct call would)."""
    try:
        step = next(steps)
        while True:
            try:
                outcome = step.by(hands)
            except Exception as exc:  # noqa: BLE001 - re-raised at the yield, unless the decision handles it
                step = steps.throw(exc)
            else:
                step = steps.send(outcome)
    except StopIteration as stop:
        return stop.value


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
    """The dry run's hands: the steps of ClientSync and Reconciler written down, nothing done; each
    action judged against the outbox as it stands (done, rejected and not due, open…)."""

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

    def sends(self) -> list[str]:
        """The keys of the actions the run would send, in order."""
        return [entry.chave for entry in self.entries if entry.sends and entry.chave]

    # -- the steps of ClientSync and Reconciler ---------------------------------------------------
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
