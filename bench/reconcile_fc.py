"""Local database ↔ FieldControl sandbox: customers, locations, phones and e-mails against the current
local rows; every ticket (each field, the message line by line) against the local state of its send,
rebuilt from the change log; no duplicate and no object FieldControl has that the outbox did not make."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bench.audit import Audit
from bench.findings import Findings
from bench.localdb import State
from lib.fieldcontrol import document_key, email_key, fold, location_name, phone_key, same_address
from lib.steps.push import ticket_message
from lib.steps.push.records import address_of, external_id

if TYPE_CHECKING:
    from bench.fidelity_run import FidelitySettings

AREA_FC = "banco ↔ FieldControl"
AREA_TICKET = "OS (tickets)"
ADOPTED = "cliente adotado (cadastrado à mão no FieldControl): nome e endereço de lá são mantidos"
REPORTED = ("reportado ao operador (revise no FieldControl): o que a API não deixa mudar — telefone/e-mail "
            "antigo criado pela integração, OS já transformada em ordem de serviço")
MANUAL_TWICE = "documento cadastrado à mão mais de uma vez no FieldControl: usado o mais antigo, nada criado"
OLD_LOCATION = ("local do endereço antigo continua no FieldControl (o novo endereço ganhou outro local; as OS "
                "antigas apontam para ele)")
PLACES = Decimal("0.0000001")
KINDS = {"instalacao": "servico_instalacao", "aumento": "servico_aumento", "cancelamento": "servico_cancelamento"}


def coord(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(PLACES)


def address_view(address: dict | None) -> dict[str, Any]:
    """The fields of a FieldControl address (stored or to be sent), comparable."""
    address = address or {}
    coords = address.get("coords") or {}
    return {"zipCode": address.get("zipCode"), "street": address.get("street"), "number": address.get("number"),
            "neighborhood": address.get("neighborhood"), "complement": address.get("complement"),
            "city": address.get("city"), "state": address.get("state"),
            "latitude": coord(coords.get("latitude")), "longitude": coord(coords.get("longitude"))}


def message_lines(text: str | None) -> list[tuple[str, str]]:
    """(label, line) for every line of a ticket message; the label is what precedes the first ':'."""
    result = []
    for number, line in enumerate((text or "").splitlines(), 1):
        label = line.split(":", 1)[0].strip(" -") if ":" in line else f"linha {number}"
        result.append((label, line))
    return result


class FieldControlReconciler:
    def __init__(self, sandbox, settings: FidelitySettings, state: State, audit: Audit, findings: Findings):
        self.settings, self.state, self.audit, self.f = settings, state, audit, findings
        self.customers = {c["id"]: c for c in sandbox.fc_customers()}
        self.locations = sandbox.fc_locations()
        self.tickets = sandbox.fc_tickets()
        self.of_customer: dict[tuple[str, str | None], list[dict]] = {}  # (kind, customer id) → objects
        for kind, items in (("location", self.locations), ("phone", sandbox.fc_phones()),
                            ("email", sandbox.fc_emails())):
            for item in items:
                self.of_customer.setdefault((kind, (item.get("customer") or {}).get("id")), []).append(item)
        self.location_by_id = {loc["id"]: loc for loc in self.locations}
        done = [a for a in state.acoes.values() if a["estado"] == "concluida" and a["field_id"]]
        self.made = {a["field_id"] for a in done}  # created or adopted by the integration
        self.review = {item["chave"]: item["motivo"] for item in state.pending
                       if item["etapa"] == "04" and item["chave"].startswith("revisar:")}
        self.named = {a["field_id"] for a in done if a["tipo"] in ("location", "location-put") and a["payload"]}
        self.last_sent = {os_id: max((r["id"] for r in rows if r["enviado_field"]), default=None)
                          for os_id, rows in state.history.items()}
        self.posted = {a["field_id"] for a in done if a["payload"]}  # created by it (sent)
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        for cliente in self.state.clientes.values():
            if cliente.get("field_id"):
                self.customer(cliente)
        self.no_duplicate_customers()
        for endereco in self.state.enderecos.values():
            if endereco.get("location_field_id"):
                self.location(endereco)
        current = {e["location_field_id"] for e in self.state.enderecos.values() if e.get("location_field_id")}
        for loc in self.locations:
            if loc["id"] in self.made and loc["id"] not in current:
                self.f.rule(OLD_LOCATION, f"local {loc['id']} de {(loc.get('customer') or {}).get('id')}")
        self.tickets_vs_history()

    # -- customers, locations, contacts -----------------------------------------------------------
    def customer(self, cliente: dict[str, Any]) -> None:
        record = f"cliente {cliente['id']} ({cliente['doc_pessoal']})"
        remote = self.customers.get(cliente["field_id"])
        self.counts["clientes"] += 1
        if remote is None:
            self.f.diff(AREA_FC, record, "cliente.field_id", "um cliente no FieldControl", cliente["field_id"])
            return
        self.f.check(AREA_FC, record, "documentNumber", document_key(cliente["doc_pessoal"]),
                     document_key(remote.get("documentNumber")))
        if not cliente.get("criado_pelo_script"):
            if remote.get("name") != cliente.get("nome"):
                self.f.rule(ADOPTED, f"{record}: {remote.get('name')!r} no FieldControl, {cliente.get('nome')!r} local")
        else:
            self.f.check(AREA_FC, record, "name", cliente.get("nome"), remote.get("name"))
            self.f.check(AREA_FC, record, "external.id", external_id(cliente), (remote.get("external") or {}).get("id"))
            created = self.state.acoes.get(f"customer:{cliente['id']}") or {}
            primary = self.state.enderecos.get(created["endereco_id"]) if created.get("endereco_id") else None
            if primary is not None:
                expected = address_view(address_of(primary))
                for name, value in address_view(remote.get("address")).items():
                    self.f.check(AREA_FC, record, f"address.{name}", expected[name], value)
            contact = remote.get("contact") or {}  # the main contact follows the client's main phone and e-mail
            self.f.check(AREA_FC, record, "contact.phone", phone_key(cliente.get("telefone")) or None,
                         phone_key(contact.get("phone")) or None)
            self.f.check(AREA_FC, record, "contact.email", email_key(cliente.get("email")) or None,
                         email_key(contact.get("email")) or None)
        phones = self.of_customer.get(("phone", remote["id"]), [])
        self.contacts(record, cliente, phones, "telefone", "number",
                      phone_key, [cliente.get("telefone"), cliente.get("telefone_secundario")])
        self.contacts(record, cliente, self.of_customer.get(("email", remote["id"]), []), "e-mail", "address",
                      email_key, [cliente.get("email")])
        main = phone_key(cliente.get("telefone"))
        current = {phone_key(cliente.get(n)) for n in ("telefone", "telefone_secundario")} - {""}
        if cliente.get("criado_pelo_script") and main:
            # the primary phone is the client's main one; a current one still marked primary instead
            # (main and secondary swapped) was reported to the operator, since the API cannot unmark it
            others = [p for p in phones if p.get("primary") and phone_key(p.get("number")) != main]
            swapped = [p for p in others if phone_key(p.get("number")) in current]
            reported = [p for p in swapped if self.reported("telefone", p["id"], record)]
            for phone in swapped:
                if phone not in reported:
                    self.f.diff(AREA_FC, record, f"telefone {phone.get('number')}: principal",
                                "desmarcado ou reportado ao operador", True)
            for phone in phones:
                if phone_key(phone.get("number")) == main and not reported:
                    self.f.check(AREA_FC, record, f"telefone {main}: principal", True, bool(phone.get("primary")))

    def contacts(self, record: str, cliente: dict[str, Any], theirs: list[dict], what: str, field: str, key,
                 local: list[Any]) -> None:
        """The client's current phones (or e-mail) in FieldControl exactly once; the others there are
        earlier values the integration created (or, for an adopted customer, typed by hand)."""
        counted = Counter(key(item.get(field)) for item in theirs)
        self.counts[f"{what}s"] += len(theirs)
        current = {key(v) for v in local if v}
        for value in sorted(current):
            self.f.check(AREA_FC, record, f"{what} {value}: vezes no FieldControl", 1, counted.get(value, 0))
        for item in theirs:
            if key(item.get(field)) in current:
                continue
            if item["id"] in self.made:
                if not self.reported("telefone" if what == "telefone" else "email", item["id"], record):
                    self.f.diff(AREA_FC, record, f"{what} antigo {item.get(field)}", "reportado ao operador",
                                "nenhum item 'revise no FieldControl'")
            elif cliente.get("criado_pelo_script"):
                self.f.diff(AREA_FC, record, what, "só os criados pela integração", item.get(field))

    def reported(self, kind: str, field_id: str, record: str) -> bool:
        """Whether an item "revise no FieldControl" is open for it (it is then in the e-mail report)."""
        key = f"revisar:{kind}:{field_id}"
        if key in self.review:
            self.f.rule(REPORTED, f"{record}: {self.review[key]}")
            return True
        return False

    def no_duplicate_customers(self) -> None:
        """One customer per document: ours (external id) only when none was typed by hand before;
        with several typed by hand, the oldest one is used (as lib/steps/push/remote.py says)."""
        per_doc: dict[str, list[dict]] = {}
        for customer in self.customers.values():
            per_doc.setdefault(document_key(customer.get("documentNumber")), []).append(customer)
        for cliente in self.state.clientes.values():
            if not cliente.get("field_id"):
                continue
            record = f"documento {document_key(cliente['doc_pessoal'])}"
            found = per_doc.get(document_key(cliente["doc_pessoal"]), [])
            ours = [c for c in found if (c.get("external") or {}).get("id") == external_id(cliente)]
            manual = sorted((c for c in found if c not in ours), key=lambda c: (c.get("archived"), c.get("createdAt") or "", c["id"]))
            self.f.check(AREA_FC, record, "clientes criados pela integração", 0 if manual else 1, len(ours))
            if len(manual) > 1:
                self.f.rule(MANUAL_TWICE, f"{record}: {', '.join(c['id'] for c in manual)}")
                self.f.check(AREA_FC, record, "cliente usado (o mais antigo dos cadastrados à mão)", manual[0]["id"],
                             cliente["field_id"])

    def location(self, endereco: dict[str, Any]) -> None:
        record = f"endereço {endereco['id']}"
        self.counts["locais"] += 1
        remote = self.location_by_id.get(endereco["location_field_id"])
        cliente = self.state.clientes.get(endereco["cliente_id"]) or {}
        if remote is None:
            self.f.diff(AREA_FC, record, "location_field_id", "um local no FieldControl", endereco["location_field_id"])
            return
        ours = address_of(endereco)
        self.f.check(AREA_FC, record, "customer.id", cliente.get("field_id"), (remote.get("customer") or {}).get("id"))
        if cliente.get("criado_pelo_script") or remote["id"] in self.posted:
            expected = address_view(ours)
            for name, value in address_view(remote.get("address")).items():
                self.f.check(AREA_FC, record, f"address.{name}", expected[name], value)
            # its name follows the address: the one the integration sent (POST or PUT), or — the primary
            # location FieldControl named when the customer was created — street and number
            if remote["id"] in self.named:
                self.f.check(AREA_FC, record, "name", location_name(ours), remote.get("name"))
            else:
                label = fold(remote.get("name"))
                self.f.check(AREA_FC, record, "name (rua e número do endereço)", True,
                             fold(ours.get("street")) in label and fold(ours.get("number") or "") in label)
        else:  # a location typed by hand and adopted: being the same place is what matters
            self.f.check(AREA_FC, record, "address (o mesmo lugar)", True, same_address(remote.get("address"), ours))
            if address_view(remote.get("address")) != address_view(ours):
                self.f.rule(ADOPTED, f"{record}: local {remote['id']}")
        mine = self.of_customer.get(("location", cliente.get("field_id")), [])
        self.f.check(AREA_FC, record, "locais deste endereço no FieldControl", 1,
                     sum(1 for loc in mine if same_address(loc.get("address"), ours)))

    # -- tickets ----------------------------------------------------------------------------------
    def tickets_vs_history(self) -> None:
        remote: dict[str, list[dict]] = {}
        for ticket in self.tickets:
            ext = str((ticket.get("external") or {}).get("id") or "")
            if ext.startswith("isales:"):
                remote.setdefault(ext, []).append(ticket)
        os_by_id = {row["id"]: row for row in self.state.os.values()}
        expected: set[str] = set()
        for os_id, rows in self.state.history.items():
            for event in rows:
                if not event["enviado_field"]:
                    continue
                os_row = os_by_id[os_id]
                ext = f"isales:{os_row['isales_id']}:{event['ticket_tipo']}:{event['id']}"
                expected.add(ext)
                record = f"projeto {os_row['isales_id']}, evento {event['id']} ({event['ticket_tipo']})"
                found = remote.get(ext, [])
                self.f.check(AREA_TICKET, record, "tickets com este external.id", 1, len(found))
                if found:
                    self.ticket(record, os_row, event, [r for r in rows if r["enviado_field"] and r["id"] < event["id"]],
                                found[0])
        for ext in sorted(set(remote) - expected):
            self.f.diff(AREA_TICKET, ext, "ticket", "um evento enviado no histórico local", f"{len(remote[ext])} ticket(s)")

    def ticket(self, record: str, os_now: dict[str, Any], event: dict[str, Any], sent_before: list[dict],
               remote: dict[str, Any]) -> None:
        """One ticket against the local state of its send (run R: the outbox's receipt)."""
        self.counts["tickets"] += 1
        kind = event["ticket_tipo"]
        action = self.state.acoes.get(f"ticket:{event['id']}")
        if action is None or action["estado"] != "concluida":
            self.f.diff(AREA_TICKET, record, "acao_field", "concluida", action and action["estado"])
            return
        # what it holds is its last body sent: the POST, or the last PUT that made it follow the edits
        puts = [a for chave, a in self.state.acoes.items()
                if chave.startswith(f"ticket-put:{event['id']}:") and a["estado"] == "concluida"]
        run = max([action] + puts, key=lambda a: (a["execucao_id"] or 0, a["concluida_em"], a["id"]))["execucao_id"]
        os_row = self.audit.at("os", os_now, run)
        if os_row is None:  # the receipt names a run before the project existed: the audit is wrong
            self.f.diff(AREA_TICKET, record, "os", f"existia na execução {run}", None)
            return
        cliente = self.audit.at("cliente", self.state.clientes.get(os_row["cliente_id"]), run) or {}
        endereco = self.audit.at("endereco", self.state.enderecos.get(os_row["endereco_id"]), run)
        pagamento = self.audit.at("pagamento", self.state.pagamentos.get(os_row["id"]), run)
        name = cliente.get("nome") or f"Cliente {cliente.get('id')}"
        check = self.f.check
        check(AREA_TICKET, record, "id", event["ticket_field_id"], remote["id"])
        check(AREA_TICKET, record, "name", name, remote.get("name"))
        check(AREA_TICKET, record, "subject", ticket_message.subject(kind, name), remote.get("subject"))
        check(AREA_TICKET, record, "customer.id", cliente.get("field_id"), (remote.get("customer") or {}).get("id"))
        check(AREA_TICKET, record, "location.id", (endereco or {}).get("location_field_id"),
              (remote.get("location") or {}).get("id"))
        service = getattr(self.settings.fieldcontrol, KINDS[kind])
        check(AREA_TICKET, record, "service.id", service, (remote.get("service") or {}).get("id"))
        previous = sent_before[-1] if sent_before else None
        wanted = message_lines(ticket_message.message(kind, cliente=cliente, endereco=endereco, os_row=os_row,
                                                      pagamento=pagamento, event=event, previous=previous))
        got = message_lines(remote.get("message"))
        check(AREA_TICKET, record, "mensagem: número de linhas", len(wanted), len(got))
        for (label, line), (_label, other) in zip(wanted, got):
            check(AREA_TICKET, record, f"mensagem: {label}", line, other)
        if event["id"] == self.last_sent.get(os_now["id"]):
            self.open_ticket(record, os_now, event, previous, remote, kind)

    def open_ticket(self, record: str, os_row: dict[str, Any], event: dict[str, Any], previous: dict | None,
                    remote: dict[str, Any], kind: str) -> None:
        """A project's current ticket carries today's data while FieldControl still lets it change
        (pending); once it is an order, a difference must be in front of the operator."""
        cliente = self.state.clientes.get(os_row["cliente_id"]) or {}
        endereco = self.state.enderecos.get(os_row["endereco_id"]) or {}
        name = cliente.get("nome") or f"Cliente {cliente.get('id')}"
        today = {"subject": ticket_message.subject(kind, name), "location": endereco.get("location_field_id"),
                 "message": ticket_message.message(kind, cliente=cliente, endereco=endereco, os_row=os_row,
                                                   pagamento=self.state.pagamentos.get(os_row["id"]), event=event,
                                                   previous=previous)}
        held = {"subject": remote.get("subject"), "location": (remote.get("location") or {}).get("id"),
                "message": remote.get("message")}
        if remote.get("status") == "pending":
            for key in ("subject", "location"):
                self.f.check(AREA_TICKET, record, f"OS aberta com os dados de hoje: {key}", today[key], held[key])
            wanted, got = message_lines(today["message"]), message_lines(held["message"])
            self.f.check(AREA_TICKET, record, "OS aberta com os dados de hoje: linhas", len(wanted), len(got))
            for (label, line), (_label, other) in zip(wanted, got):
                self.f.check(AREA_TICKET, record, f"OS aberta com os dados de hoje: {label}", line, other)
        elif today != held:
            reported = [k for k in self.review if k.startswith(f"revisar:ticket:{event['id']}:")]
            if reported:
                self.f.rule(REPORTED, f"{record}: {self.review[reported[0]]}")
            else:
                self.f.diff(AREA_TICKET, record, "OS já em ordem de serviço, com dados antigos",
                            "reportado ao operador", "nenhum item 'revise no FieldControl'")
