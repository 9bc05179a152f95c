"""What the simulated FieldControl account stores: services, customers, locations, phones,
e-mails, tickets, and the orders and tasks staff make of tickets, with opaque base64 ids.
No validation of API bodies here (see fieldcontrol.py).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import random
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from . import documents as docs
from .fcquery import key_value
from .places import CITIES, address_point, find_city

ACCOUNT_ID = "1"
COLLECTIONS = ("services", "customers", "locations", "phones", "emails", "tickets", "orders", "tasks")
TASK_STATUSES = ("scheduled", "pending", "on-route", "in-progress", "done", "reported", "canceled")
CONVERTED = "converted"  # [decided] the ticket status once staff turned it into an order
SERVICES = [
    ("Instalação", 480, False), ("Aumento de Sistema", 240, False), ("Cancelamento", 60, False),
    ("Manutenção Preventiva (antigo)", 120, True),
]
FIRST_TICKET_NUMBER = 4140
FIRST_ORDER_NUMBER = 2100
# What the API looks up by key, indexed so that a request costs O(matches) at 50,000 customers: the
# `q` equality filters the integration sends, a customer's sub-resources and an order's tasks.
INDEXES = {"customers": ("document_number",), "locations": ("customer_id",), "phones": ("customer_id",),
           "emails": ("customer_id",), "orders": ("ticket_id",), "tasks": ("order_id",)}


def now_iso() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def iso_ms(text: str | None) -> str:
    """`text` (ISO-8601, default now) in the stored form `…T12:00:00.000Z`, so that stored times
    sort as strings; raises ValueError on anything else."""
    if text is None:
        return now_iso()
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def opaque_id(internal: str) -> str:
    return base64.b64encode(f"{internal}:{ACCOUNT_ID}".encode()).decode()


class Collection:
    """One collection as a list source (fcquery.Source): pages by position, look-ups by index."""

    def __init__(self, store: FCStore, name: str) -> None:
        self.store, self.name = store, name

    def __len__(self) -> int:
        return len(self.store.order[self.name])

    def slice(self, start: int, stop: int) -> list[dict]:
        objects = self.store.data[self.name]
        return [objects[obj_id] for obj_id in self.store.order[self.name][start:stop]]

    def scan(self) -> Iterable[dict]:
        return self.store.data[self.name].values()

    def lookup(self, key: str, value: str) -> list[dict] | None:
        if key not in INDEXES.get(self.name, ()):
            return None
        return self.store.lookup(self.name, key, value)


class FCStore:
    """Plain dicts keyed by id, in creation order, plus the creation order as a list (pages by
    offset) and the INDEXES; every change goes through this class. Callers hold the sandbox lock."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.next_id = 1
        self.next_ticket = FIRST_TICKET_NUMBER
        self.next_order = FIRST_ORDER_NUMBER
        self.data: dict[str, dict[str, dict]] = {name: {} for name in COLLECTIONS}
        self._rebuild()
        for name, duration, archived in SERVICES:
            sid = self._new_id()
            self._put("services", {"id": sid, "name": name, "duration": duration,
                                   "archived": archived, "createdAt": "2023-02-01T12:00:00Z"})

    # -- order and indexes -----------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.order: dict[str, list[str]] = {name: [] for name in COLLECTIONS}
        self.seq: dict[str, int] = {}  # id → creation rank (index hits come back in creation order)
        self.index: dict[tuple[str, str], dict[str, dict[str, None]]] = {
            (name, key): {} for name, keys in INDEXES.items() for key in keys}
        for name in COLLECTIONS:
            for obj in self.data[name].values():
                self._enter(name, obj)

    def _keys(self, collection: str, obj: dict) -> list[tuple[str, str]]:
        return [(key, value) for key in INDEXES.get(collection, ())
                if (value := key_value(obj, key)) is not None]

    def _enter(self, collection: str, obj: dict) -> None:
        self.order[collection].append(obj["id"])
        self.seq[obj["id"]] = len(self.seq)
        self._index(collection, obj, self._keys(collection, obj))

    def _index(self, collection: str, obj: dict, keys: list[tuple[str, str]], *, remove: bool = False) -> None:
        for key, value in keys:
            ids = self.index[(collection, key)].setdefault(value, {})
            if remove:
                ids.pop(obj["id"], None)
            else:
                ids[obj["id"]] = None

    def _put(self, collection: str, obj: dict) -> dict:
        self.data[collection][obj["id"]] = obj
        self._enter(collection, obj)
        return obj

    def _change(self, collection: str, obj: dict, fields: dict) -> dict:
        """`obj.update(fields)`, keeping the indexes right."""
        before = self._keys(collection, obj)
        obj.update(fields)
        after = self._keys(collection, obj)
        if before != after:
            self._index(collection, obj, before, remove=True)
            self._index(collection, obj, after)
        return obj

    def lookup(self, collection: str, key: str, value: str) -> list[dict]:
        """The objects of `collection` whose `key` (an INDEXES key) is `value`, in creation order."""
        objects = self.data[collection]
        ids = sorted(self.index[(collection, key)].get(value, ()), key=self.seq.__getitem__)
        return [objects[obj_id] for obj_id in ids]

    def source(self, collection: str) -> Collection:
        return Collection(self, collection)

    # -- persistence ---------------------------------------------------------------------------
    def dump(self) -> dict:
        return {"next_id": self.next_id, "next_ticket": self.next_ticket, "next_order": self.next_order,
                **self.data}

    @classmethod
    def load(cls, seed: int, raw: dict) -> FCStore:
        store = cls(seed)
        store.next_id, store.next_ticket = raw["next_id"], raw["next_ticket"]
        store.next_order = raw.get("next_order", FIRST_ORDER_NUMBER)  # files from before orders
        store.data = {name: dict(raw.get(name, {})) for name in COLLECTIONS}
        store._rebuild()
        return store

    # -- ids -------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        value = opaque_id(str(self.next_id))
        self.next_id += 1
        return value

    def _new_ticket_id(self) -> tuple[str, str]:
        number = self.next_ticket
        self.next_ticket += 1
        return self._uuid_id("ticket", number), f"{ACCOUNT_ID}#{number:08d}"

    def _new_order_id(self) -> tuple[str, str]:
        number = self.next_order
        self.next_order += 1
        return self._uuid_id("order", number), f"{ACCOUNT_ID}#{number:08d}"

    def _uuid_id(self, kind: str, number: int) -> str:
        digest = hashlib.sha256(f"{self.seed}:{kind}:{number}".encode()).digest()
        return opaque_id(str(uuid.UUID(bytes=digest[:16], version=4)))

    def service_ids(self) -> dict[str, str]:
        return {s["name"]: sid for sid, s in self.data["services"].items()}

    def get(self, collection: str, obj_id: str) -> dict | None:
        return self.data[collection].get(obj_id)

    def all(self, collection: str) -> list[dict]:
        """A copy of every object of `collection` (for callers outside the state lock)."""
        return copy.deepcopy(list(self.data[collection].values()))

    # -- writes ----------------------------------------------------------------------------------
    def create_customer(self, body: dict, created_at: str | None = None) -> dict:
        cid = self._new_id()
        customer = {"id": cid, "name": body.get("name"), "code": body.get("code"),
                    "documentNumber": body.get("documentNumber"),
                    "external": {"id": (body.get("external") or {}).get("id")},
                    "primaryLocation": None, "archived": bool(body.get("archived", False)),
                    "createdAt": created_at or now_iso(), "address": None,
                    "contact": contact_of(body.get("contact"))}
        self._put("customers", customer)
        if body.get("address") is not None:
            self._set_customer_address(customer, body["address"], created_at)
        return customer

    def update_customer(self, cid: str, body: dict) -> dict:
        customer = self._change("customers", self.data["customers"][cid], {
            "name": body.get("name"), "code": body.get("code"), "documentNumber": body.get("documentNumber"),
            "external": {"id": (body.get("external") or {}).get("id")}})
        if "archived" in body:
            customer["archived"] = bool(body["archived"])
        if body.get("contact") is not None:  # [decided] a PUT without `contact` keeps it
            customer["contact"] = contact_of(body["contact"])
        if body.get("address") is not None:
            self._set_customer_address(customer, body["address"], None)
        return customer

    def _set_customer_address(self, customer: dict, address: dict, created_at: str | None) -> None:
        customer["address"] = normalize_address(address)
        primary = customer.get("primaryLocation") or {}
        location = self.data["locations"].get(primary.get("id", ""))
        if location is None:
            location = self.create_location(customer["id"], {"name": location_name(address),
                                                             "address": address}, created_at)
            customer["primaryLocation"] = {"id": location["id"]}
        else:
            location["address"] = normalize_address(address)

    def create_location(self, cid: str, body: dict, created_at: str | None = None) -> dict:
        lid = self._new_id()
        location = {"id": lid, "name": body.get("name") or location_name(body["address"]),
                    "customer": {"id": cid}, "address": normalize_address(body["address"]),
                    "archived": False, "createdAt": created_at or now_iso()}
        return self._put("locations", location)

    def update_location(self, lid: str, body: dict) -> dict:
        location = self.data["locations"][lid]
        location["name"] = body.get("name") or location_name(body["address"])
        location["address"] = normalize_address(body["address"])
        return location

    def create_phone(self, cid: str, body: dict) -> dict:
        pid = self._new_id()
        phone = {"id": pid, "number": body.get("number"), "type": body.get("type"),
                 "primary": bool(body.get("primary", False)), "customer": {"id": cid},
                 "createdAt": now_iso()}
        return self._put("phones", phone)

    def create_email(self, cid: str, body: dict) -> dict:
        eid = self._new_id()
        email = {"id": eid, "address": body.get("address"), "type": body.get("type"),
                 "customer": {"id": cid}, "createdAt": now_iso()}
        return self._put("emails", email)

    def create_ticket(self, body: dict, created_at: str | None = None) -> dict:
        tid, identifier = self._new_ticket_id()
        ticket = {"id": tid, "identifier": identifier, "status": "pending",
                  "createdAt": created_at or now_iso(), **_ticket_fields(body), "cancelation": None}
        return self._put("tickets", ticket)

    def update_ticket(self, tid: str, body: dict) -> dict:
        """PUT: the create body's fields replace the stored ones; id, identifier, status stay."""
        ticket = self.data["tickets"][tid]
        ticket.update(_ticket_fields(body))
        return ticket

    # -- what FieldControl staff and technicians do (the sandbox's control, not the API) ----------
    def convert_ticket(self, tid: str, tasks: int, status: str, scheduling: dict | None, at: str,
                       employee_id: str | None) -> dict:
        """Turn a ticket into an order with `tasks` tasks; the ticket stops being `pending`."""
        ticket = self.data["tickets"][tid]
        oid, identifier = self._new_order_id()
        order = {"id": oid, "identifier": identifier, "archived": False,
                 "description": ticket.get("message"), "createdAt": at, "updatedAt": at,
                 "external": {"id": (ticket.get("external") or {}).get("id")},
                 "customer": ticket.get("customer"), "service": ticket.get("service"),
                 "location": ticket.get("location"), "ticket": {"id": tid}}
        self._put("orders", order)
        ticket["status"] = CONVERTED
        scheduling = scheduling or {"date": at[:10], "time": "08:00"}
        for _ in range(tasks):
            task_id = self._new_id()
            self._put("tasks", {
                "id": task_id, "status": status, "statusDescription": None,
                "scheduling": dict(scheduling), "startedAt": None, "completedAt": None, "updatedAt": at,
                "employee": {"id": employee_id or opaque_id("tecnico-1")}, "order": {"id": oid},
                "archived": False})
        return order

    def move_task(self, task_id: str, status: str, at: str, description: str | None) -> dict:
        """A technician's step: the task's status and dates, and the order's updatedAt."""
        task = self.data["tasks"][task_id]
        task.update(status=status, statusDescription=description, updatedAt=at)
        if status in ("in-progress", "done") and not task.get("startedAt"):
            task["startedAt"] = at
        if status == "done":
            task["completedAt"] = at
        elif status != "done" and task.get("completedAt"):
            task["completedAt"] = None  # reopened
        order = self.data["orders"].get(task["order"]["id"])
        if order is not None:
            order["updatedAt"] = max(order["updatedAt"], at)
        return task

    def tasks_of(self, order_id: str) -> list[dict]:
        return self.lookup("tasks", "order_id", order_id)

    # -- what a person does by hand --------------------------------------------------------------
    def edit(self, collection: str, obj_id: str, fields: dict) -> dict:
        """`fields` replace the stored ones as given (no validation, no side effects)."""
        return self._change(collection, self.data[collection][obj_id], fields)

    def delete(self, collection: str, obj_id: str) -> None:
        """Only that object (its sub-objects stay); O(collection), a hand action."""
        obj = self.data[collection].pop(obj_id)
        self.order[collection].remove(obj_id)
        self._index(collection, obj, self._keys(collection, obj), remove=True)


def contact_of(value: Any) -> dict:
    value = value if isinstance(value, dict) else {}
    return {"email": value.get("email"), "phone": value.get("phone")}


def _ticket_fields(body: dict) -> dict:
    """The fields a ticket's POST or PUT body sets."""
    def ref(key: str) -> dict | None:
        value = body.get(key)
        return {"id": value.get("id")} if isinstance(value, dict) else None

    return {"name": body.get("name"), "subject": body.get("subject"), "message": body.get("message"),
            "customer": ref("customer"), "service": ref("service"), "location": ref("location"),
            "external": {"id": (body.get("external") or {}).get("id")}}


def normalize_address(address: dict) -> dict:
    """Stored address: `postalCode` is accepted as an alias and kept as `zipCode`."""
    stored = {k: v for k, v in address.items() if k != "postalCode"}
    if "zipCode" not in stored and "postalCode" in address:
        stored["zipCode"] = address["postalCode"]
    coords = address.get("coords") or {}
    stored["coords"] = {"latitude": coords.get("latitude"), "longitude": coords.get("longitude")}
    return stored


def location_name(address: dict) -> str:
    street, number = address.get("street") or "", address.get("number") or ""
    return ", ".join(p for p in (street, number) if p) or "Endereço principal"


def seed_manual_customers(store: FCStore, rng: random.Random, projects: list[dict], hoje: date) -> None:
    """Customers typed in FieldControl by hand before the integration existed.

    Some share a document number with an iSales client: most digits-only, one with its mask
    (FieldControl stores what was typed), so a search by digits does not find that one.
    """
    def documented(p: dict) -> bool:
        return len("".join(c for c in (p["cliente"].get("cpf") or "") if c.isalnum())) in (11, 14)

    candidates = [p for p in projects if documented(p)]
    n = len(projects)
    count = max(2, round(0.03 * n)) if n >= 20 else (1 if n >= 5 else 0)
    chosen = rng.sample(candidates, min(count, len(candidates)))
    for i, project in enumerate(chosen):
        cliente = project["cliente"]
        digits = "".join(c for c in cliente["cpf"] if c.isalnum()).upper()
        masked = docs.mask_cpf(digits) if len(digits) == 11 else docs.mask_cnpj(digits)
        city = find_city(cliente["cidade"]) or CITIES[0]
        address = manual_address(city, cliente.get("logradouro"), cliente.get("numero"), cliente.get("cep"))
        created = _past(hoje, rng)
        store.create_customer({"name": cliente["nome"].title() if i % 2 else cliente["nome"],
                               "documentNumber": masked if i == 1 else digits,
                               "code": f"MAN-{rng.randint(100, 999)}", "address": address}, created)
    strangers = [("Maria Silva Santos", None), ("Condomínio Solar Verde", docs.make_cnpj(rng)),
                 ("Cliente Balcão (não usar)", "")]
    for name, doc in strangers:
        city = rng.choice(CITIES)
        customer = store.create_customer({"name": name, "documentNumber": doc,
                                          "address": manual_address(city, "Rua Tiradentes", "10", None)},
                                         _past(hoje, rng))
        store.create_ticket({"name": name, "subject": f"Visita técnica: {name}", "message": "Aberto à mão",
                             "customer": {"id": customer["id"]},
                             "location": customer["primaryLocation"],
                             "service": {"id": store.service_ids()["Manutenção Preventiva (antigo)"]}},
                            _past(hoje, rng))


def manual_address(city: Any, street: str | None, number: str | None, cep: str | None) -> dict:
    lat, lng = address_point(city, street, number)
    digits = "".join(c for c in cep or "" if c.isdigit())
    return {"zipCode": digits if len(digits) == 8 else str(city.cep_lo).zfill(8),
            "street": street or "", "number": number or "", "neighborhood": "", "complement": None,
            "city": city.name, "state": city.uf, "coords": {"latitude": lat, "longitude": lng}}


def _past(hoje: date, rng: random.Random) -> str:
    moment = datetime(hoje.year, hoje.month, hoje.day, 12, tzinfo=timezone.utc)
    moment -= timedelta(days=rng.randint(400, 900), minutes=rng.randint(0, 600))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
