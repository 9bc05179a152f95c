"""The iSales simulator against docs/api/isales.md."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

CONTRACT_FIELDS = {"nome", "cpf", "email", "telefone", "telefone_secundario", "cep", "logradouro",
                   "numero", "complemento", "bairro", "cidade", "estado", "link_localizacao",
                   "data_fechamento"}
FUNNEL = {"funil_id": 9001, "desde": "2000-01-01"}


def test_funnel_plain_envelope(api):
    response = api.isales("/funil-clientes", **FUNNEL)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["funil_clientes"]
    card = body["funil_clientes"][0]
    assert isinstance(card["cliente_id"], int) and isinstance(card["coluna_id"], int)
    assert set(card["cliente"]) == {"nome", "vendedor"}
    assert len(body["funil_clientes"]) == 30


def test_funnel_date_window_filters_on_the_hidden_card_date(api, sb):
    projects = sb.projects()
    day = projects[5]["card"]["data_card"]
    expected = sorted(p["card"]["cliente_id"] for p in projects if p["card"]["data_card"] == day)
    body = api.isales("/funil-clientes", funil_id=9001, desde=day, ate=day).json()
    assert sorted(c["cliente_id"] for c in body["funil_clientes"]) == expected
    later = date.fromordinal(date.fromisoformat(max(p["card"]["data_card"] for p in projects)).toordinal() + 1)
    assert api.isales("/funil-clientes", funil_id=9001, desde=later.isoformat()).json() == {"funil_clientes": []}


def test_other_funnel_is_empty_and_missing_funnel_is_422(api):
    assert api.isales("/funil-clientes", funil_id=1234, desde="2000-01-01").json() == {"funil_clientes": []}
    missing = api.isales("/funil-clientes", desde="2000-01-01")
    assert missing.status_code == 422 and "funil_id" in missing.json()["errors"]
    assert api.isales("/funil-clientes", funil_id=9001, desde="ontem").status_code == 422


def test_unknown_params_are_ignored(api):
    plain = api.isales("/funil-clientes", **FUNNEL).json()
    noisy = api.isales("/funil-clientes", **FUNNEL, page=2, per_page=5, coluna_id=17840, foo="bar").json()
    assert noisy == plain  # not paginated: `page` means nothing, the full list again


def test_clientes_is_one_object_under_a_plural_key(api, sb):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    body = api.isales("/clientes", cliente_id=cliente_id).json()
    assert list(body) == ["clientes"]
    assert isinstance(body["clientes"], dict)
    assert set(body["clientes"]) == CONTRACT_FIELDS


def test_unknown_client_404_or_null_by_config(api, sb):
    assert api.isales("/clientes", cliente_id=99999999).status_code == 404
    assert api.isales("/clientes", cliente_id="abc").status_code == 404
    sb.configure(cliente_inexistente="null")
    response = api.isales("/clientes", cliente_id=99999999)
    assert response.status_code == 200 and response.json() == {"clientes": None}


@pytest.mark.parametrize("value", [{}, None, []])
def test_no_proposal_shapes(api, sb, value):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    sb.edit_proposta(cliente_id, value)
    assert api.isales("/propostas", cliente_id=cliente_id).json() == {"propostas": value}


def test_proposal_object(api, sb):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    proposal = {"mod_descricao": "12x Módulo 550W", "inv_descricao": "Inversor 5kW", "inv2_descricao": None,
                "inv3_descricao": "", "valor_final": "45.900,00"}
    sb.edit_proposta(cliente_id, proposal)
    assert api.isales("/propostas", cliente_id=cliente_id).json() == {"propostas": proposal}


def test_custom_fields_by_label_merge_replace_remove(api, sb):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    sb.edit_campos(cliente_id, {"Forma de Pagamento": "À VISTA", "ACESSO": ["Cão no local"]}, replace=True)
    assert api.isales("/campo-customizado", cliente_id=cliente_id).json() == {
        "clientes": {"Forma de Pagamento": "À VISTA", "ACESSO": ["Cão no local"]}}
    sb.edit_campos(cliente_id, {"OBSERVAÇÕES": None}, remove=["ACESSO"])
    assert api.isales("/campo-customizado", cliente_id=cliente_id).json()["clientes"] == {
        "Forma de Pagamento": "À VISTA", "OBSERVAÇÕES": None}


def test_laravel_json_encoding_escapes_unicode_and_slashes(api, sb):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    sb.edit_cliente(cliente_id, nome="José Ávila", link_localizacao="https://www.google.com/maps?q=-23.5,-46.6")
    raw = api.isales("/clientes", cliente_id=cliente_id).text
    assert "Jos\\u00e9" in raw and "https:\\/\\/www.google.com" in raw
    assert json.loads(raw)["clientes"]["nome"] == "José Ávila"


def test_bad_token_with_accept_json_is_401(api):
    for token in ("errado", None, ""):
        response = api.isales("/clientes", token=token, cliente_id=4711)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthenticated."}


def test_bad_token_without_accept_json_redirects_to_an_html_login(api):
    response = api.isales("/funil-clientes", token="errado", accept_json=False, **FUNNEL)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{api.sb.url}/isales/login"
    login = api.get("/isales/login")
    assert login.status_code == 200 and login.headers["Content-Type"].startswith("text/html")


def test_rate_limit_per_token_answers_429_with_retry_after(make_sandbox):
    _, api = make_sandbox(isales_rpm=3)
    statuses = [api.isales("/clientes", cliente_id=4711).status_code for _ in range(4)]
    assert statuses[3] == 429 and 429 not in statuses[:3]
    limited = api.isales("/clientes", cliente_id=4711)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json() == {"message": "Too Many Attempts."}


def test_paginated_mode_laravel_paginator(make_sandbox):
    sb, api = make_sandbox(projetos=250, paginado=True)
    first = api.isales("/funil-clientes", **FUNNEL).json()
    assert first["current_page"] == 1 and first["per_page"] == 100
    assert first["total"] == 250 and first["last_page"] == 3 and len(first["funil_clientes"]) == 100
    seen, page = [], first
    while True:
        seen += [c["cliente_id"] for c in page["funil_clientes"]]
        if page["next_page_url"] is None:
            break
        query = parse_qs(urlsplit(page["next_page_url"]).query)
        assert query["funil_id"] == ["9001"] and query["api_token"] == ["token-sandbox"]
        page = api.http.get(page["next_page_url"], headers={"Accept": "application/json"}).json()
    assert page["current_page"] == 3 and len(seen) == 250 == len(set(seen))
    sb.configure(paginado=False)
    assert sorted(seen) == sorted(c["cliente_id"] for c in api.isales("/funil-clientes", **FUNNEL).json()["funil_clientes"])


def test_short_links_in_client_data_point_at_the_requested_host(api, sb):
    project = next(p for p in sb.projects() if "/l/" in (p["cliente"]["link_localizacao"] or ""))
    cliente_id = project["card"]["cliente_id"]
    response = api.http.get(f"{sb.url}/isales/api/clientes", params={"api_token": "token-sandbox",
                            "cliente_id": cliente_id}, headers={"Accept": "application/json",
                                                                "Host": f"localhost:{sb.port}"})
    assert response.json()["clientes"]["link_localizacao"].startswith(f"http://localhost:{sb.port}/l/")


def test_move_add_and_remove_cards(api, sb):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    sb.move_card(cliente_id, 20363)
    cards = {c["cliente_id"]: c for c in api.isales("/funil-clientes", **FUNNEL).json()["funil_clientes"]}
    assert cards[cliente_id]["coluna_id"] == 20363
    new_ids = sb.add_projects(2, coluna_id=17840, nome="Cliente Novo")
    today = date.today().isoformat()
    cards = {c["cliente_id"]: c for c in api.isales("/funil-clientes", funil_id=9001, desde=today).json()["funil_clientes"]}
    assert set(new_ids) <= set(cards) and all(cards[i]["coluna_id"] == 17840 for i in new_ids)
    assert api.isales("/clientes", cliente_id=new_ids[0]).json()["clientes"]["nome"] == "Cliente Novo"
    [consent] = sb.add_projects(1, link_format="short_consent")
    link = api.isales("/clientes", cliente_id=consent).json()["clientes"]["link_localizacao"]
    assert api.http.get(link, allow_redirects=False).headers["Location"].startswith("https://consent.google.com/")
    sb.remove_card(cliente_id)
    assert cliente_id not in {c["cliente_id"] for c in api.isales("/funil-clientes", **FUNNEL).json()["funil_clientes"]}
    assert api.isales("/clientes", cliente_id=cliente_id).status_code == 200  # the client stays


def test_server_errors_have_html_bodies(api, sb):
    sb.add_fault(system="isales", kind="status", status=500, times=1)
    response = api.isales("/clientes", cliente_id=4711)
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("text/html")
