"""Coordinates from the map links salespeople paste (every format of docs/api/geocoding.md), and
short links resolved one redirect at a time through our HTTP session, never downloading a page.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import requests

from lib import border
from lib.errors import SyncError

log = logging.getLogger(__name__)

PLACES = Decimal("0.0000001")
MAX_HOPS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MEMO_SIZE = 2048  # answers remembered in a run: the recent ones (the database keeps them all)
T = TypeVar("T")


@dataclass(frozen=True)
class Point:
    latitude: Decimal
    longitude: Decimal

    @classmethod
    def of(cls, latitude: object, longitude: object) -> Point:
        """Coordinates rounded to 7 places (the database's scale), from text, float or Decimal."""
        lat = Decimal(repr(latitude) if isinstance(latitude, float) else str(latitude))
        lng = Decimal(repr(longitude) if isinstance(longitude, float) else str(longitude))
        return cls(lat.quantize(PLACES), lng.quantize(PLACES))

    def in_brazil(self) -> bool:
        """Inside Brazil's real border (lib/border.py): anything outside is a wrong link or match."""
        return border.in_brazil(float(self.latitude), float(self.longitude))

    def __str__(self) -> str:
        return f"{self.latitude.normalize():f}, {self.longitude.normalize():f}"


# --------------------------------------------------------------------------- parsing

_NUM = r"[-+]?\d{1,3}\.\d+"
_SEP = r"(?:\s*[,;]\s*\+?\s*|\s*\+\s*|\s+)"
_PAIR = rf"(?<![\w.+-])({_NUM}){_SEP}({_NUM})(?![\d.])"

# In order of trust: the place itself first, the map's viewport last.
_URL_PATTERNS = [
    re.compile(r"!3d([-+]?\d{1,3}(?:\.\d+)?)!4d([-+]?\d{1,3}(?:\.\d+)?)"),  # data=…!3d<lat>!4d<lng>
    re.compile(rf"[?&#](?:q|query|daddr|destination|coordinate|saddr)=(?:loc:)?\s*{_PAIR}", re.IGNORECASE),
    re.compile(rf"/{_PAIR}(?=$|[/?#])"),  # /maps/search/<lat>,<lng>, /maps/place/<lat>,<lng>
    re.compile(rf"[?&#](?:ll|sll|center|cbll)=\s*{_PAIR}", re.IGNORECASE),
    re.compile(r"[?&]mlat=([-+]?\d{1,3}\.\d+)&mlon=([-+]?\d{1,3}\.\d+)", re.IGNORECASE),  # OpenStreetMap
    re.compile(r"#map=\d{1,2}/([-+]?\d{1,3}\.\d+)/([-+]?\d{1,3}\.\d+)"),
]
_VIEWPORT = re.compile(rf"@{_PAIR}")  # the map's centre, not the place: trusted last
_TEXT_PATTERN = re.compile(_PAIR)

# 23°33'41.0"S 46°39'21.2"W (what Google Maps shows when one clicks a point), also "23.56° S"
_DMS_ONE = (r"(\d{1,3}(?:[.,]\d+)?)\s*°\s*(?:(\d{1,2}(?:[.,]\d+)?)\s*['′’]\s*)?"
            r"(?:(\d{1,2}(?:[.,]\d+)?)\s*(?:\"|″|”|'')\s*)?")
_DMS = re.compile(rf"{_DMS_ONE}([NSns])[\s,;+]*{_DMS_ONE}([EWLOewlo])")

_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_BARE_SHORT_LINK = re.compile(r"(?<![\w./])(?:maps\.app\.goo\.gl|goo\.gl/maps|g\.co/kgs)/[^\s<>\"']+", re.IGNORECASE)


def fully_unquoted(text: str) -> str:
    """`text` with percent-encoding undone, also when it was encoded twice (wrapped links)."""
    for _ in range(4):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _valid(lat_text: str, lng_text: str) -> Point | None:
    try:
        point = Point.of(lat_text.replace("+", ""), lng_text.replace("+", ""))
    except ArithmeticError:
        return None
    if abs(point.latitude) > 90 or abs(point.longitude) > 180:
        return None
    return point


def _dms_value(degrees: str, minutes: str | None, seconds: str | None) -> Decimal:
    value = Decimal(degrees.replace(",", "."))
    if minutes:
        value += Decimal(minutes.replace(",", ".")) / 60
    if seconds:
        value += Decimal(seconds.replace(",", ".")) / 3600
    return value


def _from_dms(text: str) -> Point | None:
    for found in _DMS.finditer(text):
        d1, m1, s1, hemi1, d2, m2, s2, hemi2 = found.groups()
        lat = _dms_value(d1, m1, s1) * (-1 if hemi1.upper() == "S" else 1)
        lng = _dms_value(d2, m2, s2) * (-1 if hemi2.upper() in ("W", "O") else 1)
        point = _valid(str(lat), str(lng))
        if point is not None:
            return point
    return None


def parse(text: str | None) -> Point | None:
    """The coordinates in a map link or pasted text, or None. Not limited to Brazil (the caller
    rejects points outside it, saying so). `!3d/!4d` (the place) wins over `@` (the viewport)."""
    if not text or not text.strip():
        return None
    decoded = fully_unquoted(text.strip())
    if not _URL.search(decoded):
        return _first(decoded, [_TEXT_PATTERN]) or _from_dms(decoded)
    return (_first(decoded, _URL_PATTERNS) or _from_dms(decoded) or _first(decoded, [_VIEWPORT])
            or _first(decoded, [_TEXT_PATTERN]))


def _first(text: str, patterns: list[re.Pattern]) -> Point | None:
    for pattern in patterns:
        for found in pattern.finditer(text):
            point = _valid(found.group(1), found.group(2))
            if point is not None:
                return point
    return None


def first_url(text: str | None) -> str | None:
    """The first http(s) URL in a pasted text (trailing punctuation removed), or None. A short
    link pasted without its scheme ('maps.app.goo.gl/…') counts as https."""
    found = _URL.search(text or "")
    if found:
        return found.group(0).rstrip(").,;]}!")
    bare = _BARE_SHORT_LINK.search(text or "")
    return "https://" + bare.group(0).rstrip(").,;]}!") if bare else None


def unwrap(url: str) -> str:
    """The URL behind a consent page (`continue=`) or a Google redirect wrapper (`/url?q=`)."""
    for _ in range(3):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        params = parse_qs(parts.query)
        inner: str | None = None
        if host.startswith("consent.") and params.get("continue"):
            inner = params["continue"][0]
        elif parts.path == "/url" and host.endswith("google.com"):
            inner = next(iter(params.get("q") or params.get("url") or []), None)
        if not inner or not inner.lower().startswith(("http://", "https://")):
            return url
        url = inner
    return url


def shorten(text: str, size: int = 90) -> str:
    """A link as it fits in a message."""
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


# --------------------------------------------------------------------------- short links

class Memo(Generic[T]):
    """The last `size` answers of a run, by key: a run of 50,000 projects holds as much as one of
    1,000 (what fell out is asked again of the database cache, or of the network when it was a
    failure the database does not keep)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or MEMO_SIZE
        self._items: OrderedDict[str, T] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> T | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: T) -> T:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


@dataclass(frozen=True)
class Resolution:
    point: Point | None
    hops: int
    problem: str | None = None  # pt-BR, when no coordinates came out
    transient: bool = False  # a network failure: the same link may work on the next run


class LinkResolver:
    """Follows a link one redirect at a time (HEAD; GET without reading the body if HEAD is
    refused) until a `Location` carries coordinates; at most `max_hops` requests per link."""

    def __init__(self, session: requests.Session, max_hops: int = MAX_HOPS):
        self.session = session
        self.max_hops = max_hops
        self.requests = 0
        self._memo: Memo[Resolution] = Memo()
        self._dead_hosts: dict[str, str] = {}  # host → why it failed in this run

    def resolve(self, url: str) -> Resolution:
        known = self._memo.get(url)
        if known is None:
            known = self._memo.put(url, self._resolve(url))
        return known

    def _resolve(self, url: str) -> Resolution:
        current = unwrap(url)
        seen = {current}
        for hop in range(1, self.max_hops + 1):
            parts = urlsplit(current)
            host = (parts.hostname or "").lower()
            if parts.scheme.lower() not in ("http", "https") or not host:
                return Resolution(None, hop - 1, "o link não é um endereço http(s) válido")
            if host in self._dead_hosts:
                return Resolution(None, hop - 1, f"o servidor {host} não respondeu nesta execução "
                                                 f"({self._dead_hosts[host]})", transient=True)
            try:
                status, location = self._hop(current)
            except SyncError as exc:  # TransientError after the session's retries
                reason = exc.message.split(": ", 2)[-1]
                self._dead_hosts[host] = reason
                return Resolution(None, hop - 1, f"não foi possível seguir o link ({reason})", transient=True)
            except (requests.RequestException, ValueError) as exc:
                return Resolution(None, hop - 1, f"não foi possível seguir o link ({type(exc).__name__})")
            if status not in REDIRECTS or not location:
                if 200 <= status < 400:
                    return Resolution(None, hop, "o link não leva a um mapa com coordenadas")
                return Resolution(None, hop, f"o link respondeu {status}")
            following = unwrap(urljoin(current, location.strip()))
            point = parse(following)
            if point is not None:
                log.debug("link resolvido em %d salto(s)", hop)
                return Resolution(point, hop)
            if following in seen:
                return Resolution(None, hop, "os redirecionamentos do link formam um ciclo")
            seen.add(following)
            current = following
        return Resolution(None, self.max_hops,
                          f"mais de {self.max_hops} redirecionamentos sem chegar a coordenadas")

    def _hop(self, url: str) -> tuple[int, str | None]:
        """One request; (status, Location). The body is never read."""
        self.requests += 1
        response = self.session.head(url)
        try:
            if response.status_code in (405, 501):  # a server that refuses HEAD
                response.close()
                self.requests += 1
                response = self.session.get(url, stream=True)
            return response.status_code, response.headers.get("Location")
        finally:
            response.close()
