"""iSales client (docs/api/isales.md): the funnel listing, plain or paginated, and the three detail
routes of one client, as typed results with the raw objects untouched. No business rules here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import ijson
import requests

from lib.config import FetchSettings
from lib.errors import AuthError, BadResponse, ConfigError, RecordError
from lib.http import json_body, make_session
from lib.logs import clip, register_secret

log = logging.getLogger(__name__)

MAX_PAGES = 1000  # 100 000 cards at the simulator's page size: beyond that the server is looping
PAGINATOR_KEYS = ("current_page", "last_page", "next_page_url")
CARD_ARRAYS = ("", "funil_clientes", "data", "funil_clientes.data")  # where a listing's cards may be
TOKEN_HINT = "confira ISALES_API_TOKEN (e ISALES_API_URL)"


class Card:
    """One card of the funnel: the client it belongs to, its column and the listing row.

    The row is kept as compact JSON text (a fraction of the dict's memory) and parsed again when a
    step writes it; `without_row()` drops it for the cards whose row is not written."""

    __slots__ = ("cliente_id", "coluna_id", "nome", "fingerprint", "_row")

    def __init__(self, cliente_id: int, coluna_id: int | None, nome: str | None, raw: dict | None):
        self.cliente_id = cliente_id
        self.coluna_id = coluna_id
        self.nome = nome
        # sha1 of the whole listing row as iSales sent it (key order ignored): it changes when
        # anything the listing shows of the card changes (name, salesperson, column, …)
        self._row = None if raw is None else json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)
        text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
        self.fingerprint = hashlib.sha1(text.encode("utf-8")).hexdigest()

    @classmethod
    def stored(cls, cliente_id: int, coluna_id: int | None, nome: str | None, fingerprint: str,
               row: str | None) -> Card:
        """A card as a store kept it (`row_text` and `fingerprint` of the card first built)."""
        card = cls.__new__(cls)
        card.cliente_id, card.coluna_id, card.nome, card.fingerprint, card._row = (cliente_id, coluna_id, nome,
                                                                                  fingerprint, row)
        return card

    @property
    def raw(self) -> dict:
        """The listing row ({} once dropped)."""
        return {} if self._row is None else json.loads(self._row)

    @property
    def row_text(self) -> str | None:
        """The listing row as compact JSON text (None once dropped)."""
        return self._row

    def without_row(self) -> Card:
        """The same card without its listing row (ids, column, name and fingerprint only)."""
        return Card.stored(self.cliente_id, self.coluna_id, self.nome, self.fingerprint, None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Card) and (self.cliente_id, self.coluna_id, self.nome, self.fingerprint) == (
            other.cliente_id, other.coluna_id, other.nome, other.fingerprint)

    def __hash__(self) -> int:
        return hash((self.cliente_id, self.fingerprint))

    def __repr__(self) -> str:
        return f"Card(cliente_id={self.cliente_id!r}, coluna_id={self.coluna_id!r}, nome={self.nome!r})"


class CardStore(Protocol):
    """Where the cards of a listing are kept as they arrive (in memory by default; step 01 gives a
    store on disk, so that a funnel of any size costs the same memory)."""

    def put(self, card: Card, position: int) -> tuple[int, int | None] | None:
        """Keep `card`, listed at `position`: a later entry of the same client replaces the earlier
        one. None for a client not listed before, else (its first position, the column kept so far)."""

    def __len__(self) -> int:
        """How many clients are kept."""


class CardList:
    """The cards of a listing in memory (the default store)."""

    def __init__(self) -> None:
        self.by_id: dict[int, Card] = {}
        self.first: dict[int, int] = {}  # cliente_id → its first position in the listing

    def put(self, card: Card, position: int) -> tuple[int, int | None] | None:
        earlier = self.by_id.get(card.cliente_id)
        self.by_id[card.cliente_id] = card
        if earlier is None:
            self.first[card.cliente_id] = position
            return None
        return self.first[card.cliente_id], earlier.coluna_id

    def __len__(self) -> int:
        return len(self.by_id)

    def sorted(self) -> list[Card]:
        return sorted(self.by_id.values(), key=lambda card: card.cliente_id)


@dataclass
class Funnel:
    """The whole listing: valid cards (one per client), unusable entries described in pt-BR.

    `cards` holds the cards, by cliente_id, when the listing was kept in memory; with a store of the
    caller's it is empty (the store holds them) and `size` says how many there are."""

    cards: list[Card]
    invalid: list[str] = field(default_factory=list)
    pages: int = 1
    duplicates: int = 0
    size: int = 0  # valid cards (one per client)
    # clients listed more than once: cliente_id → every (position in the listing, coluna_id) seen
    repeated: dict[int, list[tuple[int, int | None]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Details:
    """The raw answers of /clientes, /propostas and /campo-customizado for one client.

    `proposta` is kept as iSales sent it: an object, or {} / None / [] for "no proposal".
    """

    cliente: dict
    proposta: Any
    campos: dict

    @property
    def has_proposta(self) -> bool:
        return bool(self.proposta)


def origin(base_url: str) -> str:
    """The base URL without credentials, query or fragment (what may be written to a file)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _looks_like_html(response: requests.Response, start: bytes) -> bool:
    """An HTML page instead of JSON (a login page…), told by its type or by `start`, the first bytes
    of its body (a plain listing of 50,000 cards decoded whole cost its size twice)."""
    if "html" in response.headers.get("Content-Type", "").lower():
        return True
    text = start.decode(response.encoding or "utf-8", "replace")
    return text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


class IsalesClient:
    """Calls the iSales API through a project HTTP session; the token travels as `api_token`."""

    def __init__(self, base_url: str, token: str, session: requests.Session):
        register_secret(token)  # also when built outside config.load (tests, benchmarks)
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session

    @classmethod
    def from_settings(cls, settings: FetchSettings) -> IsalesClient:
        isales = settings.isales
        rate = isales.rate_per_minute / 60 if isales.rate_per_minute else None
        session = make_session("iSales", settings.http, rate_per_second=rate, pool_size=isales.max_workers)
        return cls(isales.api_url, isales.token, session)

    @property
    def origin(self) -> str:
        return origin(self.base_url)

    def close(self) -> None:
        self.session.close()

    def _get(self, route: str, params: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.base_url}{route}", params={"api_token": self.token, **params}, **kwargs)

    # -- the funnel ------------------------------------------------------------------------------
    def list_cards(self, funil_id: int, desde: date, ate: date, store: CardStore | None = None) -> Funnel:
        """Every card of the funnel in the window, following a Laravel paginator to its end; kept in
        `store` when one is given (then `Funnel.cards` is empty), else in `Funnel.cards`.

        AuthError: token refused (401/403), a redirect (login) or an HTML page. BadResponse: an
        answer of unknown shape, a page loop, or a paginator that never ends.
        """
        params: dict[str, Any] = {"funil_id": funil_id, "desde": desde.isoformat(), "ate": ate.isoformat()}
        with tempfile.TemporaryFile(prefix="isales-funil.") as body:  # each page's answer, on disk
            return self._list_cards(params, store, body)

    def _list_cards(self, params: dict[str, Any], store: CardStore | None, body: IO[bytes]) -> Funnel:
        items, meta = self._funnel_page(params, None, body)
        builder = _FunnelBuilder(store)
        _count, previous = builder.add(items)  # card by card: the raw rows of the listing are never held at once
        pages = 1
        if meta is not None:
            page = _as_int(meta.get("current_page")) or 1
            while self._has_next(meta, page):
                page += 1
                if page > MAX_PAGES:
                    raise BadResponse(f"iSales /funil-clientes: mais de {MAX_PAGES} páginas; a paginação não termina")
                page_items, meta = self._funnel_page(params, page, body)
                if meta is None:
                    raise BadResponse(f"iSales /funil-clientes: a página {page} veio sem paginação, "
                                      "diferente da primeira; formato desconhecido")
                if meta.get("current_page") is not None and _as_int(meta.get("current_page")) != page:
                    raise BadResponse(f"iSales /funil-clientes: pedida a página {page}, veio a página "
                                      f"{meta.get('current_page')}; a paginação não avança")
                count, signature = builder.add(page_items)
                if count and signature == previous:
                    raise BadResponse(f"iSales /funil-clientes: a página {page} repete a página {page - 1}; "
                                      "a paginação está em laço")
                previous = signature
                pages = page
        funnel = builder.funnel()
        funnel.pages = pages
        return funnel

    @staticmethod
    def _has_next(meta: dict, page: int) -> bool:
        last = _as_int(meta.get("last_page"))
        if last is not None:
            return page < last
        return bool(meta.get("next_page_url"))

    def _funnel_page(self, params: dict[str, Any], page: int | None, body: IO[bytes]) -> tuple[Iterable, dict | None]:
        """(items, paginator metadata or None for a plain answer) of one request. The answer is
        written to `body` as it arrives and its items are read from there one at a time, before the
        next page replaces it (a plain listing of 50,000 cards held whole cost its size twice over,
        parsed whole ~50 MB)."""
        what = "iSales /funil-clientes" + (f" (página {page})" if page else "")
        response = self._get("/funil-clientes", {**params, "page": page} if page else params, into=body)
        status = response.status_code
        if status in (401, 403):
            raise AuthError(f"{what}: o iSales recusou o token (HTTP {status}): {TOKEN_HINT}")
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).path or "?"
            raise AuthError(f"{what}: o iSales redirecionou para {target} (página de login?) em vez de "
                            f"responder JSON: o token foi recusado; {TOKEN_HINT}")
        if status == 404:
            raise ConfigError(f"{what}: rota não encontrada (HTTP 404) em {self.origin}: confira ISALES_API_URL")
        if status == 422:
            message = self._error_message(response)
            raise ConfigError(f"{what}: o iSales rejeitou os parâmetros (HTTP 422: {message}): "
                              "confira ISALES_FUNIL_ID e ISALES_DESDE")
        if status != 200:
            raise BadResponse(f"{what}: resposta inesperada HTTP {status}", status=status)
        if _looks_like_html(response, body.read(256)):
            raise AuthError(f"{what}: o iSales respondeu uma página HTML em vez de JSON "
                            f"(token recusado ou sessão de login?): {TOKEN_HINT}")
        body.seek(0)
        try:
            skeleton = _skeleton(body)
        except (ijson.JSONError, UnicodeDecodeError, ValueError):
            body.seek(0)
            response._content = body.read()  # a broken answer: read whole, only to say why (HTML, truncated…)
            return self._split_page(json_body(response, what), what)
        inner, meta = self._split_page(skeleton, what)
        where = next(array for array in CARD_ARRAYS if _at(skeleton, array) is inner)
        body.seek(0)
        return ijson.items(body, _item_prefix(where), use_float=True), meta

    @staticmethod
    def _error_message(response: requests.Response) -> str:
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            message = None
        return clip(message or response.text, 120)

    @staticmethod
    def _split_page(body: Any, what: str) -> tuple[list, dict | None]:
        """Plain list, {"funil_clientes": [...]}, or a Laravel paginator at the top or under the key."""
        if isinstance(body, list):
            return body, None
        if isinstance(body, dict):
            inner = body.get("funil_clientes", body if "data" in body else None)
            if isinstance(inner, list):
                meta = body if any(key in body for key in PAGINATOR_KEYS) else None
                return inner, meta
            if isinstance(inner, dict) and isinstance(inner.get("data"), list) \
                    and any(key in inner for key in PAGINATOR_KEYS):
                return inner["data"], inner
        shape = type(body).__name__ if not isinstance(body, dict) else f"objeto com as chaves {sorted(body)[:8]}"
        raise BadResponse(f"{what}: formato desconhecido ({shape}); esperado {{\"funil_clientes\": [...]}} "
                          "ou uma paginação")

    @staticmethod
    def _cards(items: Iterable) -> Funnel:
        builder = _FunnelBuilder()
        builder.add(items)
        return builder.funnel()

    # -- one client's details --------------------------------------------------------------------
    def details(self, cliente_id: int) -> Details:
        """Client, proposal and custom fields of one card (client first: unknown → no more calls).

        RecordError: unknown client. BadResponse: HTML, malformed JSON or an unexpected shape.
        TransientError: still failing after the session's retries. AuthError: token refused.
        """
        cliente = self.cliente(cliente_id)
        return Details(cliente=cliente, proposta=self.proposta(cliente_id), campos=self.campos(cliente_id))

    def cliente(self, cliente_id: int) -> dict:
        value = self._detail("/clientes", "clientes", cliente_id)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]  # one object in a list instead of under the key: the same answer
        if not isinstance(value, dict):
            raise BadResponse(f"iSales /clientes?cliente_id={cliente_id}: 'clientes' deveria ser um objeto, "
                              f"veio {type(value).__name__}")
        return value

    def proposta(self, cliente_id: int) -> Any:
        value = self._detail("/propostas", "propostas", cliente_id, none_is_missing=False)
        if value is not None and not isinstance(value, (dict, list)):
            raise BadResponse(f"iSales /propostas?cliente_id={cliente_id}: 'propostas' deveria ser um objeto, "
                              f"veio {type(value).__name__}")
        return value

    def campos(self, cliente_id: int) -> dict:
        value = self._detail("/campo-customizado", "clientes", cliente_id)
        if value == []:
            value = {}  # PHP encodes an empty associative array as []
        if not isinstance(value, dict):
            raise BadResponse(f"iSales /campo-customizado?cliente_id={cliente_id}: 'clientes' deveria ser "
                              f"um objeto de rótulos, veio {type(value).__name__}")
        return value

    def _detail(self, route: str, key: str, cliente_id: int, *, none_is_missing: bool = True) -> Any:
        what = f"iSales {route}?cliente_id={cliente_id}"
        response = self._get(route, {"cliente_id": cliente_id})
        status = response.status_code
        if status in (401, 403):
            raise AuthError(f"{what}: o iSales recusou o token (HTTP {status}): {TOKEN_HINT}")
        if status == 404:
            raise RecordError(f"{what}: cliente não encontrado no iSales (HTTP 404)")
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).path or "?"
            raise BadResponse(f"{what}: redirecionado para {target} em vez de responder JSON", status=status)
        if status != 200:
            raise BadResponse(f"{what}: resposta inesperada HTTP {status}", status=status)
        body = json_body(response, what)
        if not isinstance(body, dict) or key not in body:
            found = sorted(body)[:8] if isinstance(body, dict) else type(body).__name__
            raise BadResponse(f"{what}: resposta sem a chave '{key}' (veio {found})", status=status)
        value = body[key]
        if value is None and none_is_missing:
            raise RecordError(f"{what}: cliente não encontrado no iSales ('{key}': null)")
        return value


def _item_prefix(array: str) -> str:
    return f"{array}.item" if array else "item"


def _at(body: Any, array: str) -> Any:
    for part in filter(None, array.split(".")):
        body = body.get(part) if isinstance(body, dict) else None
    return body


def _skeleton(content: IO[bytes]) -> Any:
    """The JSON body with the arrays where cards may be (CARD_ARRAYS) built empty: enough to
    know the answer's shape and its paginator, without the cards."""
    builder = ijson.ObjectBuilder()
    seen: set[str] = set()
    skipping: str | None = None
    for prefix, event, value in ijson.parse(content, use_float=True):
        if skipping is not None:
            if prefix == skipping or prefix.startswith(skipping + "."):
                continue
            skipping = None
        builder.event(event, value)
        if event == "start_array" and prefix in CARD_ARRAYS and prefix not in seen:
            seen.add(prefix)
            skipping = _item_prefix(prefix)
    return builder.value


class _FunnelBuilder:
    """The cards of a listing, built as its pages arrive (one per client; repeats noted)."""

    def __init__(self, store: CardStore | None = None) -> None:
        self.memory = CardList() if store is None else None
        self.store: CardStore = self.memory if self.memory is not None else store  # type: ignore[assignment]
        self.repeated: dict[int, list[tuple[int, int | None]]] = {}
        self.invalid: list[str] = []
        self.duplicates = 0
        self.position = 0

    def add(self, items: Iterable) -> tuple[int, str]:
        """Take one page's items; (how many, a digest of their content: a page repeating the
        previous one means a paginator in a loop)."""
        digest, count = hashlib.sha1(), 0
        for item in items:
            digest.update(repr(item).encode("utf-8", "replace"))
            count += 1
            self.position += 1
            position = self.position
            cliente_id = _as_int(item.get("cliente_id")) if isinstance(item, dict) else None
            if cliente_id is None:
                self.invalid.append(f"item {position} da listagem do funil sem cliente_id válido: "
                                    f"{clip(repr(item), 200)}")
                continue
            nested = item.get("cliente")
            nome = nested.get("nome") if isinstance(nested, dict) else None
            card = Card(cliente_id, _as_int(item.get("coluna_id")), nome if isinstance(nome, str) else None, item)
            earlier = self.store.put(card, position)
            if earlier is not None:
                self.duplicates += 1  # e.g. a card that shifted pages while we listed: step 01 decides
                self.repeated.setdefault(cliente_id, [earlier])
                self.repeated[cliente_id].append((position, card.coluna_id))
        return count, digest.hexdigest()

    def funnel(self) -> Funnel:
        return Funnel(cards=self.memory.sorted() if self.memory is not None else [], invalid=self.invalid,
                      duplicates=self.duplicates, repeated=self.repeated, size=len(self.store))
