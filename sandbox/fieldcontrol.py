"""FieldControl simulator (docs/api/fieldcontrol.md): X-Api-Key, 1 request/s per key with real
429s, list envelopes with strict limit/offset, 422 validation, and no idempotency at all.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from .fcquery import Items, QueryError, Source, select
from .fcstore import CONVERTED, FCStore
from .limits import SpacingLimiter
from .state import State
from .web import BadJsonError, Request, Response, Route, Router, Settings, json_response, text_response

_ADDRESS_STRINGS = ("zipCode", "postalCode", "street", "number", "neighborhood", "complement", "city",
                    "state")


class ValidationError(Exception):
    def __init__(self, errors: list[dict]) -> None:
        super().__init__(errors)
        self.errors = errors


def _err(field: str, message: str) -> dict:
    return {"field": field, "message": message}


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _string(errors: list[dict], body: dict, key: str, field: str, *, required: bool = False) -> None:
    value = body.get(key)
    if value is None or (required and isinstance(value, str) and not value.strip()):
        if required:
            errors.append(_err(field, "is required"))
    elif not isinstance(value, str):
        errors.append(_err(field, "must be a string"))


def _ref(errors: list[dict], body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        errors.append(_err(f"{key}.id", "is required"))
        return None
    return value["id"]


def validate_address(errors: list[dict], address: Any, field: str = "address") -> None:
    if address is None:
        errors.append(_err(field, "is required"))
        return
    if not isinstance(address, dict):
        errors.append(_err(field, "must be an object"))
        return
    for key in _ADDRESS_STRINGS:
        _string(errors, address, key, f"{field}.{key}")
    state = address.get("state")
    if isinstance(state, str) and not (len(state) == 2 and state.isalpha() and state.isupper()):
        errors.append(_err(f"{field}.state", "must be a two-letter state code (UF)"))
    coords = address.get("coords")
    if coords is None:
        errors.append(_err(f"{field}.coords", "is required"))
        return
    if not isinstance(coords, dict):
        errors.append(_err(f"{field}.coords", "must be an object"))
        return
    for key, bound in (("latitude", 90), ("longitude", 180)):
        value = coords.get(key)
        if value is None:
            errors.append(_err(f"{field}.coords.{key}", "is required"))
        elif not _is_number(value):
            errors.append(_err(f"{field}.coords.{key}", "must be a number"))
        elif not -bound <= value <= bound:
            errors.append(_err(f"{field}.coords.{key}", f"must be between -{bound} and {bound}"))


def validate_customer(body: dict) -> None:
    errors: list[dict] = []
    _string(errors, body, "name", "name", required=True)
    _string(errors, body, "code", "code")
    _string(errors, body, "documentNumber", "documentNumber")
    external = body.get("external")
    if external is not None and not isinstance(external, dict):
        errors.append(_err("external", "must be an object"))
    elif isinstance(external, dict):
        _string(errors, external, "id", "external.id")
    contact = body.get("contact")
    if contact is not None and not isinstance(contact, dict):
        errors.append(_err("contact", "must be an object"))
    elif isinstance(contact, dict):
        _string(errors, contact, "email", "contact.email")
        _string(errors, contact, "phone", "contact.phone")
    validate_address(errors, body.get("address"))
    if errors:
        raise ValidationError(errors)


class FieldControl:
    name = "fieldcontrol"
    prefixes: tuple[str, ...] = ("/fieldcontrol",)

    def __init__(self, state: State, settings: Settings) -> None:
        self.state, self.settings = state, settings
        self.limiter = SpacingLimiter(lambda: self.settings.fc_rps)
        r = self._route
        self.router = Router([
            r("GET", "/services", self.list_services),
            r("POST", "/customers", self.create_customer), r("GET", "/customers", self.list_customers),
            r("GET", "/customers/{id}", self.get_customer), r("PUT", "/customers/{id}", self.put_customer),
            r("POST", "/customers/{id}/locations", self.create_location),
            r("GET", "/customers/{id}/locations", self.list_sub("locations")),
            # [decided] not in the contract; REST-consistent, same body as the POST
            r("PUT", "/customers/{id}/locations/{locationId}", self.put_location),
            r("POST", "/customers/{id}/phones", self.create_phone),
            r("GET", "/customers/{id}/phones", self.list_sub("phones")),
            r("POST", "/customers/{id}/emails", self.create_email),
            r("GET", "/customers/{id}/emails", self.list_sub("emails")),
            r("POST", "/tickets", self.create_ticket), r("GET", "/tickets", self.list_tickets),
            r("GET", "/tickets/{id}", self.get_ticket), r("PUT", "/tickets/{id}", self.put_ticket),
            r("GET", "/orders", self.list_orders),
            r("GET", "/orders/{id}", self.get_order),  # [decided] REST-consistent, not in the contract
            r("GET", "/orders/{id}/tasks", self.list_tasks),
        ])

    @property
    def store(self) -> FCStore:
        return self.state.fc  # a reset replaces the store

    def _route(self, method: str, template: str, handler: Any) -> Route:
        return Route(self.name, method, "/fieldcontrol", template, handler)

    # -- middleware ------------------------------------------------------------------------------
    def guard(self, req: Request) -> Response | None:
        key = req.header("X-Api-Key")
        if not key:
            return json_response(401, {"message": "Missing API key (X-Api-Key header)"})
        if key != self.settings.chave:
            return json_response(401, {"message": "ValidationError API key"})
        wait = self.limiter.check(key)
        if wait is not None:
            headers = [("Retry-After", str(max(1, math.ceil(wait))))] if self.settings.fc_retry_after else []
            return json_response(429, {"message": "Too many requests, please slow down"}, headers=headers)
        return None

    def not_found(self, req: Request, other_method: bool) -> Response:
        return json_response(404, {"type": "resourceNotFoundErr", "message": f"Cannot {req.method} {req.path}"})

    def error_response(self, req: Request, status: int) -> Response:
        if status >= 500:
            return text_response(status, {502: "Bad Gateway", 503: "Service Unavailable",
                                          504: "Gateway timeout"}.get(status, "Internal Server Error"))
        if status == 429:
            return json_response(429, {"message": "Too many requests, please slow down"})
        return json_response(status, {"message": f"Request failed with status {status}"})

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _invalid(errors: list[dict]) -> Response:
        first = errors[0]
        return json_response(422, {"type": "resourceValidationErr",
                                   "message": f"{first['field']} {first['message']}", "errors": errors})

    @staticmethod
    def _not_found(what: str) -> Response:
        return json_response(404, {"type": "resourceNotFoundErr", "message": f"{what} not found"})

    def _body(self, req: Request) -> dict:
        try:
            body = req.json()
        except BadJsonError:
            raise ValidationError([_err("body", "must be valid JSON")]) from None
        if not isinstance(body, dict):
            raise ValidationError([_err("body", "must be an object")])
        return body

    def _list(self, req: Request, source: Source, resource: str) -> Response:
        try:
            return json_response(200, select(source, req.query, resource))
        except QueryError as exc:
            return self._invalid([_err(exc.field, exc.message)])

    def _write(self, req: Request, action: Any, status: int) -> Response:
        """Validate and store under the state lock; persist; answer the stored object."""
        try:
            body = self._body(req)
            with self.state.lock:
                result = action(body)
                if isinstance(result, Response):
                    return result
                self.state.save()
                return json_response(status, result)
        except ValidationError as exc:
            return self._invalid(exc.errors)

    # -- services and customers --------------------------------------------------------------------
    def list_services(self, req: Request) -> Response:
        with self.state.lock:
            return self._list(req, self.store.source("services"), "services")

    def list_customers(self, req: Request) -> Response:
        with self.state.lock:
            return self._list(req, self.store.source("customers"), "customers")

    def get_customer(self, req: Request) -> Response:
        with self.state.lock:
            customer = self.store.get("customers", req.params["id"])
            return json_response(200, customer) if customer else self._not_found("Customer")

    def create_customer(self, req: Request) -> Response:
        def action(body: dict) -> Any:
            validate_customer(body)
            return self.store.create_customer(body)
        return self._write(req, action, 201)

    def put_customer(self, req: Request) -> Response:
        def action(body: dict) -> Any:
            if self.store.get("customers", req.params["id"]) is None:
                return self._not_found("Customer")
            validate_customer(body)
            return self.store.update_customer(req.params["id"], body)
        return self._write(req, action, 200)

    # -- sub-resources -----------------------------------------------------------------------------
    def list_sub(self, collection: str) -> Any:
        def handler(req: Request) -> Response:
            with self.state.lock:
                cid = req.params["id"]
                if self.store.get("customers", cid) is None:
                    return self._not_found("Customer")
                return self._list(req, Items(self.store.lookup(collection, "customer_id", cid)), collection)
        return handler

    def _location_body(self, cid: str, body: dict) -> None:
        errors: list[dict] = []
        _string(errors, body, "name", "name")
        ref = _ref(errors, body, "customer")
        if ref is not None and ref != cid:
            errors.append(_err("customer.id", "must be the customer of the URL"))
        validate_address(errors, body.get("address"))
        if errors:
            raise ValidationError(errors)

    def create_location(self, req: Request) -> Response:
        cid = req.params["id"]

        def action(body: dict) -> Any:
            if self.store.get("customers", cid) is None:
                return self._not_found("Customer")
            self._location_body(cid, body)
            return self.store.create_location(cid, body)
        return self._write(req, action, 201)

    def put_location(self, req: Request) -> Response:
        cid, lid = req.params["id"], req.params["locationId"]

        def action(body: dict) -> Any:
            location = self.store.get("locations", lid)
            if self.store.get("customers", cid) is None or location is None \
                    or location["customer"]["id"] != cid:
                return self._not_found("Location")
            self._location_body(cid, body)
            return self.store.update_location(lid, body)
        return self._write(req, action, 200)

    def create_phone(self, req: Request) -> Response:
        cid = req.params["id"]

        def action(body: dict) -> Any:
            if self.store.get("customers", cid) is None:
                return self._not_found("Customer")
            errors: list[dict] = []
            _string(errors, body, "number", "number", required=True)
            _string(errors, body, "type", "type")
            if "primary" in body and not isinstance(body["primary"], bool):
                errors.append(_err("primary", "must be a boolean"))
            if errors:
                raise ValidationError(errors)
            return self.store.create_phone(cid, body)
        return self._write(req, action, 201)

    def create_email(self, req: Request) -> Response:
        cid = req.params["id"]

        def action(body: dict) -> Any:
            if self.store.get("customers", cid) is None:
                return self._not_found("Customer")
            errors: list[dict] = []
            _string(errors, body, "address", "address", required=True)
            _string(errors, body, "type", "type")
            if errors:
                raise ValidationError(errors)
            return self.store.create_email(cid, body)
        return self._write(req, action, 201)

    # -- tickets -----------------------------------------------------------------------------------
    def list_tickets(self, req: Request) -> Response:
        with self.state.lock:
            return self._list(req, self.store.source("tickets"), "tickets")

    def get_ticket(self, req: Request) -> Response:
        with self.state.lock:
            ticket = self.store.get("tickets", req.params["id"])
            return json_response(200, ticket) if ticket else self._not_found("Ticket")

    def _validate_ticket(self, body: dict) -> None:
        errors: list[dict] = []
        _string(errors, body, "name", "name", required=True)
        _string(errors, body, "subject", "subject", required=True)
        _string(errors, body, "message", "message")
        customer, service = _ref(errors, body, "customer"), _ref(errors, body, "service")
        location = _ref(errors, body, "location")
        if customer and self.store.get("customers", customer) is None:
            errors.append(_err("customer.id", "not found"))
        if service and self.store.get("services", service) is None:
            errors.append(_err("service.id", "not found"))
        if location:
            stored = self.store.get("locations", location)
            if stored is None:
                errors.append(_err("location.id", "not found"))
            elif customer and stored["customer"]["id"] != customer:
                errors.append(_err("location.id", "does not belong to the customer"))
        if errors:
            raise ValidationError(errors)

    def create_ticket(self, req: Request) -> Response:
        def action(body: dict) -> Any:
            self._validate_ticket(body)
            return self.store.create_ticket(body)
        return self._write(req, action, 201)

    def put_ticket(self, req: Request) -> Response:
        tid = req.params["id"]

        def action(body: dict) -> Any:
            ticket = self.store.get("tickets", tid)
            if ticket is None:
                return self._not_found("Ticket")
            if ticket.get("status") != "pending":  # converted into an order, or anything else
                message = ("ticket já convertido em ordem de serviço" if ticket.get("status") == CONVERTED
                           else f"ticket com status {ticket.get('status')!r} não pode ser alterado")
                return json_response(422, {"type": "resourceValidationErr", "message": message,
                                           "errors": [_err("status", message)]})
            self._validate_ticket(body)
            return self.store.update_ticket(tid, body)
        return self._write(req, action, 200)

    # -- orders and tasks (made by FieldControl staff; read-only in the API) ------------------------
    def list_orders(self, req: Request) -> Response:
        with self.state.lock:
            return self._list(req, self.store.source("orders"), "orders")

    def get_order(self, req: Request) -> Response:
        with self.state.lock:
            order = self.store.get("orders", req.params["id"])
            return json_response(200, order) if order else self._not_found("Order")

    def list_tasks(self, req: Request) -> Response:
        with self.state.lock:
            if self.store.get("orders", req.params["id"]) is None:
                return self._not_found("Order")
            return self._list(req, Items(self.store.tasks_of(req.params["id"])), "tasks")
