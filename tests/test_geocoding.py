"""lib/maplinks and lib/geocoding: link formats, short links against the sandbox, geopy over our
session (Nominatim and Google), the cache, Brazil's border and the link → address → CEP order."""

from __future__ import annotations

import shutil
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from lib import config, maplinks
from lib.db import migrate
from lib.db.engine import make_engine
from lib.db.schema import geocodificacao
from lib.errors import AuthError, BadResponse, TransientError
from lib.geocoding import Answer, Geocoder, Locator, Query, address_query, cache_key
from lib.http import Pacer, make_session
from lib.maplinks import LinkResolver, Point
from tests.conftest import gaps

P = (Decimal("-23.5614000"), Decimal("-46.6559000"))

# (description, text, expected (lat, lng) or None)
LINKS = [
    ("place @", "https://www.google.com/maps/place/Av.+Paulista,+1000/@-23.5614,-46.6559,17z/data=!3m1!4b1", P),
    ("search with +", "https://www.google.com/maps/search/-23.5614,+-46.6559", P),
    ("search ?entry", "https://www.google.com/maps/search/-23.5614,+-46.6559?entry=tts", P),
    ("search without +", "https://www.google.com/maps/search/-23.5614,-46.6559", P),
    ("q=", "https://www.google.com/maps?q=-23.5614,-46.6559", P),
    ("q= with space", "https://www.google.com/maps?q=-23.5614, -46.6559", P),
    ("q=loc:", "https://maps.google.com/maps?q=loc:-23.5614,-46.6559", P),
    ("ll=", "https://www.google.com/maps?hl=pt-BR&ll=-23.5614,-46.6559&z=17", P),
    ("maps.google place", "https://maps.google.com/maps/place/-23.5614,-46.6559", P),
    ("api=1 query", "https://www.google.com/maps/search/?api=1&query=-23.5614,-46.6559", P),
    ("api=1 center", "https://www.google.com/maps/@?api=1&map_action=map&center=-23.5614,-46.6559", P),
    ("dir destination", "https://www.google.com/maps/dir/?api=1&destination=-23.5614,-46.6559", P),
    ("daddr", "https://maps.google.com/maps?saddr=Minha+casa&daddr=-23.5614,-46.6559", P),
    ("viewport only", "https://www.google.com/maps/@-23.5614,-46.6559,15z", P),
    ("3d4d wins over @", "https://www.google.com/maps/place/X/@-23.55,-46.64,15z/data=!3m1!4b1!4m6!3m5"
                         "!1s0x94ce59c8da0aa315:0xabc!8m2!3d-23.5614!4d-46.6559!16s%2Fg%2F11c", P),
    ("3d4d, viewport far", "https://www.google.com/maps/place/Fazenda+Boa+Vista/@-17.7923,-50.9192,15z/"
                           "data=!3m1!4b1!4m6!3m5!1s0x0:0x0!8m2!3d-17.79871!4d-50.93012",
     (Decimal("-17.7987100"), Decimal("-50.9301200"))),
    ("q wins over @", "https://www.google.com/maps/@-23.55,-46.64,15z?q=-23.5614,-46.6559", P),
    ("apple coordinate %2C", "https://maps.apple.com/place?coordinate=-23.5614%2C-46.6559&name=Obra", P),
    ("apple ll", "https://maps.apple.com/?ll=-23.5614,-46.6559&q=Casa", P),
    ("apple sll", "http://maps.apple.com/?sll=-23.5614,-46.6559&z=10", P),
    ("encoded @ and ,", "https://www.google.com/maps/place/Av/%40-23.5614%2C-46.6559%2C17z", P),
    ("encoded search ,+", "https://www.google.com/maps/search/-23.5614%2C%2B-46.6559", P),
    ("encoded q", "https://www.google.com/maps?q=-23.5614%2C-46.6559", P),
    ("encoded =", "https://www.google.com/maps?q%3D-23.5614%2C-46.6559", P),
    ("double-encoded", "https://www.google.com/maps?q=-23.5614%252C-46.6559", P),
    ("google /url wrapper", "https://www.google.com/url?q=https%3A%2F%2Fwww.google.com%2Fmaps%3Fq%3D-23.5614"
                            "%2C-46.6559&sa=D&source=editors", P),
    ("consent wrapper", "https://consent.google.com/ml?continue=https%3A%2F%2Fwww.google.com%2Fmaps%2Fplace"
                        "%2FX%2F%40-23.5614%2C-46.6559%2C17z&gl=BR", P),
    ("whitespace around", "  https://www.google.com/maps?q=-23.5614,-46.6559\n", P),
    ("waze ll", "https://waze.com/ul?ll=-23.5614%2C-46.6559&navigate=yes", P),
    ("osm mlat/mlon", "https://www.openstreetmap.org/?mlat=-23.5614&mlon=-46.6559#map=17/-23.5/-46.6", P),
    ("osm #map", "https://www.openstreetmap.org/#map=17/-23.5614/-46.6559", P),
    ("bare pair", "-23.5614, -46.6559", P),
    ("bare pair no space", "-23.5614,-46.6559", P),
    ("bare pair semicolon", "-23.5614; -46.6559", P),
    ("bare pair in text", "Localização: -23.5614,-46.6559 (portão azul)", P),
    ("DMS from Google", "23°33'41.0\"S 46°39'21.2\"W", (Decimal("-23.5613889"), Decimal("-46.6558889"))),
    ("DMS place wins over @", "https://www.google.com/maps/place/23%C2%B033'41.0%22S+46%C2%B039'21.2%22W/"
                              "@-23.55,-46.64,17z", (Decimal("-23.5613889"), Decimal("-46.6558889"))),
    ("pair with zoom in a path", "https://www.google.com/maps/place/-23.5614,-46.6559,17z", P),
    ("DMS pt-BR O", "23°33'41\"S, 46°39'21\"O", (Decimal("-23.5613889"), Decimal("-46.6558333"))),
    ("many decimals", "https://www.google.com/maps?q=-23.561414123456,-46.655881234567",
     (Decimal("-23.5614141"), Decimal("-46.6558812"))),
    ("outside Brazil still parsed", "https://www.google.com/maps/place/Lisboa/@38.7223,-9.1393,12z",
     (Decimal("38.7223000"), Decimal("-9.1393000"))),
    ("swapped still parsed", "https://www.google.com/maps?q=-46.6559,-23.5614",
     (Decimal("-46.6559000"), Decimal("-23.5614000"))),
    # junk: nothing to parse
    ("empty", "", None),
    ("blank", "   ", None),
    ("none", None, None),
    ("seller note", "ver com o vendedor", None),
    ("dash", "-", None),
    ("instagram", "https://www.instagram.com/p/C3xYz9LmNoP/", None),
    ("place without coordinates", "https://www.google.com/maps/place/Rua+Santa+Luzia,+1328,+Belo+Horizonte+-+MG", None),
    ("short link", "https://maps.app.goo.gl/AbCdEf123", None),
    ("goo.gl/maps", "https://goo.gl/maps/xYz987", None),
    ("integers only", "-23, -46", None),
    ("address numbers", "Rua 12, 345 - casa 2", None),
    ("phone number", "(11) 98765-4321", None),
    ("latitude out of range", "https://www.google.com/maps?q=-123.5,-46.6", None),
    ("longitude out of range", "-23.5, -246.6", None),
    ("CEP-like", "01310-100", None),
    ("sign kept after a letter", "ref-23.5614,-46.6559", None),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(text, expected, id=name) for name, text, expected in LINKS])
def test_link_parsing(text, expected):
    point = maplinks.parse(text)
    assert (point.latitude, point.longitude) == expected if expected else point is None


def test_in_brazil():  # the border itself: tests/test_border.py
    assert Point.of("-23.5614", "-46.6559").in_brazil()
    assert Point.of("5.2", "-60.2").in_brazil()  # Roraima
    assert Point.of("-33.6906", "-53.4566").in_brazil()  # Chuí
    assert Point.of("-7.155", "-34.793").in_brazil()  # Ponta do Seixas
    assert not Point.of("38.7223", "-9.1393").in_brazil()  # Lisbon
    assert not Point.of("-46.6559", "-23.5614").in_brazil()  # swapped
    assert not Point.of("-34.9", "-56.2").in_brazil()  # Montevideo
    assert not Point.of("6.1", "-60").in_brazil()


def test_first_url_and_unwrap():
    assert maplinks.first_url("casa: https://maps.app.goo.gl/AbC123 (portão)") == "https://maps.app.goo.gl/AbC123"
    assert maplinks.first_url("ver com o vendedor") is None
    assert maplinks.first_url("maps.app.goo.gl/AbC123") == "https://maps.app.goo.gl/AbC123"
    inner = "https://www.google.com/maps/place/X/@-23.5614,-46.6559,17z"
    assert maplinks.unwrap("https://consent.google.com/ml?continue=" + inner.replace("/", "%2F") + "&gl=BR") == inner
    assert maplinks.unwrap("https://www.google.com/url?q=" + inner) == inner
    assert maplinks.unwrap(inner) == inner


# --------------------------------------------------------------------------- short links (sandbox)

@pytest.fixture
def resolver():
    http = config.HttpSettings(connect_timeout=3, read_timeout=5, max_attempts=2)
    session = make_session("Links", http)
    yield LinkResolver(session)
    session.close()


@pytest.mark.parametrize(("code", "hops"), [("direct", 1), ("chain-a", 2), ("consent", 1), ("hop-3", 5)])
def test_short_links_resolve_hop_by_hop(sandbox, resolver, code, hops):
    sandbox.reset_calls()
    result = resolver.resolve(f"{sandbox.url}/l/{code}")
    assert result.point == Point.of("-23.5614", "-46.6559") and result.problem is None
    assert result.hops == hops
    calls = sandbox.calls(system="shortener")
    # one HEAD per hop and nothing else: no page body is ever downloaded, consent.google.com never called
    assert [c["method"] for c in calls] == ["HEAD"] * hops


@pytest.mark.parametrize(("code", "problem", "requests"), [
    ("loop-x", "os redirecionamentos do link formam um ciclo", 2),
    ("hop-1", "mais de 5 redirecionamentos sem chegar a coordenadas", 5),
    ("nao-existe", "o link respondeu 404", 1),
])
def test_short_links_that_give_nothing(sandbox, resolver, code, problem, requests):
    sandbox.reset_calls()
    result = resolver.resolve(f"{sandbox.url}/l/{code}")
    assert result.point is None and result.problem == problem and not result.transient
    assert len(sandbox.calls(system="shortener")) == requests


def test_head_refused_falls_back_to_get_without_body(sandbox, resolver):
    sandbox.add_fault(system="shortener", method="HEAD", kind="status", status=405, times=1)
    sandbox.reset_calls()
    result = resolver.resolve(f"{sandbox.url}/l/direct")
    assert result.point == Point.of("-23.5614", "-46.6559")
    assert [(c["method"], c["status"]) for c in sandbox.calls(system="shortener")] == [("HEAD", 405), ("GET", 302)]


def test_unreachable_link_host_is_transient_and_tried_once(resolver):
    first = resolver.resolve("http://127.0.0.1:9/l/abc")
    assert first.point is None and first.transient and "não foi possível seguir o link" in first.problem
    before = resolver.requests
    again = resolver.resolve("http://127.0.0.1:9/l/other")
    assert again.transient and resolver.requests == before  # the dead host is not asked again this run


def test_a_run_keeps_only_the_recent_link_resolutions(monkeypatch):
    """Issue 14 §2: the resolutions a run keeps in memory are bounded (the recent ones; what fell
    out is in the database cache, see Locator). Before, every link of the run stayed in memory."""
    monkeypatch.setattr(maplinks, "MEMO_SIZE", 50, raising=False)
    resolver = LinkResolver(make_session("Links", HTTP))
    hops: list[str] = []

    def hop(url):
        hops.append(url)
        return 302, "https://www.google.com/maps/@-23.5614,-46.6559,15z"

    monkeypatch.setattr(resolver, "_hop", hop)
    for n in range(300):
        assert resolver.resolve(f"https://maps.app.goo.gl/code{n}").point == Point.of(*P)
    assert len(resolver._memo) <= 50 and len(hops) == 300
    resolver.resolve("https://maps.app.goo.gl/code299")  # a recent one is remembered
    assert len(hops) == 300
    resolver.session.close()


# --------------------------------------------------------------------------- geocoder (sandbox)

def geocoder_settings(sb, **changes) -> config.GeocoderSettings:
    env = dict(sb.env(), GEOCODER_MIN_DELAY_SECONDS="0")
    env.update({key: str(value) for key, value in changes.items()})
    return config.load("geocoder", environ=env).geocoder


HTTP = config.HttpSettings(connect_timeout=3, read_timeout=5, max_attempts=2)


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory):
    path = tmp_path_factory.mktemp("geo") / "template.db"
    engine = make_engine(f"sqlite:///{path}", for_migrations=True)
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def lite(migrated_sqlite, tmp_path):
    """A migrated SQLite database of its own (the cache semantics on MySQL are tested with `engine`)."""
    path = tmp_path / "geo.db"
    shutil.copy(migrated_sqlite, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()
PAULISTA = {"logradouro": "Avenida Paulista", "numero": "1000", "cidade": "São Paulo", "estado": "SP",
            "cep": "01310100"}


def cache_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(geocodificacao)).scalar_one()


def test_nominatim_answers_are_cached_hits_and_misses(sandbox, engine):
    geocoder = Geocoder(geocoder_settings(sandbox), HTTP, engine)
    sandbox.reset_calls()
    hit = geocoder.lookup(address_query(PAULISTA))
    miss = geocoder.lookup(address_query(dict(PAULISTA, cidade="Cidade Fantasma", cep=None)))
    assert hit.found and hit.point.in_brazil() and not hit.cached
    assert not miss.found
    calls = sandbox.calls(system="nominatim")
    assert len(calls) == 2 and all("countrycodes=br" in c["path"] for c in calls)
    assert "street=Avenida+Paulista%2C+1000" in calls[0]["path"] and "postalcode=01310-100" in calls[0]["path"]
    assert calls[0]["user_agent"] == sandbox.env()["GEOCODER_USER_AGENT"]
    geocoder.close()

    again = Geocoder(geocoder_settings(sandbox), HTTP, engine)  # a new run: only the database remembers
    sandbox.reset_calls()
    assert again.lookup(address_query(PAULISTA)) == replace(hit, cached=True)
    assert not again.lookup(address_query(dict(PAULISTA, cidade="Cidade Fantasma", cep=None))).found
    assert sandbox.calls(system="nominatim") == [] and again.stats["cache"] == 2
    assert cache_rows(engine) == 2


def test_a_run_keeps_only_the_recent_answers_in_memory(sandbox, lite, monkeypatch):
    """Issue 14 §2: the answers a run keeps in memory are bounded (the recent ones); one that fell
    out is read again from the database cache, never asked again of the geocoder. Before, every
    answer of the run stayed in memory (the main growth of step 02 from 10,000 to 50,000 projects)."""
    monkeypatch.setattr(maplinks, "MEMO_SIZE", 50, raising=False)
    geocoder = Geocoder(geocoder_settings(sandbox), HTTP, lite)
    asked: list[Query] = []

    def call(query):
        asked.append(query)
        return SimpleNamespace(latitude=-23.5614, longitude=-46.6559, address=query.street)

    monkeypatch.setattr(geocoder, "_call", call)
    queries = [Query("endereco", f"Rua {n}, 1", "São Paulo", "SP") for n in range(300)]
    for query in queries:
        assert geocoder.lookup(query).found
    assert len(geocoder._memo) <= 50 and len(asked) == 300
    first = geocoder.lookup(queries[0])  # long out of memory: from the database, not the geocoder
    assert first.cached and first.description == "Rua 0, 1" and len(asked) == 300
    assert cache_rows(lite) == 300


def test_geocoder_errors_are_not_cached_and_stop_the_geocoder(sandbox, engine):
    sandbox.add_fault(system="nominatim", kind="status", status=503)
    geocoder = Geocoder(geocoder_settings(sandbox), HTTP, engine)
    with pytest.raises(TransientError, match="geocodificador indisponível"):
        geocoder.lookup(address_query(PAULISTA))
    calls = len(sandbox.calls(system="nominatim"))
    assert calls == HTTP.max_attempts
    with pytest.raises(TransientError):
        geocoder.lookup(Query("cep", cep="01310100"))
    assert len(sandbox.calls(system="nominatim")) == calls  # no further call this run
    assert cache_rows(engine) == 0
    geocoder.close()


def test_unreadable_answers_in_a_row_stop_the_geocoder(sandbox, lite):
    sandbox.add_fault(system="nominatim", kind="malformed")
    geocoder = Geocoder(geocoder_settings(sandbox), HTTP, lite)
    for city in ("Campinas", "Curitiba", "Recife"):
        with pytest.raises(BadResponse):
            geocoder.lookup(address_query(dict(PAULISTA, cidade=city)))
    with pytest.raises(TransientError, match="3 erros seguidos"):
        geocoder.lookup(address_query(dict(PAULISTA, cidade="Natal")))
    assert len(sandbox.calls(system="nominatim")) == 3 and cache_rows(lite) == 0


def test_nominatim_refusing_the_user_agent_is_a_configuration_error(sandbox, lite):
    geocoder = Geocoder(geocoder_settings(sandbox, GEOCODER_USER_AGENT="python-requests/2.31"), HTTP, lite)
    with pytest.raises(AuthError, match="GEOCODER_USER_AGENT"):
        geocoder.lookup(address_query(PAULISTA))
    assert cache_rows(lite) == 0


def test_google_gives_the_same_coordinates(sandbox, lite):
    nominatim = Geocoder(geocoder_settings(sandbox), HTTP, lite)
    google = Geocoder(geocoder_settings(sandbox, GEOCODER="google"), HTTP, lite)
    for query in (address_query(PAULISTA), Query("cep", cep="01310100")):
        assert google.lookup(query).point == nominatim.lookup(query).point
    assert not google.lookup(address_query(dict(PAULISTA, cidade="Cidade Fantasma", cep=None))).found
    paths = [c["path"] for c in sandbox.calls(system="google")]
    assert len(paths) == 3 and all("key=***" in p and "region=br" in p for p in paths)
    assert cache_key("google", address_query(PAULISTA)) != cache_key("nominatim", address_query(PAULISTA))
    assert cache_rows(lite) == 5  # the miss of Nominatim was never asked


def test_google_over_query_limit_is_retried_with_backoff(sandbox, lite):
    sandbox.configure(google_rps=4)  # 0.25 s between calls; our backoff waits longer than that
    google = Geocoder(geocoder_settings(sandbox, GEOCODER="google"), HTTP, lite)
    sandbox.reset_calls()
    assert google.lookup(address_query(PAULISTA)).found
    assert google.lookup(Query("cep", cep="01310100")).found
    assert len(sandbox.calls(system="google")) == 3  # the second query was refused once, then answered


# GEOCODER_MIN_DELAY_SECONDS=0.3 with the pacer's thinner margin (the spacing while it makes up a late
# caller's slot), minus float rounding of epoch times
PACED = 0.3 * Pacer.MIN_MARGIN - 1e-5


def test_a_retry_after_429_takes_its_turn_on_the_pacer(sandbox, lite, pacers):
    """A refused call's retry takes a slot of the geocoder's pacer, and the next query waits a whole
    interval after it. Pacing outside the session (geopy's RateLimiter) let the next query leave
    right after the retry, and a strict server refused that one too: one 429 became a cascade
    (8 calls for 5 ids in tests/e2e/test_02_treat.py; issue 16 §1)."""
    geocoder = Geocoder(geocoder_settings(sandbox, GEOCODER_MIN_DELAY_SECONDS="0.3"), HTTP, lite)
    sandbox.reset_calls()
    assert geocoder.lookup(address_query(PAULISTA)).found
    sandbox.add_fault(system="nominatim", kind="status", status=429, times=1)
    assert geocoder.lookup(Query("cep", cep="01310100")).found
    assert geocoder.lookup(address_query(dict(PAULISTA, numero="2000"))).found
    assert [c["status"] for c in sandbox.calls(system="nominatim")] == [200, 429, 200, 200]
    (paced,) = [pacer for pacer in pacers if pacer.slots]
    first, retry, after = gaps(paced.slots)
    assert first >= PACED and retry >= 0.25 - 1e-5 and after >= PACED  # 0.25: the shortest first backoff
    geocoder.close()


def test_google_is_paced_by_the_same_pacer(sandbox, lite, pacers):
    google = Geocoder(geocoder_settings(sandbox, GEOCODER="google", GEOCODER_MIN_DELAY_SECONDS="0.3"), HTTP, lite)
    for query in (address_query(PAULISTA), Query("cep", cep="01310100"), address_query(dict(PAULISTA, numero="2000"))):
        assert google.lookup(query).found
    (paced,) = [pacer for pacer in pacers if pacer.slots]
    assert len(paced.slots) == 3 and all(gap >= PACED for gap in gaps(paced.slots))
    google.close()


def test_google_request_denied_is_a_configuration_error(sandbox, lite):
    google = Geocoder(geocoder_settings(sandbox, GEOCODER="google", GOOGLE_MAPS_API_KEY="chave-errada-123"),
                      HTTP, lite)
    with pytest.raises(AuthError, match="REQUEST_DENIED") as caught:
        google.lookup(address_query(PAULISTA))
    assert "chave-errada-123" not in str(caught.value)
    assert cache_rows(lite) == 0


def test_cache_key_normalises_the_query():
    a = Query("endereco", "Avenida Paulista, 1000", "São Paulo", "SP", "01310100")
    b = Query("endereco", " avenida  PAULISTA, 1000", "Sao Paulo", "sp", "01310100")
    assert cache_key("nominatim", a) == cache_key("nominatim", b)
    assert cache_key("nominatim", a) != cache_key("nominatim", replace(a, kind="cep"))
    assert address_query({"logradouro": "Rua A", "numero": "s/n", "cidade": "X"}).street == "Rua A"
    assert address_query({"logradouro": None, "cidade": "X"}) is None


# --------------------------------------------------------------------------- link → address → CEP

def locator(sb, engine) -> Locator:
    return Locator.from_settings(geocoder_settings(sb), HTTP, engine)


def test_link_wins_and_needs_no_geocoder(sandbox, lite):
    loc = locator(sandbox, lite)
    sandbox.reset_calls()
    found = loc.locate(dict(PAULISTA, link_localizacao=f"{sandbox.url}/l/chain-a"))
    assert (found.point, found.source, found.warnings) == (Point.of("-23.5614", "-46.6559"), "link", [])
    assert sandbox.calls(system="nominatim") == []
    # the resolution is cached too: a new run asks nothing
    sandbox.reset_calls()
    again = locator(sandbox, lite).locate(dict(PAULISTA, link_localizacao=f"{sandbox.url}/l/chain-a"))
    assert again.point == found.point and sandbox.calls() == []


def test_rejected_link_falls_back_to_address_then_cep(sandbox, lite):
    loc = locator(sandbox, lite)
    outside = loc.locate(dict(PAULISTA, link_localizacao="https://www.google.com/maps/@38.7223,-9.1393,12z"))
    assert outside.source == "endereco" and outside.point.in_brazil()
    assert outside.warnings == ["link 'https://www.google.com/maps/@38.7223,-9.1393,12z' aponta para fora do "
                                "Brasil (38.7223, -9.1393): usadas as coordenadas do endereço"]
    by_cep = loc.locate(dict(PAULISTA, cidade="Cidade Fantasma", estado=None, link_localizacao=None))
    assert by_cep.source == "cep" and by_cep.point.in_brazil()
    assert by_cep.warnings[-1].startswith("coordenadas pelo CEP: precisão baixa")
    nothing = loc.locate(dict(PAULISTA, cidade="Cidade Fantasma", cep=None, link_localizacao="ver com o vendedor"))
    assert nothing.point is None and nothing.error is None
    assert nothing.misses == ["link 'ver com o vendedor' não tem coordenadas", "endereço não encontrado", "sem CEP"]


def test_geocoder_answer_outside_brazil_is_rejected(sandbox, lite):
    loc = locator(sandbox, lite)
    query = address_query(PAULISTA)
    loc.geocoder.cache.put(cache_key("nominatim", query), "nominatim", query.kind, query.normalised(),
                           Answer(True, Point.of("38.7223", "-9.1393"), "Lisboa"))
    found = loc.locate(dict(PAULISTA, link_localizacao=None))
    assert found.source == "cep"
    assert found.warnings[0] == "endereço com coordenadas fora do Brasil (38.7223, -9.1393): usadas as coordenadas " \
                                "do CEP 01310-100"


def test_without_network_only_the_link_text_and_the_cache_count(sandbox, lite):
    loc = locator(sandbox, lite)
    sandbox.reset_calls()
    found = loc.locate(dict(PAULISTA, link_localizacao=f"{sandbox.url}/l/direct"), network=False)
    assert found.point is None and sandbox.calls() == []
    assert found.misses[:2] == [f"link '{sandbox.url}/l/direct' não seguido", "endereço não consultado"]
