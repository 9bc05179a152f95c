"""The FieldControl simulator against docs/api/fieldcontrol.md."""

from __future__ import annotations

import base64
import re
import time
import uuid

import pytest

from .conftest import customer_body

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def _create(api, **kwargs):
    response = api.fc("POST", "/customers", json=customer_body(**kwargs))
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("key", [None, "chave-errada"])
def test_missing_or_unknown_key_is_401_json(api, key):
    response = api.fc("GET", "/customers", key=key)
    assert response.status_code == 401 and "message" in response.json()


def test_list_envelope_and_default_limit(api, sb):
    for i in range(12):
        _create(api, name=f"Cliente {i}")
    body = api.fc("GET", "/customers").json()
    assert set(body) == {"items", "totalCount"}
    assert len(body["items"]) == 10 and body["totalCount"] == len(sb.fc_customers())
    page = api.fc("GET", "/customers", params={"limit": 5, "offset": 15}).json()
    assert [c["id"] for c in page["items"]] == [c["id"] for c in sb.fc_customers()[15:20]]


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": 0}, {"limit": "dez"}, {"offset": -1},
                                    {"offset": 200001}])
def test_bad_limit_or_offset_is_422(api, params):
    response = api.fc("GET", "/customers", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in params


def test_offset_at_the_bound_is_accepted(api):
    body = api.fc("GET", "/customers", params={"offset": 200000, "limit": 100}).json()
    assert body["items"] == [] and body["totalCount"] > 0


def test_unknown_params_and_unsupported_filters_return_the_full_list(api, sb):
    total = len(sb.fc_customers())
    for params in ({"documentNumber": "52998224725"}, {"cpf": "1"}, {"q": 'city:"Nenhuma"'},
                   {"q": "qualquer coisa"}, {"filter": "name eq 'x'"}):
        assert api.fc("GET", "/customers", params={**params, "limit": 100}).json()["totalCount"] == total


def test_filters_name_substring_and_exact_document(api):
    _create(api, name="Maria da Silva", doc="52998224725")
    _create(api, name="Mariana Souza", doc="529.982.247-25")
    by_name = api.fc("GET", "/customers", params={"q": 'name:"MARIA"', "limit": 100}).json()["items"]
    assert {"Maria da Silva", "Mariana Souza"} <= {c["name"] for c in by_name}
    by_doc = api.fc("GET", "/customers", params={"q": 'document_number:"52998224725"'}).json()["items"]
    assert [c["name"] for c in by_doc] == ["Maria da Silva"]  # the masked one is only found by re-checking


def test_created_at_comparison_and_archived(api):
    before = api.fc("GET", "/customers", params={"q": 'created_at>=:"2100-01-01T00:00:00Z"'}).json()
    assert before["totalCount"] == 0
    created = _create(api, name="Recente")
    since = api.fc("GET", "/customers", params={"q": f'created_at>=:"{created["createdAt"]}" archived:false'}).json()
    assert [c["id"] for c in since["items"]] == [created["id"]]
    assert api.fc("GET", "/customers", params={"q": "archived:true"}).json()["totalCount"] == 0


def test_sort(api):
    names = [c["name"] for c in api.fc("GET", "/customers", params={"sort": "name", "limit": 100}).json()["items"]]
    assert names == sorted(names, key=str.casefold)
    desc = [c["name"] for c in api.fc("GET", "/customers", params={"sort": "-name", "limit": 100}).json()["items"]]
    assert desc == names[::-1]


def test_create_customer_answer(api):
    customer = _create(api)
    assert base64.b64decode(customer["id"]).decode().endswith(":1")
    assert customer["primaryLocation"]["id"]
    assert ISO_Z.match(customer["createdAt"]) and "updatedAt" not in customer
    assert customer["external"] == {"id": "isales:4711"} and customer["archived"] is False
    assert {"id", "name", "code", "documentNumber", "address"} <= set(customer)
    assert api.fc("GET", f"/customers/{customer['id']}").json() == customer
    locations = api.fc("GET", f"/customers/{customer['id']}/locations").json()["items"]
    assert [loc["id"] for loc in locations] == [customer["primaryLocation"]["id"]]


def test_no_idempotency_a_repeated_post_duplicates(api, sb):
    first, second = _create(api, doc="11222333000181"), _create(api, doc="11222333000181")
    assert first["id"] != second["id"]
    assert sum(c["documentNumber"] == "11222333000181" for c in sb.fc_customers()) == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"name": ""}, "name"),
    ({"address": None}, "address"),
    ({"address": {"street": "Rua X"}}, "address.coords"),
    ({"address": {"coords": {"latitude": "-23.5", "longitude": -46.6}}}, "address.coords.latitude"),
    ({"address": {"coords": {"latitude": -23.5, "longitude": 181}}}, "address.coords.longitude"),
    ({"address": {"state": "São Paulo", "coords": {"latitude": -23.5, "longitude": -46.6}}}, "address.state"),
])
def test_customer_validation_422(api, change, field):
    body = customer_body()
    body.update(change)
    response = api.fc("POST", "/customers", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["type"] == "resourceValidationErr" and answer["message"]
    assert field in [e["field"] for e in answer["errors"]]


def test_invalid_json_body_is_422(api):
    response = api.fc("POST", "/customers", data="{nome:", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_put_customer_full_body(api):
    customer = _create(api)
    body = customer_body(name="Maria da Silva Souza")
    body["address"]["coords"] = {"latitude": -22.9, "longitude": -47.06}
    updated = api.fc("PUT", f"/customers/{customer['id']}", json=body)
    assert updated.status_code == 200 and updated.json()["name"] == "Maria da Silva Souza"
    location = api.fc("GET", f"/customers/{customer['id']}/locations").json()["items"][0]
    assert location["address"]["coords"] == {"latitude": -22.9, "longitude": -47.06}
    assert api.fc("PUT", f"/customers/{customer['id']}", json={"name": "Sem endereço"}).status_code == 422
    assert api.fc("PUT", "/customers/OTk5OTk6MQ==", json=body).status_code == 404


def test_locations_accept_postal_code_and_belong_to_their_customer(api, sb):
    a, b = _create(api, name="A"), _create(api, name="B")
    address = {"postalCode": "13010000", "street": "Rua X", "number": "1", "city": "Campinas", "state": "SP",
               "coords": {"latitude": -22.9, "longitude": -47.06}}
    created = api.fc("POST", f"/customers/{a['id']}/locations",
                     json={"name": "Sítio", "customer": {"id": a["id"]}, "address": address})
    assert created.status_code == 201
    assert created.json()["address"]["zipCode"] == "13010000" and created.json()["customer"] == {"id": a["id"]}
    wrong = api.fc("POST", f"/customers/{a['id']}/locations", json={"customer": {"id": b["id"]}, "address": address})
    assert wrong.status_code == 422
    assert len(api.fc("GET", f"/customers/{a['id']}/locations").json()["items"]) == 2
    assert len(api.fc("GET", f"/customers/{b['id']}/locations").json()["items"]) == 1
    moved = api.fc("PUT", f"/customers/{a['id']}/locations/{created.json()['id']}",
                   json={"name": "Sítio novo", "address": {**address, "coords": {"latitude": -22.8, "longitude": -47.0}}})
    assert moved.status_code == 200 and moved.json()["name"] == "Sítio novo"
    assert api.fc("PUT", f"/customers/{b['id']}/locations/{created.json()['id']}",
                  json={"address": address}).status_code == 404
    assert api.fc("POST", "/customers/OTk5OTk6MQ==/locations", json={"address": address}).status_code == 404


def test_phones_and_emails(api, sb):
    customer = _create(api)
    phone = api.fc("POST", f"/customers/{customer['id']}/phones",
                   json={"number": "11987654321", "type": "mobile", "primary": True})
    email = api.fc("POST", f"/customers/{customer['id']}/emails",
                   json={"address": "maria@example.com", "type": "personal"})
    assert phone.status_code == 201 and email.status_code == 201
    assert api.fc("POST", f"/customers/{customer['id']}/phones", json={"type": "mobile"}).status_code == 422
    assert api.fc("POST", f"/customers/{customer['id']}/emails", json={"address": ""}).status_code == 422
    assert [p["number"] for p in api.fc("GET", f"/customers/{customer['id']}/phones").json()["items"]] == ["11987654321"]
    assert api.fc("GET", f"/customers/{customer['id']}/emails").json()["totalCount"] == 1
    assert sb.fc_phones()[-1]["customer"] == {"id": customer["id"]}
    assert sb.fc_emails()[-1]["customer"] == {"id": customer["id"]}


def _ticket(api, owner, service_id, **extra):
    customer = owner
    body = {"name": customer["name"], "external": {"id": "isales:4711:instalacao"},
            "subject": f"Instalação: {customer['name']}", "message": "VENDEDOR: João",
            "customer": {"id": customer["id"]}, "service": {"id": service_id},
            "location": {"id": customer["primaryLocation"]["id"]}}
    body.update(extra)
    return api.fc("POST", "/tickets", json=body)


def test_ticket_answer_and_no_uniqueness_of_external_id(api, sb):
    customer = _create(api)
    service = sb.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    first, second = _ticket(api, customer, service), _ticket(api, customer, service)
    assert first.status_code == second.status_code == 201
    ticket = first.json()
    assert re.match(r"^1#\d{8}$", ticket["identifier"]) and ticket["status"] == "pending"
    assert ticket["cancelation"] is None and ISO_Z.match(ticket["createdAt"])
    internal = base64.b64decode(ticket["id"]).decode().rsplit(":", 1)[0]
    uuid.UUID(internal)
    assert ticket["external"] == {"id": "isales:4711:instalacao"} and first.json()["id"] != second.json()["id"]
    assert api.fc("GET", f"/tickets/{ticket['id']}").json() == ticket
    found = api.fc("GET", "/tickets", params={"q": f'name:"{customer["name"]}"', "limit": 100}).json()["items"]
    assert len([t for t in found if t["external"]["id"] == "isales:4711:instalacao"]) == 2
    assert api.fc("GET", "/tickets/bm9wZTox").status_code == 404


def test_ticket_validation(api, sb):
    a, b = _create(api, name="A"), _create(api, name="B")
    service = sb.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    cases = [({"subject": ""}, "subject"), ({"name": None}, "name"),
             ({"service": {"id": "bm9wZTox"}}, "service.id"), ({"customer": {"id": "bm9wZTox"}}, "customer.id"),
             ({"location": {"id": b["primaryLocation"]["id"]}}, "location.id")]
    for change, field in cases:
        response = _ticket(api, a, service, **change)
        assert response.status_code == 422, change
        assert field in [e["field"] for e in response.json()["errors"]]
    minimal = api.fc("POST", "/tickets", json={"name": "Avulso", "subject": "Visita"})
    assert minimal.status_code == 201


def test_services(api):
    services = api.fc("GET", "/services").json()["items"]
    assert {"Instalação", "Aumento de Sistema", "Cancelamento"} <= {s["name"] for s in services}
    assert any(s["archived"] for s in services)
    assert set(services[0]) == {"id", "name", "duration", "archived", "createdAt"}
    active = api.fc("GET", "/services", params={"q": "archived:false"}).json()
    assert active["totalCount"] == 3


def test_rate_limit_per_key_real_429_without_retry_after(make_sandbox):
    sb, api = make_sandbox(fc_rps=2.0)
    t0 = time.monotonic()
    assert api.fc("GET", "/services").status_code == 200
    time.sleep(max(0.0, t0 + 0.25 - time.monotonic()))
    refused = api.fc("GET", "/services")
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    time.sleep(max(0.0, t0 + 0.56 - time.monotonic()))
    # the 429 did not use the slot: 0.56 s after the first allowed call is enough
    assert api.fc("GET", "/services").status_code == 200
    assert api.fc("GET", "/services", key="outra").status_code == 401


def test_rate_limit_allows_a_client_paced_at_the_rate(make_sandbox):
    _, api = make_sandbox(fc_rps=10.0)
    t0 = time.monotonic()
    statuses = []
    for i in range(6):
        time.sleep(max(0.0, t0 + i * 0.1 - time.monotonic()))
        statuses.append(api.fc("GET", "/services").status_code)
    assert statuses == [200] * 6


def test_rate_limit_retry_after_switch(make_sandbox):
    _, api = make_sandbox(fc_rps=0.5, fc_retry_after=True)
    api.fc("GET", "/services")
    refused = api.fc("GET", "/services")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) in (1, 2)


def test_unknown_path_and_patch_are_404(api):
    assert api.fc("GET", "/nada").status_code == 404
    customer = _create(api)
    assert api.fc("PATCH", f"/customers/{customer['id']}", json={"name": "x"}).status_code == 404


def test_hand_made_customers_share_documents_with_isales(make_sandbox):
    sb, _ = make_sandbox(projetos=60)
    documents = {"".join(ch for ch in (p["cliente"]["cpf"] or "") if ch.isalnum()).upper()
                 for p in sb.projects()}
    shared = [c for c in sb.fc_customers() if c["documentNumber"]
              and "".join(ch for ch in c["documentNumber"] if ch.isalnum()) in documents]
    assert len(shared) >= 2
    assert any(c["documentNumber"].isalnum() for c in shared)
    assert any(not c["documentNumber"].isalnum() for c in shared)  # one typed with its mask
    assert all(c["external"]["id"] is None for c in shared)


def test_fc_add_customer_and_user_agent_logged(api, sb):
    made = sb.fc_add_customer("Digitado à Mão", "529.982.247-25")
    assert made["primaryLocation"] is None and made in sb.fc_customers()
    api.fc("GET", f"/customers/{made['id']}")
    assert sb.calls(system="fieldcontrol")[-1]["user_agent"] == "isales-field-sync/tests"
