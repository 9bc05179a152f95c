"""FieldControl client (docs/api/fieldcontrol.md): payload shapes, typed results, and list helpers
that page through every answer and re-check each match locally. No business rules here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import requests

from lib.config import PushSettings
from lib.documents import fold, mask_document
from lib.errors import AuthError, BadResponse, RecordError, RemoteRejected
from lib.http import json_body, make_session, pacer_file
from lib.logs import clip

PAGE_SIZE = 100  # the API's maximum `limit`
MAX_OFFSET = 200_000  # the API's maximum `offset`
_Q_BREAKERS = '"\\'  # characters that end or escape a quoted `q` value


class StopListing(Exception):  # noqa: N818 - a signal, not a failure
    """A listing stopped after its first page: reading it all would cost `pages` requests."""

    def __init__(self, pages: int) -> None:
        super().__init__(pages)
        self.pages = pages


class NotFound(RecordError):
    """The object (usually the customer of a sub-resource) does not exist in FieldControl."""


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    archived: bool = False


@dataclass(frozen=True)
class Customer:
    id: str
    name: str | None
    document_number: str | None
    external_id: str | None
    primary_location_id: str | None
    created_at: str | None
    archived: bool = False
    contact_phone: str | None = None  # the main contact (`contact.phone` / `contact.email`)
    contact_email: str | None = None
    address: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Location:
    id: str
    name: str | None
    customer_id: str | None
    address: dict = field(default_factory=dict)
    archived: bool = False


@dataclass(frozen=True)
class Phone:
    id: str
    number: str | None
    primary: bool = False


@dataclass(frozen=True)
class Email:
    id: str
    address: str | None


@dataclass(frozen=True)
class Ticket:
    id: str
    identifier: str | None
    name: str | None
    subject: str | None
    external_id: str | None
    customer_id: str | None
    service_id: str | None
    location_id: str | None
    status: str | None = None
    message: str | None = None
    archived: bool = False

    @property
    def editable(self) -> bool:
        """Only a `pending` ticket takes a PUT; any other status means it is no longer editable."""
        return self.status == TICKET_OPEN and not self.archived


@dataclass(frozen=True)
class Order:
    """An order (ordem de serviço) FieldControl staff made from a ticket; it has no status itself."""

    id: str
    identifier: str | None
    ticket_id: str | None
    customer_id: str | None
    external_id: str | None
    updated_at: datetime | None
    archived: bool = False


@dataclass(frozen=True)
class Task:
    """A task (atividade) of an order: where the execution status lives."""

    id: str
    status: str | None
    status_description: str | None
    order_id: str | None
    scheduled: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime | None
    archived: bool = False

    @property
    def moment(self) -> datetime | None:
        """When the task reached its status, as well as FieldControl says it."""
        if self.status == "done" and self.completed_at:
            return self.completed_at
        if self.status == "in-progress" and self.started_at:
            return self.started_at
        return self.updated_at or self.scheduled


TICKET_OPEN = "pending"
TASK_STATUSES = ("scheduled", "pending", "on-route", "in-progress", "done", "reported", "canceled")


# --------------------------------------------------------------------------- normalisation

def document_key(document: object) -> str:
    """CPF/CNPJ as compared here: letters and digits only, upper case (masks are ignored)."""
    return "".join(c for c in str(document or "") if c.isalnum()).upper()


def document_variants(document: object) -> list[str]:
    """How a document may be stored in FieldControl: as digits, then with its usual mask."""
    key = document_key(document)
    if not key:
        return []
    return [key, mask_document(key)] if len(key) in (11, 14) else [key]


def phone_key(number: object) -> str:
    """A phone as compared here: its national digits (no country code, no trunk zero)."""
    digits = "".join(c for c in str(number or "") if c.isdigit())
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    return digits.lstrip("0")


def email_key(address: object) -> str:
    return str(address or "").strip().casefold()


def _number_key(number: object) -> str:
    text = fold(number).replace(" ", "")
    return "" if text in ("", "s/n", "sn", "s/no", "semnumero") else text


def same_address(remote: dict | None, ours: dict) -> bool:
    """Whether a stored FieldControl address is the place of `ours` (CEP, street, number, complement).

    A complement missing on one side does not count as a difference; different ones do.
    """
    if not isinstance(remote, dict):
        return False
    zip_remote = "".join(c for c in str(remote.get("zipCode") or remote.get("postalCode") or "") if c.isdigit())
    zip_ours = "".join(c for c in str(ours.get("zipCode") or "") if c.isdigit())
    if zip_remote != zip_ours or fold(remote.get("street")) != fold(ours.get("street")):
        return False
    if _number_key(remote.get("number")) != _number_key(ours.get("number")):
        return False
    comp_remote, comp_ours = fold(remote.get("complement")), fold(ours.get("complement"))
    return not (comp_remote and comp_ours and comp_remote != comp_ours)


def parse_time(text: object) -> datetime | None:
    """An ISO-8601 moment of FieldControl (with or without milliseconds, `Z` or an offset) as naive
    UTC; None for anything else (a missing or unreadable date is not an error)."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def iso_time(moment: datetime) -> str:
    """A naive-UTC moment as FieldControl writes it in a `q` comparison."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def q_value(text: str) -> str:
    """The longest piece of `text` that fits a quoted `q` value (a substring match still finds it)."""
    pieces = [""]
    for char in text:
        if char in _Q_BREAKERS:
            pieces.append("")
        else:
            pieces[-1] += char
    return max((piece.strip() for piece in pieces), key=len)


# --------------------------------------------------------------------------- payloads

def _number(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def address_body(*, cep: str | None, logradouro: str | None, numero: str | None, complemento: str | None,
                 bairro: str | None, cidade: str | None, estado: str | None,
                 latitude: Decimal | float | None, longitude: Decimal | float | None) -> dict:
    """The `address` object of customers and locations (coordinates are required by FieldControl)."""
    zip_code = "".join(c for c in str(cep or "") if c.isdigit()) or None
    coords = None
    if latitude is not None and longitude is not None:
        coords = {"latitude": _number(latitude), "longitude": _number(longitude)}
    return {"zipCode": zip_code, "street": logradouro, "number": numero, "neighborhood": bairro,
            "complement": complemento, "city": cidade, "state": estado, "coords": coords}


def location_name(address: dict) -> str:
    parts = [address.get("street"), address.get("number"), address.get("complement")]
    return ", ".join(str(p) for p in parts if p) or "Endereço do projeto"


def contact_body(*, phone: str | None, email: str | None) -> dict:
    """The customer's main contact: its phone digits and e-mail (None when there is none)."""
    return {"phone": phone_key(phone) or None, "email": (email or "").strip() or None}


def customer_body(*, name: str | None, document: str | None, external_id: str, address: dict | None,
                  contact: dict | None = None) -> dict:
    """The whole customer body (a PUT sends it all); `contact` only when given, so that a body built
    without one stays what earlier versions sent."""
    body = {"name": name, "documentNumber": document, "external": {"id": external_id}, "address": address}
    if contact is not None:
        body["contact"] = contact
    return body


def location_body(*, customer_id: str, address: dict) -> dict:
    return {"name": location_name(address), "customer": {"id": customer_id}, "address": address}


def phone_body(number: str, *, primary: bool) -> dict:
    digits = phone_key(number)
    mobile = len(digits) == 11 and digits[2] == "9"
    return {"number": digits, "type": "mobile" if mobile else "landline", "primary": primary}


def email_body(address: str) -> dict:
    return {"address": address.strip(), "type": "personal"}


def ticket_body(*, name: str, subject: str, message: str, external_id: str, customer_id: str,
                service_id: str, location_id: str | None) -> dict:
    body = {"name": name, "subject": subject, "message": message, "external": {"id": external_id},
            "customer": {"id": customer_id}, "service": {"id": service_id}}
    if location_id:
        body["location"] = {"id": location_id}
    return body


# --------------------------------------------------------------------------- typed results

def _id(raw: Any, what: str) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise BadResponse(f"{what}: resposta sem o campo 'id' (início: {clip(raw, 80)!r})")
    return raw["id"]


def _ref(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    return value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def _text(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) else None


def _customer(raw: Any, what: str) -> Customer:
    contact = raw.get("contact") if isinstance(raw.get("contact"), dict) else {}
    address = raw.get("address") if isinstance(raw.get("address"), dict) else {}
    return Customer(id=_id(raw, what), name=raw.get("name"), document_number=raw.get("documentNumber"),
                    external_id=_ref(raw, "external"), primary_location_id=_ref(raw, "primaryLocation"),
                    created_at=raw.get("createdAt"), archived=bool(raw.get("archived", False)),
                    contact_phone=_text(contact, "phone"), contact_email=_text(contact, "email"), address=address)


def _location(raw: Any, what: str) -> Location:
    address = raw.get("address") if isinstance(raw.get("address"), dict) else {}
    return Location(id=_id(raw, what), name=raw.get("name"), customer_id=_ref(raw, "customer"), address=address,
                    archived=bool(raw.get("archived", False)))


def _phone(raw: Any, what: str) -> Phone:
    return Phone(id=_id(raw, what), number=raw.get("number"), primary=raw.get("primary") is True)


def _ticket(raw: Any, what: str) -> Ticket:
    return Ticket(id=_id(raw, what), identifier=raw.get("identifier"), name=raw.get("name"),
                  subject=raw.get("subject"), external_id=_ref(raw, "external"),
                  customer_id=_ref(raw, "customer"), service_id=_ref(raw, "service"),
                  location_id=_ref(raw, "location"), status=_text(raw, "status"), message=_text(raw, "message"),
                  archived=bool(raw.get("archived", False)))


def _order(raw: Any, what: str) -> Order:
    return Order(id=_id(raw, what), identifier=_text(raw, "identifier"), ticket_id=_ref(raw, "ticket"),
                 customer_id=_ref(raw, "customer"), external_id=_ref(raw, "external"),
                 updated_at=parse_time(raw.get("updatedAt")), archived=bool(raw.get("archived", False)))


def _task(raw: Any, what: str) -> Task:
    scheduling = raw.get("scheduling") if isinstance(raw.get("scheduling"), dict) else {}
    day, hour = scheduling.get("date"), scheduling.get("time")
    scheduled = parse_time(f"{day}T{hour}") if isinstance(day, str) and isinstance(hour, str) else None
    status = _text(raw, "status")
    return Task(id=_id(raw, what), status=status.strip().lower() if status else None,
                status_description=_text(raw, "statusDescription"), order_id=_ref(raw, "order"),
                scheduled=scheduled or parse_time(day),
                started_at=parse_time(raw.get("startedAt")), completed_at=parse_time(raw.get("completedAt")),
                updated_at=parse_time(raw.get("updatedAt")), archived=bool(raw.get("archived", False)))


def _error_text(response: requests.Response) -> tuple[str, Any]:
    """FieldControl's own words for a refusal (message + field errors), and the parsed body."""
    try:
        data = response.json()
    except ValueError:
        return " ".join(clip(response.text, 200).split()) or response.reason or "sem detalhes", None
    if not isinstance(data, dict):
        return clip(data, 200), data
    message = str(data.get("message") or "").strip()
    errors = data["errors"] if isinstance(data.get("errors"), list) else []
    details = [f"{e.get('field')} {e.get('message')}".strip() for e in errors if isinstance(e, dict)]
    extra = [d for d in details if d and d != message]
    text = "; ".join([message] + extra if message else extra)
    return text or "sem detalhes", data


# --------------------------------------------------------------------------- client

class FieldControl:
    """The calls this project makes. Every method raises the classes of lib/errors.py."""

    def __init__(self, base_url: str, session: requests.Session, *, page_size: int = PAGE_SIZE):
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.page_size = page_size

    @classmethod
    def from_settings(cls, settings: PushSettings) -> FieldControl:
        fc = settings.fieldcontrol
        session = make_session("FieldControl", settings.http, rate_per_second=fc.rate_per_second,
                               pacer_state=pacer_file(settings.data_dir, "fieldcontrol", fc.api_key))
        session.headers.update({"X-Api-Key": fc.api_key, "Content-Type": "application/json"})
        return cls(fc.api_url, session)

    @property
    def requests_made(self) -> int:
        return int(getattr(self.session, "stats", {}).get("requests", 0))

    def _call(self, method: str, path: str, what: str, *, params: dict | None = None,
              body: dict | None = None) -> Any:
        response = self.session.request(method, self.base_url + path, params=params, json=body)
        status = response.status_code
        if 200 <= status < 300:
            return json_body(response, what)
        text, data = _error_text(response)
        if status in (401, 403):
            raise AuthError(f"{what}: o FieldControl recusou a chave de API (HTTP {status}: {text}); "
                            "confira FIELDCONTROL_API_KEY")
        if status == 404:
            raise NotFound(f"{what}: não existe no FieldControl (HTTP 404: {text})")
        if 400 <= status < 500:
            raise RemoteRejected(f"{what}: o FieldControl recusou (HTTP {status}): {text}", status=status, details=data)
        raise BadResponse(f"{what}: resposta inesperada do FieldControl (HTTP {status}: {text})", status=status)

    def _pages(self, path: str, what: str, params: dict | None = None, *,
               worth_it: Callable[[int], bool] | None = None) -> Iterator[dict]:
        """Every item of a list, page by page; stops on a repeated page (an API ignoring `offset`).
        `worth_it(pages)`, asked after the first page with the number of pages its totalCount
        announces, may stop the listing there (StopListing)."""
        offset, seen = 0, set[object]()
        while offset <= MAX_OFFSET:
            page = self._call("GET", path, what, params={**(params or {}), "limit": self.page_size, "offset": offset})
            if isinstance(page, list):  # a bare list: no paging at all
                yield from (item for item in page if isinstance(item, dict))
                return
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise BadResponse(f"{what}: lista sem o campo 'items' (início: {clip(page, 80)!r})")
            if offset == 0 and worth_it is not None:
                total = page.get("totalCount")
                pages = -(-total // self.page_size) if isinstance(total, int) else MAX_OFFSET
                if not worth_it(pages):
                    raise StopListing(pages)
            fresh = [item for item in items if isinstance(item, dict) and item.get("id") not in seen]
            if not fresh:
                return
            seen.update(item.get("id") for item in fresh)
            yield from fresh
            offset += len(items)
            total = page.get("totalCount")
            if (isinstance(total, int) and offset >= total) or (not isinstance(total, int) and len(items) < self.page_size):
                return

    # -- services -------------------------------------------------------------------------------
    def services(self) -> list[Service]:
        what = "FieldControl: listar serviços"
        return [Service(id=_id(raw, what), name=str(raw.get("name") or ""), archived=bool(raw.get("archived")))
                for raw in self._pages("/services", what)]

    # -- customers ------------------------------------------------------------------------------
    def find_customers_by_document(self, document: str) -> list[Customer]:
        """Customers holding `document` (digits or masked), oldest first; every match re-checked here."""
        wanted = document_key(document)
        found: dict[str, Customer] = {}
        for variant in document_variants(document):
            what = "FieldControl: procurar cliente por documento"
            for raw in self._pages("/customers", what, {"q": f'document_number:"{variant}"'}):
                customer = _customer(raw, what)
                if document_key(customer.document_number) == wanted:
                    found[customer.id] = customer
            if found:
                break
        return sorted(found.values(), key=lambda c: (c.created_at or "", c.id))

    def all_customers(self, worth_it: Callable[[int], bool]) -> Iterator[Customer]:
        """Every customer of the account, 100 a page, as the pages come (none is held: an account may
        have many), when `worth_it(pages)` agrees after the first page (whose totalCount gives the
        cost); StopListing(pages) otherwise, raised when the iteration starts."""
        what = "FieldControl: listar os clientes da conta"
        return (_customer(raw, what) for raw in self._pages("/customers", what, worth_it=worth_it))

    def get_customer(self, customer_id: str) -> Customer:
        what = f"FieldControl: ler o cliente {customer_id}"
        return _customer(self._call("GET", f"/customers/{customer_id}", what), what)

    def create_customer(self, body: dict) -> Customer:
        what = "FieldControl: criar cliente"
        return _customer(self._call("POST", "/customers", what, body=body), what)

    def update_customer(self, customer_id: str, body: dict) -> Customer:
        what = f"FieldControl: atualizar o cliente {customer_id}"
        return _customer(self._call("PUT", f"/customers/{customer_id}", what, body=body), what)

    # -- sub-resources --------------------------------------------------------------------------
    def locations(self, customer_id: str) -> list[Location]:
        what = f"FieldControl: listar locais do cliente {customer_id}"
        return [_location(raw, what) for raw in self._pages(f"/customers/{customer_id}/locations", what)]

    def create_location(self, customer_id: str, body: dict) -> Location:
        what = f"FieldControl: criar local do cliente {customer_id}"
        return _location(self._call("POST", f"/customers/{customer_id}/locations", what, body=body), what)

    def update_location(self, customer_id: str, location_id: str, body: dict) -> Location:
        """PUT a location (whole body) — REST-consistent but not in the public documentation [decided]."""
        what = f"FieldControl: atualizar o local {location_id} do cliente {customer_id}"
        return _location(self._call("PUT", f"/customers/{customer_id}/locations/{location_id}", what, body=body), what)

    def phones(self, customer_id: str) -> list[Phone]:
        what = f"FieldControl: listar telefones do cliente {customer_id}"
        return [_phone(raw, what) for raw in self._pages(f"/customers/{customer_id}/phones", what)]

    def create_phone(self, customer_id: str, body: dict) -> Phone:
        what = f"FieldControl: criar telefone do cliente {customer_id}"
        return _phone(self._call("POST", f"/customers/{customer_id}/phones", what, body=body), what)

    def emails(self, customer_id: str) -> list[Email]:
        what = f"FieldControl: listar e-mails do cliente {customer_id}"
        return [Email(id=_id(raw, what), address=raw.get("address"))
                for raw in self._pages(f"/customers/{customer_id}/emails", what)]

    def create_email(self, customer_id: str, body: dict) -> Email:
        what = f"FieldControl: criar e-mail do cliente {customer_id}"
        raw = self._call("POST", f"/customers/{customer_id}/emails", what, body=body)
        return Email(id=_id(raw, what), address=raw.get("address"))

    # -- tickets --------------------------------------------------------------------------------
    def find_tickets(self, name: str, external_id: str) -> list[Ticket]:
        """Tickets named like `name` carrying `external_id` (the API cannot filter by external id)."""
        what = "FieldControl: procurar OS por nome"
        value = q_value(name)
        params = {"q": f'name:"{value}"'} if value else None
        tickets = (_ticket(raw, what) for raw in self._pages("/tickets", what, params))
        return [ticket for ticket in tickets if ticket.external_id == external_id]

    def create_ticket(self, body: dict) -> Ticket:
        what = "FieldControl: criar OS"
        return _ticket(self._call("POST", "/tickets", what, body=body), what)

    def get_ticket(self, ticket_id: str) -> Ticket:
        what = f"FieldControl: ler a OS {ticket_id}"
        return _ticket(self._call("GET", f"/tickets/{ticket_id}", what), what)

    def update_ticket(self, ticket_id: str, body: dict) -> Ticket:
        """PUT the whole body; a ticket already turned into an order is refused (RemoteRejected)."""
        what = f"FieldControl: atualizar a OS {ticket_id}"
        return _ticket(self._call("PUT", f"/tickets/{ticket_id}", what, body=body), what)

    # -- orders and tasks (read only) ------------------------------------------------------------
    def orders(self, *, ticket_id: str | None = None, updated_since: datetime | None = None) -> list[Order]:
        """Orders made from `ticket_id`, or changed at or after `updated_since`, oldest change first.

        Each match is re-checked here: an API that ignores the filter costs more calls, never a
        wrong answer. Sorted by `updatedAt` so that an order changed while paging moves to the end.
        """
        what = "FieldControl: listar ordens de serviço"
        terms = []
        if ticket_id is not None:
            terms.append(f'ticket_id:"{ticket_id}"')
        if updated_since is not None:
            terms.append(f'updated_at>=:"{iso_time(updated_since)}"')
        params = {"sort": "updated_at", **({"q": " ".join(terms)} if terms else {})}
        found = []
        for raw in self._pages("/orders", what, params):
            order = _order(raw, what)
            if ticket_id is not None and order.ticket_id != ticket_id:
                continue
            if updated_since is not None and order.updated_at is not None and order.updated_at < updated_since:
                continue
            found.append(order)
        return sorted(found, key=lambda o: (o.updated_at or datetime.min, o.id))

    def order_tasks(self, order_id: str) -> list[Task]:
        what = f"FieldControl: listar atividades da ordem {order_id}"
        tasks = [_task(raw, what) for raw in self._pages(f"/orders/{order_id}/tasks", what)]
        return [task for task in tasks if task.order_id in (None, order_id)]
