"""Coordinates of an address: the map link first, then geopy (Nominatim or Google) on the address,
then the CEP alone; every geocoder answer (hit or miss, never an error) cached in `geocodificacao`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from geopy import exc as geopy_exc
from geopy.adapters import BaseSyncAdapter, RequestsAdapter
from geopy.geocoders import GoogleV3, Nominatim
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from lib import documents, maplinks
from lib.clock import db_now
from lib.config import GeocoderSettings, HttpSettings
from lib.db.schema import geocodificacao
from lib.errors import AuthError, BadResponse, ConfigError, RecordError, SyncError, TransientError
from lib.http import USER_AGENT, HttpSession, json_body, make_session
from lib.logs import clip
from lib.maplinks import Point

log = logging.getLogger(__name__)

LINK_MAX_ATTEMPTS = 2  # a link is a convenience: a dead link host must not cost minutes of backoff
ERRORS_IN_A_ROW = 3  # unreadable answers in a row: the geocoder is broken, not the addresses


# --------------------------------------------------------------------------- queries and cache

@dataclass(frozen=True)
class Query:
    """What is sent to the geocoder: the structured address, or the CEP alone."""

    kind: str  # "endereco" | "cep"
    street: str | None = None  # "Avenida Paulista, 1000"
    city: str | None = None
    uf: str | None = None
    cep: str | None = None  # 8 digits

    def normalised(self) -> str:
        parts = (self.street, self.city, self.uf, self.cep, "br")
        return " | ".join(documents.fold(part or "") for part in parts)


def address_query(endereco: dict[str, Any]) -> Query | None:
    """The structured query of a normalised address; None without a street or a city/CEP."""
    street = endereco.get("logradouro")
    if not street or not (endereco.get("cidade") or endereco.get("cep")):
        return None
    numero = endereco.get("numero")
    if numero and numero != "s/n":
        street = f"{street}, {numero}"
    return Query("endereco", street, endereco.get("cidade"), endereco.get("estado"), endereco.get("cep"))


def cep_query(endereco: dict[str, Any]) -> Query | None:
    return Query("cep", cep=endereco["cep"]) if endereco.get("cep") else None


def cache_key(provider: str, query: Query) -> str:
    return hashlib.sha256(f"{provider}\n{query.kind}\n{query.normalised()}".encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    found: bool
    point: Point | None = None
    description: str | None = None
    cached: bool = False  # answered by the cache (no geocoder call)


class GeocodingCache:
    """The `geocodificacao` table; each answer is committed at once (a crash loses no paid call)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, key: str) -> Answer | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(geocodificacao).where(geocodificacao.c.chave == key)).mappings().first()
        if row is None:
            return None
        point = Point.of(row["latitude"], row["longitude"]) if row["encontrado"] and row["latitude"] is not None \
            else None
        return Answer(point is not None, point, row["descricao"])

    def put(self, key: str, provider: str, kind: str, consulta: str, answer: Answer) -> None:
        values = {"chave": key, "provedor": provider, "tipo": kind, "consulta": consulta,
                  "encontrado": answer.found, "descricao": (answer.description or None) and clip(answer.description, 2000),
                  "latitude": answer.point.latitude if answer.point else None,
                  "longitude": answer.point.longitude if answer.point else None, "criado_em": db_now()}
        try:
            with self.engine.begin() as conn:
                conn.execute(geocodificacao.insert().values(**values))
        except IntegrityError:  # stored meanwhile by another run: the first answer stays
            pass


# --------------------------------------------------------------------------- geopy over our session

class SessionAdapter(RequestsAdapter):
    """geopy's requests adapter over our session (timeouts, retries, redaction). geopy's own
    timeout is ignored; HTTP and Google status errors become the project's exceptions."""

    def __init__(self, session: HttpSession, *, google: bool, setting: str):
        BaseSyncAdapter.__init__(self, proxies=None, ssl_context=None)
        self.session = session
        self.google = google
        self.setting = setting  # the variable to check when access is refused

    def __del__(self) -> None:  # the Geocoder owns (and closes) the session
        pass

    def _request(self, url, *, timeout, headers):
        response = self.session.get(url, headers=headers)
        status = response.status_code
        where = f"{self.session.service}: {urlsplit(url).path}"
        if status in (401, 403):
            raise AuthError(f"{where}: acesso recusado ({status}); verifique {self.setting}")
        if status == 404:
            raise ConfigError(f"{where}: o serviço respondeu 404; verifique a URL do geocodificador")
        if status >= 400:
            raise RecordError(f"{where}: o geocodificador recusou a consulta ({status})")
        return response

    def get_json(self, url, *, timeout, headers):
        body = json_body(self._request(url, timeout=timeout, headers=headers), self.session.service)
        status = body.get("status") if self.google and isinstance(body, dict) else None
        if status == "REQUEST_DENIED":
            raise AuthError(f"{self.session.service}: o Google recusou a consulta (REQUEST_DENIED: "
                            f"{body.get('error_message') or 'sem detalhe'}); verifique {self.setting}")
        if status == "OVER_DAILY_LIMIT":
            raise TransientError(f"{self.session.service}: cota diária da chave esgotada (OVER_DAILY_LIMIT)")
        if status == "INVALID_REQUEST":
            raise RecordError(f"{self.session.service}: consulta inválida (INVALID_REQUEST)")
        return body  # OVER_QUERY_LIMIT and UNKNOWN_ERROR were retried by the session (google_status)


# Google says "slow down" and "try again" in the body of a 200: the session retries them as it
# retries a 429 (everyone sharing the pacer waits) and a 503
GOOGLE_RETRY_STATUSES = {"OVER_QUERY_LIMIT": 429, "UNKNOWN_ERROR": 503}


def google_status(response: requests.Response) -> int:
    """The status a Google Geocoding answer carries (see `lib.http.make_session(answer_status=)`)."""
    if response.status_code != 200:
        return response.status_code
    try:
        body = response.json()
    except ValueError:
        return response.status_code  # json_body reports it
    status = body.get("status") if isinstance(body, dict) else None
    return GOOGLE_RETRY_STATUSES.get(str(status), 200)


def _base(url: str, api_path: str) -> tuple[str, str]:
    """(scheme, domain-with-path) as geopy wants them, from GEOCODER_URL / GOOGLE_GEOCODER_URL."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith(api_path):
        path = path[: -len(api_path)]
    return parts.scheme, parts.netloc + path


class Geocoder:
    """Cached, paced geocoding with the configured provider; opens its session on first need.

    After a failure that survived the session's retries, the geocoder is left alone for the rest
    of the run (`unavailable`): later projects wait for the next run instead of each retrying.
    """

    def __init__(self, settings: GeocoderSettings, http: HttpSettings, engine: Engine):
        self.settings = settings
        self.http = http
        self.provider = settings.provider
        self.cache = GeocodingCache(engine)
        self.stats: Counter[str] = Counter()
        self.unavailable: str | None = None
        self._errors_in_a_row = 0
        self._memo: maplinks.Memo[Answer] = maplinks.Memo()
        self._session: HttpSession | None = None
        self._geocode = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def _client(self):
        if self._geocode is not None:
            return self._geocode
        s = self.settings
        # paced like every other client: a retry takes a slot too, and a 429 holds every caller
        rate = 1 / s.min_delay_seconds if s.min_delay_seconds > 0 else None
        if self.provider == "google":
            self._session = make_session("Geocodificador Google", self.http, rate_per_second=rate,
                                         answer_status=google_status)
            adapter = SessionAdapter(self._session, google=True, setting="GOOGLE_MAPS_API_KEY")
            scheme, domain = _base(s.google_url, GoogleV3.api_path)
            geocoder = GoogleV3(api_key=s.google_api_key, domain=domain, scheme=scheme, user_agent=USER_AGENT,
                                adapter_factory=lambda **_: adapter)
        else:
            self._session = make_session("Geocodificador", self.http, rate_per_second=rate,
                                         user_agent=s.user_agent)
            adapter = SessionAdapter(self._session, google=False, setting="GEOCODER_USER_AGENT e GEOCODER_URL")
            scheme, domain = _base(s.url, "/search")
            geocoder = Nominatim(domain=domain, scheme=scheme, user_agent=s.user_agent,
                                 adapter_factory=lambda **_: adapter)
        self._geocode = geocoder.geocode
        return self._geocode

    def lookup(self, query: Query, *, network: bool = True) -> Answer | None:
        """The answer for `query` (cache first); None when not cached and `network` is False."""
        key = cache_key(self.provider, query)
        answer = self._memo.get(key) or self.cache.get(key)
        if answer is not None:
            self.stats["cache"] += 1
            self._memo.put(key, answer)
            return replace(answer, cached=True)
        if not network:
            return None
        if self.unavailable:
            raise TransientError(self.unavailable)
        try:
            location = self._call(query)
        except TransientError as exc:
            self.unavailable = f"geocodificador indisponível: {exc.message}"
            raise TransientError(self.unavailable) from None
        except SyncError as exc:
            self.stats["erros"] += 1
            self._errors_in_a_row += 1
            if self._errors_in_a_row >= ERRORS_IN_A_ROW and not isinstance(exc, ConfigError):
                self.unavailable = (f"geocodificador indisponível: {self._errors_in_a_row} erros seguidos "
                                    f"(último: {exc.message})")
            raise
        self._errors_in_a_row = 0
        answer = Answer(False) if location is None else \
            Answer(True, Point.of(location.latitude, location.longitude), location.address)
        self.cache.put(key, self.provider, query.kind, query.normalised(), answer)
        self._memo.put(key, answer)
        return answer

    def _call(self, query: Query):
        geocode = self._client()
        self.stats["consultas"] += 1
        try:
            if self.provider == "google":
                return geocode(**_google_arguments(query))
            return geocode(_nominatim_query(query), exactly_one=True, country_codes="br", language="pt-BR")
        except (geopy_exc.GeocoderAuthenticationFailure, geopy_exc.GeocoderInsufficientPrivileges) as exc:
            raise AuthError(f"geocodificador recusou o acesso: {exc}") from None
        except geopy_exc.ConfigurationError as exc:
            raise ConfigError(f"configuração do geocodificador inválida: {exc}") from None
        except geopy_exc.GeocoderParseError:
            raise BadResponse("geocodificador: resposta ilegível") from None
        except geopy_exc.GeocoderQueryError as exc:
            raise RecordError(f"geocodificador recusou a consulta: {exc}") from None
        except geopy_exc.GeopyError as exc:  # rate limit, quota, unavailable, timed out
            raise TransientError(f"geocodificador: {type(exc).__name__}: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # geopy reading an answer of another shape
            raise BadResponse(f"geocodificador: resposta em formato inesperado ({type(exc).__name__})") from None


def _nominatim_query(query: Query) -> dict[str, str]:
    fields = {"street": query.street, "city": query.city,
              "state": documents.state_name(query.uf) if query.uf else None,
              "postalcode": documents.format_cep(query.cep) if query.cep else None, "country": "Brasil"}
    return {name: value for name, value in fields.items() if value}


def _google_arguments(query: Query) -> dict[str, Any]:
    # country is Google's only strict filter that cannot hide a house behind a mistyped CEP
    arguments: dict[str, Any] = {"region": "br", "language": "pt-BR", "exactly_one": True}
    if query.kind == "cep":
        arguments["components"] = {"postal_code": documents.format_cep(query.cep or ""), "country": "BR"}
        return arguments
    place = " - ".join(part for part in (query.city, query.uf) if part)
    cep = documents.format_cep(query.cep) if query.cep else None
    arguments["query"] = ", ".join(part for part in (query.street, place, cep) if part)
    arguments["components"] = {"country": "BR"}
    return arguments


# --------------------------------------------------------------------------- the order of sources

def link_key(url: str) -> str:
    """Cache key of a link's resolution (the URL as is: short-link codes are case-sensitive)."""
    return hashlib.sha256(f"link\nlink\n{url}".encode()).hexdigest()


@dataclass
class Located:
    point: Point | None = None
    source: str | None = None  # link | endereco | cep
    cached: bool = False  # the geocoder's answer came from the cache
    warnings: list[str] = field(default_factory=list)  # for the project's avisos
    misses: list[str] = field(default_factory=list)  # why each source gave nothing
    error: SyncError | None = None  # the geocoder failed (not "not found"): try again next run


class Locator:
    """Link → address → CEP, each result checked against Brazil's border. A link's
    resolution is cached like a geocoder answer (a network failure is not)."""

    def __init__(self, geocoder: Geocoder, resolver: maplinks.LinkResolver):
        self.geocoder = geocoder
        self.resolver = resolver
        self.link_cache_hits = 0

    @classmethod
    def from_settings(cls, settings: GeocoderSettings, http: HttpSettings, engine: Engine) -> Locator:
        link_http = replace(http, max_attempts=min(http.max_attempts, LINK_MAX_ATTEMPTS))
        return cls(Geocoder(settings, http, engine), maplinks.LinkResolver(make_session("Links", link_http)))

    def close(self) -> None:
        self.geocoder.close()
        self.resolver.session.close()

    def locate(self, endereco: dict[str, Any], *, network: bool = True) -> Located:
        """Coordinates for a normalised address. Without `network`, only what needs no request:
        the link's own text and the cache."""
        result = Located()
        link = endereco.get("link_localizacao")
        if link:
            result.point = self._from_link(link, network, result.misses)
            if result.point is not None:
                result.source = "link"
                return result
        else:
            result.misses.append("sem link de localização")
        for kind, query in (("endereco", address_query(endereco)), ("cep", cep_query(endereco))):
            label = "endereço" if kind == "endereco" else f"CEP {documents.format_cep(endereco.get('cep') or '')}"
            if query is None:
                result.misses.append("endereço incompleto (falta logradouro ou cidade)" if kind == "endereco"
                                     else "sem CEP")
                continue
            try:
                answer = self.geocoder.lookup(query, network=network)
            except (TransientError, RecordError, BadResponse) as exc:
                result.error = exc
                return result
            if answer is None:
                result.misses.append(f"{label} não consultado")
            elif not answer.found or answer.point is None:
                result.misses.append(f"{label} não encontrado")
            elif not answer.point.in_brazil():
                result.misses.append(f"{label} com coordenadas fora do Brasil ({answer.point})")
            else:
                skipped = [miss for miss in result.misses if miss != "sem link de localização"]
                if skipped:
                    result.warnings.append(f"{'; '.join(skipped)}: usadas as coordenadas do {label}")
                if kind == "cep":
                    result.warnings.append("coordenadas pelo CEP: precisão baixa (centro da área do CEP)")
                result.point, result.source, result.cached = answer.point, kind, answer.cached
                return result
        return result

    def _from_link(self, link: str, network: bool, misses: list[str]) -> Point | None:
        shown = maplinks.shorten(link)
        point = maplinks.parse(link)
        url = maplinks.first_url(link)
        if point is None and url:
            found, problem = self._resolve(url, network)
            if found is None:
                misses.append(f"link {shown!r}: {problem}" if problem else f"link {shown!r} não seguido")
                return None
            point = found
        if point is None:
            misses.append(f"link {shown!r} não tem coordenadas")
            return None
        if not point.in_brazil():
            misses.append(f"link {shown!r} aponta para fora do Brasil ({point})")
            return None
        return point

    def _resolve(self, url: str, network: bool) -> tuple[Point | None, str | None]:
        key = link_key(url)
        cached = self.geocoder.cache.get(key)
        if cached is not None:
            self.link_cache_hits += 1
            return cached.point, cached.description
        if not network:
            return None, None
        resolution = self.resolver.resolve(url)
        if not resolution.transient:
            answer = Answer(resolution.point is not None, resolution.point, resolution.problem)
            self.geocoder.cache.put(key, "link", "link", url, answer)
        return resolution.point, resolution.problem
