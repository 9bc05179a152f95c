"""FieldControl follows the edits it can (issue 13 §2): an open ticket whose text or location would now
differ is updated (PUT, an outbox action like the creates); the primary location's name follows its
address after the customer's PUT moved it; what FieldControl cannot change — an old phone or e-mail
the integration created, a ticket already turned into an order — is handed to the operator as a
"revise no FieldControl" item (review.py), closed when it disappears or is current again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection, Engine

from lib import fieldcontrol as fcm
from lib.errors import BadResponse, RecordError
from lib.status import ticket_label
from lib.steps import review
from lib.steps.push import outbox as ob
from lib.steps.push import records, ticket_message
from lib.steps.push.outbox import Outbox, Spec
from lib.steps.push.plan import Read, Steps, Write
from lib.steps.push.remote import Remote

log = logging.getLogger(__name__)

Perform = Callable[..., Steps[ob.Result]]


def hide_phone(number: object) -> str:
    """An old phone in a message for people: "(11) 9…-…21" (enough to find it, not the number)."""
    digits = fcm.phone_key(number)
    if len(digits) < 6:
        return "…"
    return f"({digits[:2]}) {digits[2]}…-…{digits[-2:]}"


def hide_email(address: object) -> str:
    local, _, domain = str(address or "").partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


def ticket_payload(client: records.Client, project: records.Project, event: records.Row, kind: str,
                   customer_id: str, service_id: str, location_id: str | None, previous: records.Row | None) -> dict:
    """The whole body of the ticket of `event` as the local data say now (POST and PUT alike)."""
    cliente = client.cliente
    name = cliente.get("nome") or f"Cliente {client.id}"
    message = ticket_message.message(kind, cliente=cliente, endereco=client.enderecos.get(project.os["endereco_id"]),
                                     os_row=project.os, pagamento=project.pagamento, event=event, previous=previous)
    return fcm.ticket_body(name=name, subject=ticket_message.subject(kind, name), message=message,
                           external_id=f"isales:{project.isales_id}:{kind}:{event['id']}", customer_id=customer_id,
                           service_id=service_id, location_id=location_id)


def changed_parts(before: dict, after: dict) -> list[str]:
    """What differs between two ticket bodies, as the field team reads it (message lines by label)."""
    parts = [label for key, label in (("subject", "assunto"), ("name", "nome")) if before.get(key) != after.get(key)]
    if (before.get("location") or {}).get("id") != (after.get("location") or {}).get("id"):
        parts.append("local")
    old_lines = dict(_labelled(before.get("message")))
    for label, line in _labelled(after.get("message")):
        if old_lines.get(label) != line and label not in parts:
            parts.append(label)
    return parts


def _labelled(text: object) -> list[tuple[str, str]]:
    return [(line.split(":", 1)[0].strip(" -") if ":" in line else line[:30], line)
            for line in str(text or "").splitlines() if line.strip()]


class EditFollower:
    """Decides, for each client after its actions (ClientSync.decide), the steps that follow its edits:
    open tickets, the primary location's name, and the old contacts to review. `perform` is the sync's
    (it keeps the action key as needed). What it reads of FieldControl and of the review items is a
    `Read` step: the dry run asks nothing (None) and plans as if nothing were found."""

    def __init__(self, outbox: Outbox, remote: Remote, perform: Perform, services: dict[str, str]):
        self.outbox, self.remote, self.perform = outbox, remote, perform
        self.services = services
        self.summary = outbox.summary
        self.run_id = outbox.run_id

    # -- tickets ------------------------------------------------------------------------------------
    def last_payload(self, client: records.Client, historico_id: int) -> dict | None:
        """What FieldControl holds for the ticket of an event: the last body the integration sent."""
        sent = [a for tipo in ("ticket", "ticket-put") for a in self.outbox.done(tipo, client.id)
                if a.historico_id == historico_id and a.payload]
        return sent[-1].payload if sent else None  # done() lists them in the order they were concluded

    def follow_ticket(self, client: records.Client, project: records.Project) -> Steps[None]:
        """The project's current ticket, if the integration sent it, follows the local data while open."""
        event, customer_id = project.last_sent, client.cliente.get("field_id")
        if not event or not event.get("ticket_field_id") or not customer_id:
            return
        before = self.last_payload(client, event["id"])
        endereco = client.enderecos.get(project.os["endereco_id"]) or {}
        if before is None or not endereco.get("location_field_id"):
            return  # sent by the scripts before the outbox existed, or its location is still to be made
        kind = records.sent_kind(event)
        service_id = (before.get("service") or {}).get("id") or self.services[kind]
        payload = ticket_payload(client, project, event, kind, customer_id, service_id,
                                 endereco["location_field_id"], project.sent_before)
        if ob.canonical(payload) == ob.canonical(before):
            return
        ticket_id = event["ticket_field_id"]
        name = event.get("ticket_identificador") or ticket_id
        label = f"{client.label(project)}: OS {name} de {ticket_label(kind)} (evento {event['id']})"
        chave = ob.ticket_put_key(event["id"], payload)
        review_key = review.key("ticket", event["id"], ob.digest(payload))
        done = self.outbox.get(chave)
        # a body sent before and since replaced (two cards of one person alternating): sent again
        redo = done is not None and done.estado == ob.CONCLUIDA
        if done is None or done.estado not in ob.OPEN:
            if (yield Read(lambda: self._reported(review_key))):
                return
            try:
                ticket = yield Read(lambda: self.remote.fc.get_ticket(ticket_id))
            except (RecordError, BadResponse) as exc:
                log.warning("%s: não foi possível ler a OS no FieldControl (%s); conferida na próxima execução",
                            label, exc.message)
                return
            if ticket is not None and not ticket.editable:
                yield self._report_ticket(client, project, event, ticket, before, payload, review_key, label)
                return

        def receipt(conn: Connection, value: Any) -> None:
            review.close(conn, [k for k in review.open_items(conn, f"ticket:{event['id']}:")], self.run_id)

        yield from self.perform(Spec(chave=chave, tipo="ticket-put", kind=f"ticket_{kind}", label=f"{label}: texto atualizado",
                          request=f"PUT /tickets/{ticket_id}", payload=payload,
                          send=lambda: self.remote.fc.update_ticket(ticket_id, payload), receipt=receipt,
                          isales_id=project.isales_id, cliente_id=client.id, historico_id=event["id"],
                          done_outcome="atualizados"), redo=redo)

    def _reported(self, chave: str) -> bool:
        """An item for this very difference was opened before (open, done or gone): nothing to ask again."""
        with self.engine.connect() as conn:
            return chave in review.states(conn, [chave])

    @property
    def engine(self) -> Engine:
        if self.outbox.engine is None:
            raise RuntimeError("the outbox of a real run has its engine")
        return self.outbox.engine

    def _report_ticket(self, client: records.Client, project: records.Project, event: records.Row,
                       ticket: fcm.Ticket, before: dict, payload: dict, review_key: str, label: str) -> Write:
        parts = ", ".join(changed_parts(before, payload)) or "texto"
        status = "já virou ordem de serviço" if ticket.status != fcm.TICKET_OPEN else "está arquivada"
        message = (f"{label} {status} (status {ticket.status!r}) e não pode mais ser alterada pela integração; "
                   f"mudou no iSales: {parts}")

        def report(conn: Connection) -> None:
            stale = [k for k in review.open_items(conn, f"ticket:{event['id']}:") if k != review_key]
            review.close(conn, stale, self.run_id)  # an earlier difference of the same ticket is superseded
            review.report(conn, review_key, message, isales_id=project.isales_id, run_id=self.run_id)
            log.warning("revise no FieldControl: %s", message)
            self.summary.add("revisar_no_fieldcontrol", "pendentes")

        return Write(report)

    # -- the primary location's name ---------------------------------------------------------------
    def follow_primary_name(self, client: records.Client, endereco: records.Row | None, moved: bool) -> Steps[None]:
        """After the customer's PUT moved its primary location to an edited address, its name follows."""
        customer_id = client.cliente.get("field_id")
        if not moved or endereco is None or not endereco.get("location_field_id") or not customer_id:
            return
        location_id = endereco["location_field_id"]
        payload = fcm.location_body(customer_id=customer_id, address=records.address_of(endereco))
        chave = ob.location_put_key(endereco["id"], payload)
        sent = [a for a in self.outbox.done("location-put", client.id) if a.endereco_id == endereco["id"]]
        redo = bool(sent) and sent[-1].chave != chave  # the address came back to an earlier one: sent again
        yield from self.perform(Spec(chave=chave, tipo="location-put", kind="local",
                          label=f"{client.label()}: nome do local principal {payload['name']}",
                          request=f"PUT /customers/{customer_id}/locations/{location_id}", payload=payload,
                          send=lambda: self.remote.fc.update_location(customer_id, location_id, payload),
                          receipt=lambda conn, value: None, isales_id=client.projects[0].isales_id,
                          cliente_id=client.id, endereco_id=endereco["id"], done_outcome="atualizados"), redo=redo)

    # -- old contacts ----------------------------------------------------------------------------------
    def review_old_contacts(self, client: records.Client) -> Steps[None]:
        """Phones and e-mails the integration created that are no longer the client's: the operator
        removes them by hand (the API cannot); closed when current again or gone from FieldControl.
        One `Read` step (the review items and FieldControl's lists, then their update): the plan skips it."""
        if client.cliente.get("field_id"):
            yield Read(lambda: self._review_old_contacts(client))

    def _review_old_contacts(self, client: records.Client) -> None:
        cliente, customer_id = client.cliente, client.cliente["field_id"]
        current_phones = {fcm.phone_key(cliente.get(n)) for n in ("telefone", "telefone_secundario")} - {""}
        current_email = fcm.email_key(cliente.get("email"))
        nome = f"{cliente.get('nome') or 'sem nome'} (projeto {', '.join(p.isales_id for p in client.projects)})"
        stale: dict[str, tuple[str, str, str]] = {}  # review key → (tipo, field id, message)
        main = fcm.phone_key(cliente.get("telefone"))
        for action in self.outbox.done("phone", client.id):
            number = (action.payload or {}).get("number")
            if not (action.payload and action.field_id):
                continue
            if fcm.phone_key(number) not in current_phones:
                stale[review.key("telefone", action.field_id)] = ("phones", action.field_id, (
                    f"telefone antigo {hide_phone(number)} do cliente {nome}: a API não permite "
                    "alterá-lo nem apagá-lo; apague-o (ou desmarque como principal) no FieldControl"))
            elif action.payload.get("primary") and main and fcm.phone_key(number) != main:
                stale[review.key("telefone", action.field_id)] = ("phones", action.field_id, (
                    f"telefone {hide_phone(number)} do cliente {nome} continua marcado como "
                    f"principal no FieldControl, mas o principal agora é {hide_phone(main)}: a API não permite "
                    "mudar isso; ajuste no FieldControl"))
        for action in self.outbox.done("email", client.id):
            address = (action.payload or {}).get("address")
            if action.payload and action.field_id and fcm.email_key(address) != current_email:
                stale[review.key("email", action.field_id)] = ("emails", action.field_id, (
                    f"e-mail antigo {hide_email(address)} do cliente {nome}: a API não permite "
                    "alterá-lo nem apagá-lo; apague-o no FieldControl"))
        mine = {review.key("telefone", a.field_id) for a in self.outbox.done("phone", client.id) if a.field_id} | \
               {review.key("email", a.field_id) for a in self.outbox.done("email", client.id) if a.field_id}
        with self.engine.connect() as conn:  # only this client's keys: never every open item (once per client)
            known = review.states(conn, list(stale.keys() | mine))
        current_again = [k for k in mine if known.get(k) is True and k not in stale]
        to_check = {k: v for k, v in stale.items() if known.get(k) is not False}  # never one closed before
        present = {what: {item.id for item in self.remote.listing(customer_id, what)}
                   for what in {v[0] for v in to_check.values()}}

        def apply(conn: Connection) -> None:
            closing = list(current_again)
            for key, (what, field_id, message) in to_check.items():
                if field_id in present[what]:
                    if review.report(conn, key, message, isales_id=client.projects[0].isales_id, run_id=self.run_id):
                        log.warning("revise no FieldControl: %s", message)
                        self.summary.add("revisar_no_fieldcontrol", "pendentes")
                elif known.get(key) is True:
                    closing.append(key)  # removed in FieldControl by the operator
            review.close(conn, closing, self.run_id)

        if to_check or current_again:
            with self.engine.begin() as conn:
                apply(conn)
