"""Step 04's decisions for one client, in order: its customer (found by document or created), the
update of a customer we created, its phones and e-mail, the location of each project address, then
the tickets of its projects, dispensing the events the cancellation rule (rule.qualify) says do not
send one. `ClientSync.decide` yields the client's plan a step at a time (plan.py) and gets each
step's outcome back: the dry run writes the steps down, the real run carries them out.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.engine import Connection

from lib import fieldcontrol as fcm
from lib.errors import BadResponse, RecordError
from lib.status import ticket_label
from lib.steps.push import outbox as ob
from lib.steps.push import records, rule, ticket_message
from lib.steps.push.follow import EditFollower
from lib.steps.push.outbox import Outbox, Outcome, Spec
from lib.steps.push.plan import Block, Dispense, Note, Perform, Read, Steps, Wait, Write
from lib.steps.push.receipts import Receipts
from lib.steps.push.remote import Remote

log = logging.getLogger(__name__)

NO_COORDS = ("endereço sem coordenadas (latitude/longitude), que o FieldControl exige: corrija o link de "
             "localização ou o endereço no iSales e rode 01→03 de novo")


address_of = records.address_of
external_id = records.external_id


def main_contact(cliente: records.Row) -> dict:
    """The customer's main contact in FieldControl: the client's main phone and e-mail."""
    return fcm.contact_body(phone=cliente.get("telefone"), email=cliente.get("email"))


class ClientSync:
    """Decides the actions of each client (`decide`: a generator of plan steps, each step's outcome sent
    back); `outbox` is read for what was done before. Every action key seen is marked needed in
    `obsolete` (the real run's: its pending items stay open)."""

    def __init__(self, outbox: Outbox, remote: Remote, receipts: Receipts, rows: records.Rows,
                 services: dict[str, str], obsolete: ob.Obsolete | None = None):
        self.outbox, self.remote, self.receipts, self.rows = outbox, remote, receipts, rows
        self.services = services
        self.obsolete = obsolete
        self._put_waiting: set[int] = set()  # clients whose update (PUT) did not go through this run
        self._primary_with_customer: set[int] = set()  # addresses whose location a planned customer brings
        self.follower = EditFollower(outbox, remote, self._perform, services)

    def end_batch(self) -> None:
        """What was kept about the clients of a batch is dropped with it (each client is in one batch)."""
        self._put_waiting.clear()
        self._primary_with_customer.clear()
        self.rows.clear()
        self.remote.end_batch()

    def _need(self, chave: str) -> None:
        if self.obsolete is not None:
            self.obsolete.need(chave)

    # -- helpers ------------------------------------------------------------------------------------
    def _perform(self, spec: Spec, problem: str | None = None, *, redo: bool = False) -> Steps[ob.Result]:
        """`problem`: a local reason keeps the action from being sent (a pending item, no request)."""
        self._need(spec.chave)
        result: ob.Result = yield (Block(spec, problem) if problem else Perform(spec, redo))
        return result

    def foreign(self, client: records.Client) -> bool:
        """A customer this integration did not create: what it already has must be looked up first."""
        cliente = client.cliente
        if not cliente.get("field_id"):
            return False
        created = [a for a in self.outbox.done("customer", client.id) if a.payload and a.field_id == cliente["field_id"]]
        return not (created and cliente.get("criado_pelo_script"))

    # -- customer -----------------------------------------------------------------------------------
    def ensure_customer(self, client: records.Client, endereco: records.Row | None) -> Steps[str | None]:
        cliente = client.cliente
        if cliente.get("field_id"):
            return cliente["field_id"]
        label = f"{client.label()}: cliente"
        address = address_of(endereco) if endereco else None
        payload = fcm.customer_body(name=cliente.get("nome"), document=fcm.document_key(cliente.get("doc_pessoal")),
                                    external_id=external_id(cliente), address=address, contact=main_contact(cliente))
        spec = Spec(chave=ob.customer_key(client.id), tipo="customer", kind="cliente", label=label,
                    request="POST /customers", payload=payload, send=lambda: self.remote.fc.create_customer(payload),
                    receipt=self.receipts.customer(cliente, endereco, address),
                    find=lambda: self.remote.find_customer(cliente, label), look_first=True,
                    find_first=lambda: self.remote.find_customer_first(cliente, label),
                    lookup_note=("será procurado por documento (CPF/CNPJ) antes de criar; se já existir, é adotado e "
                                 "os locais, telefones e e-mails que ele tem são conferidos antes de criar outros"),
                    lookup_cost=2,
                    isales_id=client.projects[0].isales_id, cliente_id=client.id,
                    endereco_id=endereco["id"] if endereco else None)
        problem = None
        if not payload["documentNumber"]:
            problem = ("cliente sem CPF/CNPJ no banco local: sem documento não é possível procurá-lo no "
                       "FieldControl antes de criar (o que evita duplicatas)")
        elif endereco is None or address is None:
            problem = "projeto sem endereço no banco local: rode 03_sync_dados_local.py de novo"
        elif address["coords"] is None:
            problem = NO_COORDS
        result = yield from self._perform(spec, problem)
        if result.outcome is Outcome.PLANNED and endereco is not None:  # the plan's: its receipt binds it
            self._primary_with_customer.add(endereco["id"])
        return result.field_id if result.ok else None

    def ensure_update(self, client: records.Client) -> Steps[None]:
        """PUT (full body) a customer we created whose name, document, main contact or primary address
        changed since; then the primary location's name follows a moved address."""
        cliente = client.cliente
        if not cliente.get("criado_pelo_script") or self.foreign(client):
            return
        created = [a for a in self.outbox.done("customer", client.id) if a.payload][-1]
        sent = [a for a in self.outbox.done("customer", client.id) + self.outbox.done("customer-put", client.id)
                if a.payload]
        last = max(sent, key=lambda a: a.order)  # what FieldControl holds now
        endereco = (client.enderecos.get(created.endereco_id) or self.rows.row("endereco", created.endereco_id)
                    if created.endereco_id is not None else None)
        if endereco is None:
            return
        address = address_of(endereco)
        payload = fcm.customer_body(name=cliente.get("nome"), document=fcm.document_key(cliente.get("doc_pessoal")),
                                    external_id=created.payload["external"]["id"], address=address,
                                    contact=main_contact(cliente))
        moved = ob.digest(created.payload.get("address")) != ob.digest(address)
        if ob.canonical(payload) == ob.canonical(last.payload):
            yield from self.follower.follow_primary_name(client, endereco, moved)
            return
        customer_id = cliente["field_id"]

        def receipt(conn: Connection, customer: fcm.Customer) -> None:
            if customer.primary_location_id:
                self.receipts.primary_location(conn, client.id, endereco, address, customer.primary_location_id)

        spec = Spec(chave=ob.customer_put_key(client.id, payload), tipo="customer-put", kind="cliente",
                    label=f"{client.label()}: dados do cliente alterados", request=f"PUT /customers/{customer_id}",
                    payload=payload, send=lambda: self.remote.fc.update_customer(customer_id, payload), receipt=receipt,
                    isales_id=client.projects[0].isales_id, cliente_id=client.id, endereco_id=endereco["id"],
                    done_outcome="atualizados")
        result = yield from self._perform(spec, NO_COORDS if address["coords"] is None else None, redo=True)
        if not result.ok:
            self._put_waiting.add(client.id)
        else:  # in the plan the moved location is not known yet: its name is planned by the next run
            yield from self.follower.follow_primary_name(client, endereco, moved)

    # -- locations, phones, e-mail -----------------------------------------------------------------
    def ensure_location(self, client: records.Client, project: records.Project,
                        customer_id: str) -> Steps[str | None]:
        endereco = client.enderecos.get(project.os["endereco_id"])
        if endereco is None:
            spec = Spec(chave=f"location:os{project.id}", tipo="location", kind="local",
                        label=f"{client.label(project)}: local", request="", payload=None, send=lambda: None,
                        receipt=lambda conn, value: None, isales_id=project.isales_id, cliente_id=client.id)
            yield from self._perform(spec, "projeto sem endereço no banco local: rode 03_sync_dados_local.py de novo")
            return None
        if endereco.get("location_field_id"):
            return endereco["location_field_id"]
        if endereco["id"] in self._primary_with_customer:
            return "<local principal, criado com o cliente>"
        address = address_of(endereco)
        payload = fcm.location_body(customer_id=customer_id, address=address)
        created = [a for a in self.outbox.done("customer", client.id) if a.payload]
        primary = bool(created) and created[-1].endereco_id == endereco["id"]
        if primary and client.id in self._put_waiting:
            # the customer's PUT moves its primary location to this edited address: a new location
            # now would be a second one for the same place once the PUT goes through
            yield Note(f"{client.label(project)}: o local do endereço principal aguarda a atualização do cliente")
            return None
        legacy = {e["location_field_id"] for e in client.enderecos.values() if e.get("location_field_id")}
        receipt = self.receipts.location(endereco, address)

        spec = Spec(chave=ob.location_key(endereco["id"], address), tipo="location", kind="local",
                    label=f"{client.label(project)}: local {fcm.location_name(address)}",
                    request=f"POST /customers/{customer_id}/locations", payload=payload,
                    send=lambda: self.remote.create(customer_id, "locations", payload), receipt=receipt,
                    find=lambda: self.remote.find_location(client.id, customer_id, address, legacy),
                    look_first=self.foreign(client) or primary,
                    lookup_note="será procurado entre os locais do cliente antes de criar",
                    isales_id=project.isales_id, cliente_id=client.id, endereco_id=endereco["id"])
        result = yield from self._perform(spec, NO_COORDS if address["coords"] is None else None)
        if result.outcome is Outcome.DONE and result.field_id:  # back to an address that has a location
            location = fcm.Location(id=result.field_id, name=None, customer_id=None)
            yield Write(lambda conn: receipt(conn, location))
        if result.ok and result.outcome is not Outcome.PLANNED and endereco.get("location_field_id") != result.field_id:
            log.info("%s: o endereço mudou durante o envio do local; as OS deste projeto aguardam a próxima "
                     "execução, com o endereço novo", client.label(project))
            return None
        return result.field_id if result.ok else None

    def ensure_contacts(self, client: records.Client, customer_id: str) -> Steps[None]:
        cliente, foreign = client.cliente, self.foreign(client)
        isales_id = client.projects[0].isales_id
        seen = set()
        for number, primary in ((cliente.get("telefone"), True), (cliente.get("telefone_secundario"), False)):
            digits = fcm.phone_key(number)
            if not digits or digits in seen:
                continue
            seen.add(digits)
            payload = fcm.phone_body(digits, primary=primary)
            yield from self._perform(Spec(
                chave=ob.phone_key(client.id, digits), tipo="phone", kind="telefone",
                label=f"{client.label()}: telefone {ticket_message.phone(digits)}",
                request=f"POST /customers/{customer_id}/phones", payload=payload,
                send=partial(self.remote.create, customer_id, "phones", payload),
                receipt=lambda conn, value: None,
                find=partial(self.remote.find_phone, client.id, customer_id, digits), look_first=foreign,
                lookup_note="será procurado entre os telefones do cliente antes de criar",
                isales_id=isales_id, cliente_id=client.id))
        email = (cliente.get("email") or "").strip()
        if email:
            payload = fcm.email_body(email)
            yield from self._perform(Spec(
                chave=ob.email_key(client.id, email), tipo="email", kind="email",
                label=f"{client.label()}: e-mail {email}", request=f"POST /customers/{customer_id}/emails",
                payload=payload, send=lambda: self.remote.create(customer_id, "emails", payload),
                receipt=lambda conn, value: None, find=lambda: self.remote.find_email(client.id, customer_id, email),
                look_first=foreign, lookup_note="será procurado entre os e-mails do cliente antes de criar",
                isales_id=isales_id, cliente_id=client.id))

    # -- events and tickets -------------------------------------------------------------------------
    @staticmethod
    def dispense(client: records.Client, project: records.Project, event: records.Row, reason: str) -> Dispense:
        return Dispense(f"{client.label(project)}: evento {event['id']} ({event['status']})", event["id"], reason)

    def send_ticket(self, client: records.Client, project: records.Project, event: records.Row, kind: str,
                    customer_id: str, location_id: str) -> Steps[bool]:
        cliente = client.cliente
        name = cliente.get("nome") or f"Cliente {client.id}"
        service_id = self.services[kind]
        if kind == "cancelamento":
            yield from self.identify(project.last_sent)
        message = ticket_message.message(kind, cliente=cliente, endereco=client.enderecos.get(project.os["endereco_id"]),
                                         os_row=project.os, pagamento=project.pagamento, event=event,
                                         previous=project.last_sent)
        payload = fcm.ticket_body(name=name, subject=ticket_message.subject(kind, name), message=message,
                                  external_id=f"isales:{project.isales_id}:{kind}:{event['id']}",
                                  customer_id=customer_id, service_id=service_id, location_id=location_id)
        label = f"{client.label(project)}: OS de {ticket_label(kind)} (evento {event['id']})"
        receipt = self.receipts.ticket(project, event, kind, service_id)
        result = yield from self._perform(Spec(
            chave=ob.ticket_key(event["id"]), tipo="ticket", kind=f"ticket_{kind}", label=label,
            request="POST /tickets", payload=payload, send=lambda: self.remote.fc.create_ticket(payload), receipt=receipt,
            find=lambda: self.remote.find_ticket(payload, label), isales_id=project.isales_id, cliente_id=client.id,
            historico_id=event["id"]))
        if result.outcome is Outcome.DONE and result.field_id:  # in the outbox, missed by the history row
            ticket = fcm.Ticket(result.field_id, None, None, None, None, None, None, None)
            yield Write(lambda conn: receipt(conn, ticket))
        return result.ok

    def identify(self, sent: records.Row | None) -> Steps[None]:
        """The human identifier of a ticket sent before it was recorded (earlier versions), read once."""
        if not sent or not sent.get("ticket_field_id") or sent.get("ticket_identificador"):
            return
        try:
            ticket = yield Read(lambda: self.remote.fc.get_ticket(sent["ticket_field_id"]))
        except (RecordError, BadResponse) as exc:  # the message names the internal id instead
            log.info("OS %s: identificador não lido no FieldControl (%s)", sent["ticket_field_id"], exc.message)
            return
        identifier = ticket.identifier if ticket is not None else None
        if identifier:
            yield Write(lambda conn: records.record_identifier(conn, sent["id"], identifier))
            sent["ticket_identificador"] = identifier

    def _open_tickets(self, decisions: list[rule.Decision]) -> set[int]:
        """The events whose ticket POST is open: it may have landed in FieldControl (rule.held_from)."""
        return {d.event_id for d in decisions
                if (action := self.outbox.get(ob.ticket_key(d.event_id))) is not None and action.estado in ob.OPEN}

    def reread(self, client: records.Client) -> records.Client | None:
        """The client as the database holds it just before its actions are sent (the real run's walk);
        the outbox actions of what it gained since its batch was read (a new address, event) join the batch's."""
        with self.rows.engine.connect() as conn:
            fresh = records.reread(conn, client)
            if fresh is not None:
                self.outbox.load(conn, records.keys_of([fresh]), add=True)
            return fresh

    def decide(self, client: records.Client, plans: list) -> Steps[None]:
        """The client's plan, a step at a time: customer, its update, contacts and locations, then each
        project's events in id order (each step's outcome comes back before the next is decided)."""
        active = [p for p, decisions in plans if p.last_sent is not None or any(d.ticket for d in decisions)]
        active_ids = {p.id for p in active}
        # every qualifying event keeps its key, even when an earlier failure stops its project this run
        for _p, decisions in plans:
            for decision in decisions:
                if decision.ticket:
                    self._need(ob.ticket_key(decision.event_id))
        customer_id = None
        if active:
            first = next((p for p, ds in plans if any(d.ticket for d in ds)), active[0])
            customer_id = yield from self.ensure_customer(client, client.enderecos.get(first.os.get("endereco_id")))
            if customer_id:
                yield from self.ensure_update(client)
                # a customer of the legacy scripts (nothing in the outbox) gets its phones and e-mail
                # checked when it next gets a ticket, not all at once on the first run after the upgrade
                if any(d.ticket for _p, ds in plans for d in ds) or self.outbox.done("customer", client.id):
                    yield from self.ensure_contacts(client, customer_id)
                    yield from self.follower.review_old_contacts(client)
        for project, decisions in plans:
            location_id = None
            if customer_id and project.id in active_ids:
                location_id = yield from self.ensure_location(client, project, customer_id)
            events = {e["id"]: e for e in project.events}
            held = rule.held_from(decisions, self._open_tickets(decisions))
            for index, decision in enumerate(decisions):
                event = events[decision.event_id]
                if index == held:
                    self._need(ob.ticket_key(event["id"]))  # its pending item stays open
                    yield Note(f"{client.label(project)}: a OS do evento {event['id']} teve envio com resultado "
                               "incerto; este evento e os seguintes só são decididos depois de conferi-la no "
                               "FieldControl")
                    yield Wait(client.label(project), len(decisions) - index)
                    break
                if decision.ticket is None:
                    yield self.dispense(client, project, event, decision.reason or "")
                    continue
                if customer_id and location_id and (yield from self.send_ticket(
                        client, project, event, decision.ticket, customer_id, location_id)):
                    continue
                yield Wait(client.label(project), len(decisions) - index)
                break
            else:
                if customer_id and project.id in active_ids:
                    yield from self.follower.follow_ticket(client, project)
