"""The real run's hands: each step of the plan (plan.py) that ClientSync and Reconciler yield is
carried out as it comes — each action through the outbox protocol (the only path that sends), a local
reason that keeps an action from being sent becomes a pending item, a dispensed event is written with
its reason. `--dry-run` hands the same steps to `plan.Plan`, which writes them down instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine

from lib.steps.push import records
from lib.steps.push.outbox import CONCLUIDA, Outbox, Result, Spec
from lib.steps.push.plan import waiting_message

log = logging.getLogger(__name__)

T = TypeVar("T")


class Send:
    """`ready` is called before the first action that may ask FieldControl anything (it connects and
    checks the configured services: nothing is claimed before that)."""

    def __init__(self, outbox: Outbox, engine: Engine, ready: Callable[[], object] = lambda: None):
        self.outbox, self.engine, self.ready = outbox, engine, ready
        self.summary = outbox.summary

    def reconcile(self, spec: Spec) -> bool:
        self.ready()
        return self.outbox.reconcile(spec)

    def perform(self, spec: Spec, *, redo: bool = False) -> Result:
        action = self.outbox.get(spec.chave)
        if redo or action is None or action.estado != CONCLUIDA:
            self.ready()
        return self.outbox.perform(spec, redo=redo)

    def block(self, spec: Spec, problem: str) -> None:
        reason = f"{spec.label}: {problem}"
        log.warning("%s", reason)
        self.outbox.record_pending(spec, reason)
        self.summary.add(spec.kind, "pendentes")

    def dispense(self, label: str, event_id: int, reason: str) -> None:
        self.write(lambda conn: records.record_dispensed(conn, event_id, reason))
        log.info("%s: dispensado: %s", label, reason)
        self.summary.add("evento", "ignorados")

    def wait(self, label: str, waiting: int) -> None:
        """Events of a project left for the next run (an earlier one could not be sent)."""
        log.info("%s", waiting_message(label, waiting))
        self.summary.add("evento", "pendentes", waiting)

    def note(self, message: str) -> None:
        log.info("%s", message)

    def read(self, fetch: Callable[[], T]) -> T | None:
        """A read of FieldControl outside the outbox (the plan asks nothing)."""
        return fetch()

    def write(self, action: Callable[[Connection], None]) -> None:
        with self.engine.begin() as conn:
            action(conn)
