"""Step 04, first phase: every action an earlier run left `enviando` or `incerta` is looked up in
FieldControl before any new POST (customers by document, locations/phones/e-mails in the customer's
lists, tickets by name and external id). Found → its receipt is committed; not found → `nova`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from lib import fieldcontrol as fcm
from lib.steps.push import records
from lib.steps.push.outbox import Action, Outbox, Spec
from lib.steps.push.plan import Reconcile, Steps
from lib.steps.push.receipts import Receipts
from lib.steps.push.remote import Remote

KIND_OF = {"customer": "cliente", "customer-put": "cliente", "location": "local", "location-put": "local",
           "ticket-put": "ticket", "phone": "telefone",
           "email": "email"}


class Reconciler:
    """Looks up the open actions with the finders of `remote`; found → the receipt of `receipts`
    (`reconcile_open` yields a `Reconcile` step per action: the real run looks it up, the plan only
    writes the look-up down).

    `scope_all` False (--ids): only the actions of the clients in scope. `rows` reads the rows of
    clients outside this run's list.
    """

    def __init__(self, outbox: Outbox, remote: Remote, receipts: Receipts, rows: records.Rows, *,
                 scope_all: bool = True):
        self.outbox, self.remote, self.receipts, self.rows = outbox, remote, receipts, rows
        self.scope_all = scope_all

    def reconcile_open(self, source: records.Source) -> Steps[None]:
        """The open actions a page at a time, each page with its clients and their outbox actions."""
        for page in self.outbox.open_pages():
            clients = source.clients_of({action.cliente_id for action in page})
            keys = records.keys_of(clients)
            keys.cliente_ids.update(a.cliente_id for a in page if a.cliente_id is not None)
            with self.rows.engine.connect() as conn:
                self.outbox.load(conn, keys, keep=page)
            by_id: dict[int | None, records.Client] = {client.id: client for client in clients}
            events = {event["id"]: (project, event) for client in clients for project in client.projects
                      for event in project.events}
            for action in page:
                client = by_id.get(action.cliente_id)
                if client is None and not self.scope_all:
                    continue
                yield Reconcile(self._spec(action, client, events))
            self.rows.clear()

    def _spec(self, action: Action, client: records.Client | None, events: dict) -> Spec:
        cliente = client.cliente if client else self.rows.row("cliente", action.cliente_id)
        who = client.label() if client else f"cliente {action.cliente_id} ({(cliente or {}).get('nome')})"
        label = f"{who}: ação {action.chave}"
        payload: dict[str, Any] = action.payload or {}
        spec = Spec(chave=action.chave, tipo=action.tipo, kind=KIND_OF.get(action.tipo, action.tipo), label=label,
                    request="", payload=payload, send=lambda: None, receipt=lambda conn, value: None,
                    cliente_id=action.cliente_id, endereco_id=action.endereco_id, historico_id=action.historico_id)
        if cliente is None or not payload:
            return spec  # nothing to look it up with: it is sent again when still needed
        customer_id = cliente.get("field_id")
        if action.tipo == "customer":
            endereco = self._endereco(client, action.endereco_id)
            spec.find = lambda: self.remote.find_customer(cliente, label)
            spec.receipt = self.receipts.customer(cliente, endereco, payload.get("address"))
        elif action.tipo == "location":
            address = payload.get("address") or {}
            owner = str((payload.get("customer") or {}).get("id") or customer_id)  # the path part it always became
            legacy = {e["location_field_id"] for e in (client.enderecos.values() if client else [])
                      if e.get("location_field_id")}
            spec.find = lambda: self.remote.find_location(action.cliente_id, owner, address, legacy)
            spec.receipt = self._location_receipt(client, action, address)
        elif action.tipo == "phone" and customer_id:
            spec.find = lambda: self.remote.find_phone(action.cliente_id, customer_id, fcm.phone_key(payload.get("number")))
        elif action.tipo == "email" and customer_id:
            spec.find = lambda: self.remote.find_email(action.cliente_id, customer_id, str(payload.get("address") or ""))
        elif action.tipo == "ticket":
            kind = str((payload.get("external") or {}).get("id", "")).split(":")[2:3] or ["instalacao"]
            spec.kind = f"ticket_{kind[0]}"
            spec.find = lambda: self.remote.find_ticket(payload, label)
            spec.receipt = self._ticket_receipt(action, kind[0], (payload.get("service") or {}).get("id"), events)
        return spec

    def _endereco(self, client: records.Client | None, endereco_id: int | None,
                  conn: Connection | None = None) -> records.Row | None:
        if client is not None and endereco_id in client.enderecos:
            return client.enderecos[endereco_id]
        return self.rows.row("endereco", endereco_id, conn)

    def _location_receipt(self, client: records.Client | None, action: Action, address: dict):
        def receipt(conn: Connection, location: fcm.Location) -> None:
            endereco = self._endereco(client, action.endereco_id, conn)
            if endereco is None or endereco.get("location_field_id"):
                return
            # the location belongs to this address only if the row still holds it (compare-and-set)
            self.receipts.location(endereco, address)(conn, location)
        return receipt

    def _ticket_receipt(self, action: Action, kind: str, service_id: str | None, events: dict):
        if action.historico_id in events:
            project, event = events[action.historico_id]
            return self.receipts.ticket(project, event, kind, service_id)

        def receipt(conn: Connection, ticket: fcm.Ticket) -> None:
            event = self.rows.row("os_status_historico", action.historico_id, conn)
            if event is not None:
                self.receipts.event_sent(conn, event, kind, ticket, service_id)
        return receipt
