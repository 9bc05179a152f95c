"""FieldControl as step 04 looks at it: the client, made at the first remote call; each customer's
locations, phones and e-mails, listed once per run (dropped before any write to them); and the finders
that look up an object before it is created or sent again, skipping ids the outbox already claims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib import fieldcontrol as fcm
from lib.fieldcontrol import FieldControl
from lib.steps.push import records
from lib.steps.push.outbox import Outbox

external_id = records.external_id


class Remote:
    """The finders of step 04; `connect` makes the client (None in a dry run, which calls nothing)."""

    def __init__(self, outbox: Outbox, connect: Callable[[], FieldControl] | None = None):
        self.outbox = outbox
        self.summary = outbox.summary
        self._connect = connect
        self._fc: FieldControl | None = None
        self._lists: dict[tuple[str, str], list] = {}

    @property
    def fc(self) -> FieldControl:
        """The client, created (and the configured services checked) at the first remote call."""
        if self._fc is None:
            if self._connect is None:
                raise RuntimeError("no FieldControl client in a dry run")
            self._fc = self._connect()
        return self._fc

    def _list(self, customer_id: str, what: str) -> list:
        key = (customer_id, what)
        if key not in self._lists:
            self._lists[key] = getattr(self.fc, what)(customer_id)
        return self._lists[key]

    def create(self, customer_id: str, what: str, body: dict) -> Any:
        """POST one location/phone/e-mail of a customer (its cached list is dropped first)."""
        self._lists.pop((customer_id, what), None)
        return getattr(self.fc, f"create_{what[:-1]}")(customer_id, body)

    def _claimed(self, tipo: str, cliente_id: int, extra: set[str] = frozenset()) -> set[str]:
        return {a.field_id for a in self.outbox.done(tipo, cliente_id) if a.field_id} | set(extra)

    def find_customer(self, cliente: records.Row, label: str) -> fcm.Customer | None:
        """The customer of this document: ours (external id) first, then not archived, then the oldest."""
        matches = self.fc.find_customers_by_document(str(cliente.get("doc_pessoal") or ""))
        if not matches:
            return None
        ours = external_id(cliente)
        chosen = sorted(matches, key=lambda c: (c.external_id != ours, c.archived, c.created_at or "", c.id))[0]
        if len(matches) > 1:
            why = "criado por esta integração" if chosen.external_id == ours else "o mais antigo"
            self.summary.warn(f"{label}: {len(matches)} clientes com o mesmo CPF/CNPJ no FieldControl "
                              f"({', '.join(c.id for c in matches)}); usado {chosen.id} ({why})")
        return chosen

    def find_location(self, cliente_id: int, customer_id: str, address: dict,
                      legacy: set[str] = frozenset()) -> fcm.Location | None:
        claimed = self._claimed("location", cliente_id, legacy)
        return next((loc for loc in self._list(customer_id, "locations")
                     if loc.id not in claimed and fcm.same_address(loc.address, address)), None)

    def find_phone(self, cliente_id: int, customer_id: str, digits: str) -> fcm.Phone | None:
        claimed = self._claimed("phone", cliente_id)
        return next((p for p in self._list(customer_id, "phones")
                     if p.id not in claimed and fcm.phone_key(p.number) == digits), None)

    def find_email(self, cliente_id: int, customer_id: str, address: str) -> fcm.Email | None:
        claimed = self._claimed("email", cliente_id)
        return next((e for e in self._list(customer_id, "emails")
                     if e.id not in claimed and fcm.email_key(e.address) == fcm.email_key(address)), None)

    def find_ticket(self, payload: dict, label: str) -> fcm.Ticket | None:
        wanted = payload["external"]["id"]
        tickets = self.fc.find_tickets(str(payload.get("name") or ""), wanted)
        if len(tickets) > 1:
            self.summary.warn(f"{label}: {len(tickets)} OS com o mesmo id externo {wanted} no FieldControl "
                              f"({', '.join(t.id for t in tickets)}); usada a primeira")
        return tickets[0] if tickets else None
