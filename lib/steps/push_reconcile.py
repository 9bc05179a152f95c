"""Step 04, first phase: every action an earlier run left `enviando` or `incerta` is looked up in
FieldControl before any new POST (customers by document, locations/phones/e-mails in the customer's
lists, tickets by name and external id). Found → its receipt is committed; not found → `nova`.
"""

from __future__ import annotations

from typing import Any

import lib.db.schema as t
from lib import fieldcontrol as fcm
from lib.steps import outbox as ob
from lib.steps import push_records as records
from lib.steps.outbox import Action, Spec

KIND_OF = {"customer": "cliente", "customer-put": "cliente", "location": "local", "phone": "telefone",
           "email": "email"}
TABLES = {"cliente": t.cliente, "endereco": t.endereco, "os_status_historico": t.os_status_historico}


class Reconciler:
    """Mixed into ClientSync: it uses its finders and receipts (find_*, *_receipt, outbox, engine)."""

    scope_all: bool = True  # False with --ids: only the actions of the clients in scope

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int], records.Row | None] = {}

    def row(self, table: str, row_id: int | None) -> records.Row | None:
        """A row read once per run (for actions of clients outside this run's list)."""
        if row_id is None:
            return None
        key = (table, row_id)
        if key not in self._rows:
            with self.engine.connect() as conn:
                self._rows[key] = records.rows_by_id(conn, TABLES[table], [row_id]).get(row_id)
        return self._rows[key]

    def reconcile_open(self, clients: list[records.Client]) -> None:
        actions = self.outbox.open_actions()
        if not actions:
            return
        by_id = {client.id: client for client in clients}
        events = {event["id"]: (project, event) for client in clients for project in client.projects
                  for event in project.events}
        for action in actions:
            client = by_id.get(action.cliente_id)
            if client is None and not self.scope_all:
                continue
            self.outbox.reconcile(self._spec(action, client, events))

    def _spec(self, action: Action, client: records.Client | None, events: dict) -> Spec:
        cliente = client.cliente if client else self.row("cliente", action.cliente_id)
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
            spec.find = lambda: self.find_customer(cliente, label)
            spec.receipt = self.customer_receipt(cliente, endereco, payload.get("address"))
        elif action.tipo == "location":
            address = payload.get("address") or {}
            owner = (payload.get("customer") or {}).get("id") or customer_id
            legacy = {e["location_field_id"] for e in (client.enderecos.values() if client else [])
                      if e.get("location_field_id")}
            spec.find = lambda: self.find_location(action.cliente_id, owner, address, legacy)
            spec.receipt = self._location_receipt(client, action, address)
        elif action.tipo == "phone" and customer_id:
            spec.find = lambda: self.find_phone(action.cliente_id, customer_id, fcm.phone_key(payload.get("number")))
        elif action.tipo == "email" and customer_id:
            spec.find = lambda: self.find_email(action.cliente_id, customer_id, str(payload.get("address") or ""))
        elif action.tipo == "ticket":
            kind = str((payload.get("external") or {}).get("id", "")).split(":")[2:3] or ["instalacao"]
            spec.kind = f"ticket_{kind[0]}"
            spec.find = lambda: self.find_ticket(payload, label)
            spec.receipt = self._ticket_receipt(action, kind[0], (payload.get("service") or {}).get("id"), events)
        return spec

    def _endereco(self, client: records.Client | None, endereco_id: int | None) -> records.Row | None:
        if client is not None and endereco_id in client.enderecos:
            return client.enderecos[endereco_id]
        return self.row("endereco", endereco_id)

    def _location_receipt(self, client: records.Client | None, action: Action, address: dict):
        def receipt(conn, location: fcm.Location) -> None:
            endereco = self._endereco(client, action.endereco_id)
            if endereco is None or endereco.get("location_field_id"):
                return
            # the location belongs to this address only if the address was not edited since
            if ob.digest(records.address_of(endereco)) == ob.digest(address):
                records.record_location(conn, endereco["id"], location.id, self.run_id)
                endereco["location_field_id"] = location.id
        return receipt

    def _ticket_receipt(self, action: Action, kind: str, service_id: str | None, events: dict):
        if action.historico_id in events:
            project, event = events[action.historico_id]
            return self.ticket_receipt(project, event, kind, service_id)

        def receipt(conn, ticket: fcm.Ticket) -> None:
            event = self.row("os_status_historico", action.historico_id)
            if event is not None:
                records.record_ticket(conn, event["id"], event["os_id"], kind, ticket.id, service_id, self.run_id)
        return receipt
