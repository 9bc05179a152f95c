"""What step 04 records locally with each FieldControl id, in the transaction that marks the action
`concluida` (outbox.complete): the customer's, the location's and the ticket's ids, the sent event.
The in-memory rows of the run are updated too, so the rest of the run sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Connection

import lib.db.schema as t
from lib import fieldcontrol as fcm
from lib.steps import review
from lib.steps.push import outbox as ob
from lib.steps.push import records
from lib.steps.push.outbox import Outbox

log = logging.getLogger(__name__)

address_of = records.address_of
external_id = records.external_id


class Receipts:
    """Receipts of one run (`run_id` goes into the change log); the outbox records primary locations."""

    def __init__(self, outbox: Outbox, run_id: int | None):
        self.outbox, self.run_id = outbox, run_id

    def customer(self, client_row: records.Row, endereco: records.Row | None, posted: dict | None) -> Callable[[Connection, fcm.Customer], None]:
        def receipt(conn: Connection, customer: fcm.Customer) -> None:
            ours = customer.external_id == external_id(client_row)
            records.record_customer(conn, client_row["id"], customer.id, ours=ours, run_id=self.run_id)
            client_row.update(field_id=customer.id, criado_pelo_script=ours)
            if ours and posted and endereco is not None and customer.primary_location_id:
                self.primary_location(conn, client_row["id"], endereco, posted, customer.primary_location_id)
        return receipt

    def primary_location(self, conn: Connection, cliente_id: int, endereco: records.Row, posted: dict,
                         location_id: str) -> None:
        """The location made with the customer (or moved by its PUT) is the address it was sent with:
        recorded on the row only if the row still holds that address (compare-and-set)."""
        if endereco.get("location_field_id"):
            return
        if not records.bind_location(conn, endereco["id"], location_id, posted, self.run_id):
            return
        endereco["location_field_id"] = location_id
        self.outbox.insert_done(conn, ob.location_key(endereco["id"], posted), "location", location_id,
                                cliente_id=cliente_id, endereco_id=endereco["id"])

    def ticket(self, project: records.Project, event: records.Row, kind: str, service_id: str | None) -> Callable[[Connection, fcm.Ticket], None]:
        def receipt(conn: Connection, ticket: fcm.Ticket) -> None:
            records.record_ticket(conn, event["id"], project.id, kind, ticket.id, service_id, self.run_id,
                                  ticket.identifier)
            project.sent_before = project.last_sent
            project.last_sent = {**event, "enviado_field": True, "ticket_tipo": kind, "ticket_field_id": ticket.id,
                                 "ticket_identificador": ticket.identifier or event.get("ticket_identificador")}
            project.events = [e for e in project.events if e["id"] != event["id"]]
            project.os.update(field_id=ticket.id, tipo_servico=service_id, criado_pelo_script=True)
        return receipt

    def location(self, endereco: records.Row, sent: dict) -> Callable[[Connection, fcm.Location], None]:
        """Bound to the row only if it still holds the address `sent` (compare-and-set): a row edited
        meanwhile keeps no location, and its new address gets one in the next pass."""
        def receipt(conn: Connection, location: fcm.Location) -> None:
            if records.bind_location(conn, endereco["id"], location.id, sent, self.run_id):
                endereco["location_field_id"] = location.id
        return receipt

    def event_sent(self, conn: Connection, event: records.Row, kind: str, ticket: fcm.Ticket,
                   service_id: str | None) -> None:
        """A ticket of an event outside this run's list (an open action of an earlier run): a dispensed
        event's ticket landed after all, so the later events dispensed meanwhile are decided again."""
        records.record_ticket(conn, event["id"], event["os_id"], kind, ticket.id, service_id, self.run_id,
                              ticket.identifier)
        if event.get("motivo_dispensa") is None:
            return
        reopened, left = records.reopen_after(conn, event)
        if reopened:
            log.info("evento %s: a OS %s chegou ao FieldControl depois de o evento ser dispensado; os eventos "
                     "seguintes dispensados (%s) voltam a ser decididos", event["id"],
                     ticket.identifier or ticket.id, ", ".join(map(str, reopened)))
        if left:
            os_row = conn.execute(select(t.os.c.isales_id).where(t.os.c.id == event["os_id"])).first()
            review.report(conn, review.key("dispensado", event["id"]), (
                f"a OS {ticket.identifier or ticket.id} (evento {event['id']}) chegou ao FieldControl depois de o "
                f"evento ser dispensado, e um evento posterior já foi enviado: confira se os eventos dispensados "
                f"{', '.join(map(str, left))} (cancelamento?) precisam de uma OS feita à mão"),
                isales_id=os_row.isales_id if os_row else None, run_id=self.run_id)
