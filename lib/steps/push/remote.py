"""FieldControl as step 04 looks at it: the client, made at the first remote call; each customer's
locations, phones and e-mails, listed once per run (dropped before any write to them, and with their
client's batch); and the finders that look up an object before it is created or sent again, skipping
ids the outbox already claims.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

from lib import fieldcontrol as fcm
from lib.fieldcontrol import FieldControl
from lib.steps.push import records
from lib.steps.push.outbox import Outbox

external_id = records.external_id
log = logging.getLogger("sync.04")

# Looking one document up costs two requests (FieldControl's filter matches the stored text exactly:
# its digits, then its masked form); reading the whole account costs one request per 100 customers.
LOOKUP_REQUESTS = 2
FEW_LOOKUPS = 5  # up to this many customers to look up, each is looked up alone (no page is read)


def lookup_requests(wanted: int, known: int) -> int:
    """The requests the look-ups of `wanted` new customers will take (the estimate: the run decides on
    the first page's totalCount, see _customer_directory): one by one up to FEW_LOOKUPS; else the
    account's pages — it holds at least the `known` customers with a local FieldControl id — when
    they cost less than looking each one up (after that first page)."""
    one_by_one = LOOKUP_REQUESTS * wanted
    if wanted <= FEW_LOOKUPS:
        return one_by_one
    pages = max(1, -(-known // fcm.PAGE_SIZE))
    return pages if pages <= one_by_one else 1 + one_by_one


class Remote:
    """The finders of step 04; `connect` makes the client (None in a dry run, which calls nothing)."""

    def __init__(self, outbox: Outbox, connect: Callable[[], FieldControl] | None = None):
        self.outbox = outbox
        self.summary = outbox.summary
        self._connect = connect
        self._fc: FieldControl | None = None
        self._lists: dict[tuple[str, str], list] = {}
        self._kept: set[tuple[str, str]] = set()
        self.expected_lookups = 0  # customers this run looks up before creating them (set by the run)
        self._directory: dict[str, str | tuple[str, ...]] | None = None  # the account's customer ids by document
        self._directory_decided = False

    @property
    def fc(self) -> FieldControl:
        """The client, created (and the configured services checked) at the first remote call."""
        if self._fc is None:
            if self._connect is None:
                raise RuntimeError("no FieldControl client in a dry run")
            self._fc = self._connect()
        return self._fc

    def keep_lists(self) -> None:
        """The lists read so far (the open actions' look-ups, before the batches) stay for the run: their
        customers' turn may come in a later batch."""
        self._kept = set(self._lists)

    def end_batch(self) -> None:
        """Forget the lists read for a batch of clients (each customer belongs to one client, one batch)."""
        self._lists = {key: value for key, value in self._lists.items() if key in self._kept}

    def _list(self, customer_id: str, what: str) -> list:
        key = (customer_id, what)
        if key not in self._lists:
            self._lists[key] = getattr(self.fc, what)(customer_id)
        return self._lists[key]

    def listing(self, customer_id: str, what: str) -> list:
        """A customer's locations, phones or e-mails as FieldControl holds them (listed once per run)."""
        return self._list(customer_id, what)

    def create(self, customer_id: str, what: str, body: dict) -> Any:
        """POST one location/phone/e-mail of a customer (its cached list is dropped first)."""
        self._lists.pop((customer_id, what), None)
        return getattr(self.fc, f"create_{what[:-1]}")(customer_id, body)

    def _claimed(self, tipo: str, cliente_id: int | None, extra: AbstractSet[str] = frozenset()) -> set[str]:
        return {a.field_id for a in self.outbox.done(tipo, cliente_id) if a.field_id} | set(extra)

    def find_customer(self, cliente: records.Row, label: str) -> fcm.Customer | None:
        """The customer of this document, asked to FieldControl now: ours (external id) first, then not
        archived, then the oldest. Reconciliation after an ambiguous write always comes here."""
        matches = self.fc.find_customers_by_document(str(cliente.get("doc_pessoal") or ""))
        return self._choose(matches, cliente, label) if matches else None

    def find_customer_first(self, cliente: records.Row, label: str) -> fcm.Customer | None:
        """Before creating a customer: in the account's customers read once this run when that is
        cheaper (a match there is read again by id before it is adopted; several matches are asked
        again by document, which answers them whole to choose from), else asked one by one."""
        directory = self._customer_directory()
        if directory is None:
            return self.find_customer(cliente, label)
        key = fcm.document_key(cliente.get("doc_pessoal"))
        found = directory.get(key) if key else None
        if found is None:
            return None
        if isinstance(found, tuple):
            return self.find_customer(cliente, label)
        try:
            fresh = self.fc.get_customer(found)
        except fcm.NotFound:
            fresh = None
        if fresh is None or fcm.document_key(fresh.document_number) != key:  # changed since it was read
            return self.find_customer(cliente, label)
        return fresh

    def _customer_directory(self) -> dict[str, str | tuple[str, ...]] | None:
        """Read the account's customers once, when that costs fewer requests than looking up the
        customers of this run one by one (the first page's totalCount gives the cost). Only each
        document's digits and its customer's id are kept (ids, when several share it): the account
        may hold many customers, and a match is read again by id anyway."""
        if self._directory_decided:
            return self._directory
        self._directory_decided = True
        wanted = self.expected_lookups
        if wanted <= FEW_LOOKUPS:
            return None
        directory: dict[str, str | tuple[str, ...]] = {}
        read = 0
        try:
            for customer in self.fc.all_customers(lambda pages: pages <= LOOKUP_REQUESTS * wanted):
                read += 1
                key = fcm.document_key(customer.document_number)
                if not key:
                    continue
                known = directory.get(key)
                if known is None:
                    directory[key] = customer.id
                elif customer.id not in (known if isinstance(known, tuple) else (known,)):
                    directory[key] = (*(known if isinstance(known, tuple) else (known,)), customer.id)
        except fcm.StopListing as stop:
            log.info("%d cliente(s) a procurar no FieldControl: procurados um a um (ler a conta inteira "
                     "custaria %d requisições)", wanted, stop.pages)
            return None
        log.info("%d cliente(s) a procurar no FieldControl: lidos os %d clientes da conta de uma vez "
                 "(em vez de %d consultas por documento)", wanted, read, LOOKUP_REQUESTS * wanted)
        self._directory = directory
        return directory

    def _choose(self, matches: list[fcm.Customer], cliente: records.Row, label: str) -> fcm.Customer:
        ours = external_id(cliente)
        chosen = sorted(matches, key=lambda c: (c.external_id != ours, c.archived, c.created_at or "", c.id))[0]
        if len(matches) > 1:
            why = "criado por esta integração" if chosen.external_id == ours else "o mais antigo"
            self.summary.warn(f"{label}: {len(matches)} clientes com o mesmo CPF/CNPJ no FieldControl "
                              f"({', '.join(c.id for c in matches)}); usado {chosen.id} ({why})")
        return chosen

    def find_location(self, cliente_id: int | None, customer_id: str, address: dict,
                      legacy: AbstractSet[str] = frozenset()) -> fcm.Location | None:
        claimed = self._claimed("location", cliente_id, legacy)
        return next((loc for loc in self._list(customer_id, "locations")
                     if loc.id not in claimed and fcm.same_address(loc.address, address)), None)

    def find_phone(self, cliente_id: int | None, customer_id: str, digits: str) -> fcm.Phone | None:
        claimed = self._claimed("phone", cliente_id)
        return next((p for p in self._list(customer_id, "phones")
                     if p.id not in claimed and fcm.phone_key(p.number) == digits), None)

    def find_email(self, cliente_id: int | None, customer_id: str, address: str) -> fcm.Email | None:
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
