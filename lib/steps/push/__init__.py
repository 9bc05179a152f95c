"""Step 04: customers, locations, phones, e-mails and tickets to FieldControl, effectively once.

One idea per module: `rule` (which status events send a ticket: the cancellation rule), `step` (the
step's body: one walk), `client` (the decisions of one client, in order, as plan steps), `remote`
(FieldControl look-ups), `receipts` (what is recorded locally with each FieldControl id), `reconcile`
(open actions of earlier runs, looked up before any new POST), `plan` (the steps as values, and the
dry run's hands that write them down: --dry-run prints them), `send` (the real run's hands: each step
carried out), `outbox` (the acao_field protocol), `records` (what 04 reads and writes
in the local database), `ticket_message` (the ticket's pt-BR text), `status` (what happened in the
field: the orders made of our tickets and their tasks' statuses, read back last).
"""

from lib.steps.push.rule import (
    DISPENSED_CANCELLED,
    DISPENSED_NO_TICKET,
    DISPENSED_OTHER,
    Decision,
    decisions_for,
    qualify,
)
from lib.steps.push.step import run

__all__ = ["DISPENSED_CANCELLED", "DISPENSED_NO_TICKET", "DISPENSED_OTHER", "Decision", "decisions_for", "qualify",
           "run"]
