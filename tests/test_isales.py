"""lib/isales: listing (plain, paginated, loops, odd shapes), details, auth failures — against the
sandbox, and against a scripted session for the shapes the sandbox never sends."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lib.config import HttpSettings
from lib.errors import AuthError, BadResponse, RecordError, TransientError
from lib.http import make_session
from lib.isales import IsalesClient, origin

FAST = HttpSettings(connect_timeout=2, read_timeout=5, max_attempts=4)
DESDE, ATE = date(2000, 1, 1), date(2100, 1, 1)


def client_for(sb, token: str | None = None) -> IsalesClient:
    return IsalesClient(f"{sb.url}/isales/api", token or sb.settings.token, make_session("iSales", FAST, pool_size=4))


def funnel_ids(sb) -> list[int]:
    return sorted(p["card"]["cliente_id"] for p in sb.projects() if p["card"]["funil_id"] == sb.state.funnel_id)


# --------------------------------------------------------------------------- against the sandbox

def test_plain_listing_has_every_card(sandbox):
    funnel = client_for(sandbox).list_cards(sandbox.state.funnel_id, DESDE, ATE)
    assert [card.cliente_id for card in funnel.cards] == funnel_ids(sandbox)
    assert funnel.pages == 1 and not funnel.invalid
    first = funnel.cards[0]
    assert first.raw["cliente_id"] == first.cliente_id and isinstance(first.coluna_id, int)


def test_paginated_listing_follows_every_page_on_our_own_url(sandbox):
    sandbox.configure(paginado=True, page_size=3)
    expected = funnel_ids(sandbox)
    funnel = client_for(sandbox).list_cards(sandbox.state.funnel_id, DESDE, ATE)
    assert [card.cliente_id for card in funnel.cards] == expected
    assert funnel.pages == -(-len(expected) // 3) > 1
    calls = sandbox.calls("isales", "GET /funil-clientes")
    pages = [parse_qs(urlsplit(call["path"]).query).get("page", ["1"])[0] for call in calls]
    assert pages == [str(n) for n in range(1, funnel.pages + 1)]
    assert all(call["path"].startswith("/isales/api/funil-clientes?api_token=***") for call in calls)


def test_window_is_sent_and_respected(sandbox):
    projects = sorted(sandbox.projects(), key=lambda p: p["card"]["data_card"])
    middle = date.fromisoformat(projects[len(projects) // 2]["card"]["data_card"])
    funnel = client_for(sandbox).list_cards(sandbox.state.funnel_id, middle, ATE)
    expected = sorted(p["card"]["cliente_id"] for p in projects if p["card"]["data_card"] >= middle.isoformat())
    assert [card.cliente_id for card in funnel.cards] == expected
    query = parse_qs(urlsplit(sandbox.calls("isales", "GET /funil-clientes")[-1]["path"]).query)
    assert query["desde"] == [middle.isoformat()] and query["ate"] == [ATE.isoformat()]


def test_bad_token_is_an_auth_error_naming_the_variable(sandbox):
    with pytest.raises(AuthError, match="ISALES_API_TOKEN") as info:
        client_for(sandbox, token="token-errado").list_cards(sandbox.state.funnel_id, DESDE, ATE)
    assert "token-errado" not in str(info.value)
    assert info.value.exit_code == 2


def test_login_redirect_and_html_page_are_auth_errors(sandbox):
    client = client_for(sandbox, token="token-errado")
    client.session.headers.pop("Accept")  # a Laravel app then redirects to its login page
    with pytest.raises(AuthError, match="redirecionou para /isales/login"):
        client.list_cards(sandbox.state.funnel_id, DESDE, ATE)
    sandbox.add_fault("isales", "GET /funil-clientes", kind="html", times=1)
    with pytest.raises(AuthError, match="página HTML"):
        client_for(sandbox).list_cards(sandbox.state.funnel_id, DESDE, ATE)


def test_truncated_listing_is_a_bad_response(sandbox):
    sandbox.add_fault("isales", "GET /funil-clientes", kind="malformed", times=1)
    with pytest.raises(BadResponse, match="JSON"):
        client_for(sandbox).list_cards(sandbox.state.funnel_id, DESDE, ATE)


def test_details_are_the_raw_objects(sandbox):
    project = sandbox.projects()[0]
    details = client_for(sandbox).details(project["card"]["cliente_id"])
    assert details.cliente == project["cliente"]
    assert details.proposta == project["proposta"]
    assert details.campos == project["campos"]


@pytest.mark.parametrize("empty", [{}, None, []])
def test_no_proposal_keeps_the_raw_value(sandbox, empty):
    cliente_id = sandbox.projects()[0]["card"]["cliente_id"]
    sandbox.edit_proposta(cliente_id, empty)
    details = client_for(sandbox).details(cliente_id)
    assert details.proposta == empty and not details.has_proposta


@pytest.mark.parametrize("mode", ["404", "null"])
def test_unknown_client_is_a_record_error(sandbox, mode):
    sandbox.configure(cliente_inexistente=mode)
    client = client_for(sandbox)
    with pytest.raises(RecordError, match="cliente não encontrado"):
        client.details(999999)
    assert [c["route"] for c in sandbox.calls("isales")] == ["/clientes"]  # no further calls


@pytest.mark.parametrize("kind,match", [("html", "página HTML"), ("malformed", "não é JSON válido")])
def test_html_or_truncated_details_are_bad_responses(sandbox, kind, match):
    cliente_id = sandbox.projects()[0]["card"]["cliente_id"]
    sandbox.add_fault("isales", "GET /campo-customizado", kind=kind, times=1)
    with pytest.raises(BadResponse, match=match):
        client_for(sandbox).details(cliente_id)


def test_5xx_and_dropped_connections_are_retried(sandbox):
    cliente_id = sandbox.projects()[0]["card"]["cliente_id"]
    sandbox.add_fault("isales", "GET /clientes", status=503, retry_after=0, times=2)
    sandbox.add_fault("isales", "GET /propostas", kind="drop", times=1)
    assert client_for(sandbox).details(cliente_id).cliente["nome"]
    statuses = [c["status"] for c in sandbox.calls("isales", "GET /clientes")]
    assert statuses == [503, 503, 200]
    assert len(sandbox.calls("isales", "GET /propostas")) == 2


def test_persistent_5xx_is_transient(sandbox):
    sandbox.add_fault("isales", "GET /clientes", status=500, retry_after=0)
    with pytest.raises(TransientError, match="500"):
        client_for(sandbox).details(sandbox.projects()[0]["card"]["cliente_id"])
    assert len(sandbox.calls("isales", "GET /clientes")) == FAST.max_attempts


def test_origin_keeps_no_credentials():
    assert origin("https://u:p@app.isales.company:8443/api/?api_token=x#f") == "https://app.isales.company:8443/api"


# --------------------------------------------------------------------------- shapes the sandbox never sends

def _response(status: int, body, headers: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.encoding = "utf-8"
    return response


def answered(response: requests.Response, into=None) -> requests.Response:
    """As HttpSession gives an answer: with `into`, a 200 answer's body goes to that file."""
    if into is not None and response.status_code == 200:
        into.seek(0)
        into.truncate()
        into.write(response.content)
        into.seek(0)
        response._content = b""
    return response


class ScriptedSession:
    """Answers each GET with `answer(page)`; remembers what was asked."""

    def __init__(self, answer):
        self.answer = answer
        self.asked: list[tuple[str, dict]] = []

    def get(self, url, params=None, into=None):
        self.asked.append((url, dict(params or {})))
        return answered(_response(200, self.answer(int((params or {}).get("page") or 1))), into)

    def close(self):
        pass


def card(n: int) -> dict:
    return {"cliente_id": n, "coluna_id": 17840, "cliente": {"nome": f"Cliente {n}"}}


def scripted(answer) -> tuple[IsalesClient, ScriptedSession]:
    session = ScriptedSession(answer)
    return IsalesClient("https://isales.test/api", "tok-roteiro", session), session


@pytest.mark.parametrize("shape", ["under_key", "top_level"])
def test_laravel_paginator_with_data_key(shape):
    def answer(page):
        paginator = {"current_page": page, "data": [card(page * 10 + i) for i in range(2)], "last_page": 3}
        return {"funil_clientes": paginator} if shape == "under_key" else paginator

    client, session = scripted(answer)
    funnel = client.list_cards(1, DESDE, ATE)
    assert [c.cliente_id for c in funnel.cards] == [10, 11, 20, 21, 30, 31] and funnel.pages == 3


def test_next_page_url_is_never_called_verbatim():
    def answer(page):
        return {"funil_clientes": [card(page)], "current_page": page,
                "next_page_url": f"https://outro-host.test/x?api_token=vazado&page={page + 1}" if page < 4 else None}

    client, session = scripted(answer)
    assert [c.cliente_id for c in client.list_cards(1, DESDE, ATE).cards] == [1, 2, 3, 4]
    assert {url for url, _ in session.asked} == {"https://isales.test/api/funil-clientes"}
    assert [params.get("page") for _, params in session.asked] == [None, 2, 3, 4]


@pytest.mark.parametrize("shape", ["plain", "under_key", "paginator_under_key", "paginator_top_level", "top_level_list"])
def test_the_listing_is_read_card_by_card_with_the_rows_json_would_give(shape, monkeypatch):
    """The answer is never parsed whole (json_body/json.loads of the listing cost ~50 MB at 50,000
    cards): each card comes from an item-by-item parse, with the very row, column and fingerprint a
    whole parse gives (a different fingerprint would refetch every card after an upgrade)."""
    import lib.isales as isales

    rows = [{"id": 9000 + n, "cliente_id": n, "coluna_id": 17840 + n % 2, "valor": 1.5 * n, "grande": 10 ** 15,
             "cliente": {"nome": f"Ção {n}", "vendedor": None, "tags": ["a", n]}, "data": {"item": n}}
            for n in range(1, 6)]
    body = {"plain": {"funil_clientes": rows}, "under_key": {"outro": [], "funil_clientes": rows},
            "paginator_under_key": {"funil_clientes": {"current_page": 1, "data": rows, "last_page": 1}},
            "paginator_top_level": {"current_page": 1, "data": rows, "last_page": 1},
            "top_level_list": rows}[shape]
    expected = isales.IsalesClient._cards(json.loads(json.dumps(rows)))  # what a whole parse gave

    def refused(*args, **kwargs):
        raise AssertionError("a listagem foi lida inteira")

    monkeypatch.setattr(isales, "json_body", refused)
    client, _ = scripted(lambda page: body)
    funnel = client.list_cards(1, DESDE, ATE)
    assert [(c.cliente_id, c.coluna_id, c.nome, c.fingerprint, c.raw) for c in funnel.cards] == \
        [(c.cliente_id, c.coluna_id, c.nome, c.fingerprint, c.raw) for c in expected.cards]
    assert funnel.cards[0].raw == rows[0]


def test_plain_top_level_list_is_accepted():
    client, _ = scripted(lambda page: [card(1), card(2)])
    assert [c.cliente_id for c in client.list_cards(1, DESDE, ATE).cards] == [1, 2]


def test_page_that_does_not_advance_is_an_error():
    client, _ = scripted(lambda page: {"funil_clientes": [card(page)], "current_page": 1, "last_page": 5})
    with pytest.raises(BadResponse, match="não avança"):
        client.list_cards(1, DESDE, ATE)


def test_repeated_page_content_is_a_loop():
    client, _ = scripted(lambda page: {"funil_clientes": [card(1)], "current_page": page, "next_page_url": "x"})
    with pytest.raises(BadResponse, match="laço"):
        client.list_cards(1, DESDE, ATE)


@pytest.mark.parametrize("body", [{"dados": []}, {"funil_clientes": "x"}, {"funil_clientes": None}, "texto"])
def test_unknown_shape_is_an_error(body):
    client, _ = scripted(lambda page: body)
    with pytest.raises(BadResponse, match="formato desconhecido"):
        client.list_cards(1, DESDE, ATE)


def test_page_in_another_shape_is_an_error():
    client, _ = scripted(lambda page: {"funil_clientes": [card(page)], "current_page": 1, "last_page": 2}
                         if page == 1 else {"funil_clientes": [card(page)]})
    with pytest.raises(BadResponse, match="página 2 veio sem paginação"):
        client.list_cards(1, DESDE, ATE)


def test_cards_without_client_id_are_reported_and_duplicates_merged():
    rows = [card(1), {"coluna_id": 17840}, "lixo", {**card(2), "coluna_id": 20024}, {**card(2), "coluna_id": 17840},
            {"cliente_id": "3", "coluna_id": "x"}]
    client, _ = scripted(lambda page: {"funil_clientes": rows})
    funnel = client.list_cards(1, DESDE, ATE)
    assert [(c.cliente_id, c.coluna_id) for c in funnel.cards] == [(1, 17840), (2, 17840), (3, None)]
    assert len(funnel.invalid) == 2 and funnel.duplicates == 1
    assert funnel.repeated == {2: [(4, 20024), (5, 17840)]}  # both entries, for step 01 to report
    assert "item 2 da listagem" in funnel.invalid[0]


def test_optional_pacing_of_isales_calls():
    from lib import config
    from lib.isales import IsalesClient

    environ = {"ISALES_API_TOKEN": "t-1234", "ISALES_FUNIL_ID": "1", "ISALES_COLUNA_INSTALACAO": "1",
               "ISALES_COLUNA_AUMENTO": "2", "ISALES_COLUNA_CANCELADO": "3"}
    unpaced = IsalesClient.from_settings(config.load("isales", environ=environ))
    paced = IsalesClient.from_settings(config.load("isales", environ={**environ, "ISALES_RATE_PER_MINUTE": "120"}))
    assert unpaced.session.pacer.interval == 0
    assert 0.5 <= paced.session.pacer.interval <= 0.55  # 2 per second, with the pacer's safety margin


def test_a_plain_listing_is_not_decoded_whole():
    """Issue 14 §2: the answer of a plain listing (every card in one body) goes to a file as it
    arrives and is read from there card by card; of its text only the start is decoded to tell an
    HTML page (the whole decode cost the body's size again, ~3.4 MB here, more with longer rows).
    What remains is the parser's buffer (~1 MB, any size)."""
    import tracemalloc

    rows = [{"cliente_id": n, "coluna_id": 17840, "cliente": {"nome": f"Cliente {n} Ávila", "vendedor": "Renan"}}
            for n in range(1, 30_001)]
    answer = _response(200, {"funil_clientes": rows})
    del rows

    class Discard:  # a store that keeps nothing: only the reading itself is measured
        size = 0

        def put(self, card, position):
            self.size += 1

        def __len__(self):
            return self.size

    body = answer.content
    client, _session = scripted(lambda page: answer)

    def get(url, params=None, into=None):  # the same prebuilt body, written as HttpSession writes it
        for start in range(0, len(body), 1 << 16):
            into.write(body[start:start + (1 << 16)])
        into.seek(0)
        return _response(200, b"")

    client.session.get = get
    tracemalloc.start()
    try:
        funnel = client.list_cards(1, DESDE, ATE, store=Discard())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert funnel.size == 30_000 and funnel.cards == []
    assert peak < 0.6 * len(body), (peak, len(body))
