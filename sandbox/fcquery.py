"""FieldControl list queries: `limit`/`offset` bounds (422), `sort`, and the `q` filter language
(`key:"value"`, `created_at>=:"…"`); unsupported keys and unknown parameters are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol

MAX_LIMIT, DEFAULT_LIMIT, MAX_OFFSET = 100, 10, 200_000

FILTER_KEYS = {
    "customers": {"name", "archived", "document_number", "code", "created_at"},
    "tickets": {"name", "identifier", "archived"},
    "services": {"name", "archived"},
    "orders": {"identifier", "customer_id", "external_id", "ticket_id", "service_id", "created_at",
               "updated_at"},
}
TIME_KEYS = {"created_at", "updated_at"}
_TERM = re.compile(r'(?P<key>[A-Za-z_][\w.]*)(?P<op>>=|<=|>|<)?:(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')


class QueryError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field, self.message = field, message


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(name, "must be an integer") from None
    if not low <= value <= high:
        raise QueryError(name, f"must be between {low} and {high}")
    return value


def parse_terms(q: str) -> list[tuple[str, str, str]]:
    """[(key, op, value)] from `name:"Maria" created_at>=:"2025-01-01T00:00:00Z"`."""
    terms = []
    for match in _TERM.finditer(q or ""):
        value = match.group("quoted")
        value = re.sub(r"\\(.)", r"\1", value) if value is not None else match.group("bare")
        terms.append((match.group("key"), match.group("op") or "", value))
    return terms


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _term_matches(item: dict, key: str, op: str, value: str) -> bool | None:
    """True/False, or None when the term cannot apply (ignored like an unknown key)."""
    if key == "name":
        return value.casefold() in str(item.get("name") or "").casefold()
    if key == "archived":
        if value.lower() not in ("true", "false"):
            return None
        return bool(item.get("archived", False)) == (value.lower() == "true")
    if key in TIME_KEYS:
        wanted, actual = _parse_time(value), _parse_time(item.get(camel(key)))
        if wanted is None:
            return None
        if actual is None:
            return False
        return {"": actual == wanted, ">=": actual >= wanted, "<=": actual <= wanted,
                ">": actual > wanted, "<": actual < wanted}[op]
    text = key_value(item, key)
    return text is not None and text == value


def key_value(item: dict, key: str) -> str | None:
    """What an equality term `key:"value"` compares (ticket_id → ticket.id, document_number →
    documentNumber), as text; None when the item has none. Also the key of the store's indexes."""
    if key.endswith("_id") and isinstance(item.get(camel(key[:-3])), dict):
        actual = item[camel(key[:-3])].get("id")
    else:
        actual = item.get(camel(key))
    return None if actual is None else str(actual)


class Source(Protocol):
    """The items a list route answers from, in creation order (fcstore.Collection, Items)."""

    def __len__(self) -> int: ...
    def slice(self, start: int, stop: int) -> list[dict]: ...
    def scan(self) -> Iterable[dict]: ...
    def lookup(self, key: str, value: str) -> list[dict] | None: ...  # None: `key` is not indexed


class Items:
    """A Source over a list already narrowed (a customer's phones, an order's tasks)."""

    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def slice(self, start: int, stop: int) -> list[dict]:
        return self.items[start:stop]

    def scan(self) -> Iterable[dict]:
        return self.items

    def lookup(self, key: str, value: str) -> list[dict] | None:
        return None


def select(source: Source, query: dict[str, str], resource: str) -> dict:
    """The list envelope {"items", "totalCount"} for `source` under `query`; raises QueryError.

    A page costs O(limit) without filters, O(matches) with an equality filter the source indexes:
    a full scan per request made every look-up O(account) (50,000 customers in the bench)."""
    limit = _int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(query, "offset", 0, 0, MAX_OFFSET)
    supported = FILTER_KEYS.get(resource, set())
    terms = [t for t in parse_terms(query.get("q", "")) if t[0] in supported]
    sort = (query.get("sort") or "").strip()
    if not terms and not sort:
        return {"items": source.slice(offset, offset + limit), "totalCount": len(source)}
    pool = next((found for key, op, value in terms if not op
                 and (found := source.lookup(key, value)) is not None), None)
    selected = []
    for item in source.scan() if pool is None else pool:
        verdicts = [_term_matches(item, *term) for term in terms]
        if all(v is not False for v in verdicts):
            selected.append(item)
    if sort:
        descending = sort.startswith("-")
        field = camel(sort.lstrip("-+"))
        if any(field in item for item in selected):
            timed = field.endswith("At")  # compare moments, not spellings (with or without ms)
            selected.sort(key=lambda item: (item.get(field) is None,
                                            _sort_key(_parse_time(item.get(field)) if timed else item.get(field))),
                          reverse=descending)
    return {"items": selected[offset: offset + limit], "totalCount": len(selected)}


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return (1, value.casefold())
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (2, str(value))
