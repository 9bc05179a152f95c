"""Which unresolved status events of a project send a ticket (the cancellation rule, docs/design.md §7)
and which are dispensed, with the pt-BR reason the history keeps.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from lib.status import TICKET_OF_STATUS, ticket_label
from lib.steps.push import records

DISPENSED_OTHER = "movido para uma coluna que não gera OS"
DISPENSED_CANCELLED = "cancelado antes do envio"
DISPENSED_NO_TICKET = "nenhuma OS foi enviada antes: o cancelamento não gera OS"


@dataclass(frozen=True)
class Decision:
    """What to do with one unresolved status event: send a ticket of `ticket` kind, or dispense it."""

    event_id: int
    status: str
    ticket: str | None = None
    reason: str | None = None


def qualify(events: Sequence[tuple[int, str]], last_sent: str | None) -> list[Decision]:
    """Decisions for the unresolved events (id, status) of one project, in id order.

    `last_sent` is the ticket kind of the last event already sent (None: nothing was sent). Each
    qualifying event is assumed sent when judging the next one: one ticket per qualifying event,
    in order, never two for one event. A cancellation only follows an installation or expansion.
    """
    decisions = []
    for index, (event_id, status) in enumerate(events):
        later_cancel = any(s == "cancelado" for _, s in events[index + 1:])
        if status not in TICKET_OF_STATUS:
            decisions.append(Decision(event_id, status, reason=DISPENSED_OTHER))
        elif status in ("instalacao", "aumento") and later_cancel:
            decisions.append(Decision(event_id, status, reason=DISPENSED_CANCELLED))
        elif status == "instalacao" and last_sent not in (None, "cancelamento"):
            decisions.append(Decision(event_id, status, reason=(
                f"já existe uma OS de {ticket_label(last_sent)} enviada e não cancelada para este projeto")))
        elif status == "aumento" and last_sent == "aumento":
            decisions.append(Decision(event_id, status, reason="a OS de aumento de sistema já foi enviada"))
        elif status == "cancelado" and last_sent not in ("instalacao", "aumento"):
            decisions.append(Decision(event_id, status, reason=DISPENSED_NO_TICKET))
        else:
            decisions.append(Decision(event_id, status, ticket=TICKET_OF_STATUS[status]))
            last_sent = TICKET_OF_STATUS[status]
    return decisions


def held_from(decisions: Sequence[Decision], open_ids: Collection[int]) -> int | None:
    """Index of the first decision that cannot be taken yet: the dispensal of an event whose own ticket
    POST is open (`enviando`/`incerta`: it may have landed in FieldControl). The later decisions judged
    that ticket not sent, so they wait with it until reconciliation knows (found → sent; absent after
    the settle period → `nova`, and the rule decides again)."""
    return next((index for index, decision in enumerate(decisions)
                 if decision.ticket is None and decision.event_id in open_ids), None)


def decisions_for(project: records.Project) -> list[Decision]:
    return qualify([(event["id"], event["status"]) for event in project.events], project.last_kind)


