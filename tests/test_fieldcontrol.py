"""lib/fieldcontrol: payload shapes, typed results, paging and the local re-check of every match,
and the errors each refusal maps to — against the FieldControl simulator of the sandbox."""

from __future__ import annotations

from datetime import datetime

import pytest

from lib.config import load
from lib.errors import AuthError, BadResponse, RemoteRejected
from lib.fieldcontrol import (
    FieldControl,
    NotFound,
    address_body,
    contact_body,
    customer_body,
    document_variants,
    location_body,
    parse_time,
    phone_body,
    phone_key,
    q_value,
    same_address,
    ticket_body,
)
from tests.conftest import sandbox_env

ADDRESS = address_body(cep="01310-100", logradouro="Avenida Paulista", numero="1000", complemento="ap 12",
                       bairro="Bela Vista", cidade="São Paulo", estado="SP", latitude="-23.5614000",
                       longitude="-46.6559000")


@pytest.fixture
def fc(sandbox, tmp_path):
    settings = load("fieldcontrol", environ=sandbox_env(sandbox, tmp_path, "sqlite://"))
    return FieldControl.from_settings(settings)


def test_payload_shapes():
    assert ADDRESS == {"zipCode": "01310100", "street": "Avenida Paulista", "number": "1000",
                       "neighborhood": "Bela Vista", "complement": "ap 12", "city": "São Paulo", "state": "SP",
                       "coords": {"latitude": -23.5614, "longitude": -46.6559}}
    assert address_body(cep=None, logradouro="R", numero=None, complemento=None, bairro=None, cidade="X",
                        estado="SP", latitude=None, longitude="1")["coords"] is None
    assert location_body(customer_id="MTox", address=ADDRESS)["name"] == "Avenida Paulista, 1000, ap 12"
    assert phone_body("(11) 98765-4321", primary=True) == {"number": "11987654321", "type": "mobile", "primary": True}
    assert phone_body("1134567890", primary=False)["type"] == "landline"
    body = ticket_body(name="Maria", subject="Instalação: Maria", message="m", external_id="isales:1:instalacao:2",
                       customer_id="c", service_id="s", location_id=None)
    assert "location" not in body and body["external"] == {"id": "isales:1:instalacao:2"}


def test_contact_and_moments():
    assert contact_body(phone="(11) 98765-4321", email=" maria@example.com ") == {
        "phone": "11987654321", "email": "maria@example.com"}
    assert contact_body(phone=None, email="") == {"phone": None, "email": None}
    body = customer_body(name="M", document="1", external_id="e", address=ADDRESS)
    assert "contact" not in body  # a body built without a contact is what earlier versions sent
    assert customer_body(name="M", document="1", external_id="e", address=ADDRESS,
                         contact={"phone": "1", "email": None})["contact"] == {"phone": "1", "email": None}
    expected = datetime(2025, 1, 1, 12, 0, 0)
    assert parse_time("2025-01-01T12:00:00Z") == expected
    assert parse_time("2025-01-01T12:00:00.000Z") == expected
    assert parse_time("2025-01-01T09:00:00-03:00") == expected
    assert parse_time("ontem") is None and parse_time(None) is None and parse_time("") is None


def test_normalisation_helpers():
    assert document_variants("529.982.247-25") == ["52998224725", "529.982.247-25"]
    assert document_variants("11222333000181")[1] == "11.222.333/0001-81"
    assert document_variants("") == []
    assert phone_key("+55 (11) 98765-4321") == "11987654321"
    assert q_value('Padaria "Pão Doce" Ltda') == "Pão Doce"
    assert q_value("Maria da Silva") == "Maria da Silva"
    stored = {"zipCode": "01310100", "street": "AVENIDA  PAULISTA", "number": "1000", "complement": None}
    assert same_address(stored, ADDRESS)  # case, spaces, a missing complement: same place
    assert not same_address({**stored, "complement": "ap 13"}, ADDRESS)
    assert not same_address({**stored, "number": "1002"}, ADDRESS)


def test_services_and_auth(fc, sandbox):
    services = {s.name: s for s in fc.services()}
    assert services["Instalação"].id == sandbox.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    assert services["Manutenção Preventiva (antigo)"].archived
    fc.session.headers["X-Api-Key"] = "chave-errada"
    with pytest.raises(AuthError) as info:
        fc.services()
    assert "FIELDCONTROL_API_KEY" in str(info.value) and "chave-errada" not in str(info.value)


def test_customer_found_by_digits_or_mask_and_rechecked(fc, sandbox):
    digits = sandbox.fc_add_customer("Fulano Digitado", "52998224725", address=ADDRESS)
    masked = sandbox.fc_add_customer("Fulano Mascarado", "111.444.777-35", address=ADDRESS)
    assert [c.id for c in fc.find_customers_by_document("529.982.247-25")] == [digits["id"]]
    found = fc.find_customers_by_document("11144477735")  # stored with its mask: the second query finds it
    assert [c.id for c in found] == [masked["id"]]
    assert found[0].primary_location_id == masked["primaryLocation"]["id"]
    assert fc.find_customers_by_document("39053344705") == []


def test_unknown_filter_is_rechecked_locally(fc, sandbox, monkeypatch):
    """An API ignoring `q` returns everything: only true matches come back, across pages."""
    for n in range(5):
        sandbox.fc_add_customer(f"Outro {n}", f"0000000000{n}", address=ADDRESS)
    wanted = sandbox.fc_add_customer("Alvo", "52998224725", address=ADDRESS)
    original = fc._pages

    def ignore_q(path, what, params=None):
        return original(path, what, {k: v for k, v in (params or {}).items() if k != "q"})

    monkeypatch.setattr(fc, "_pages", ignore_q)
    fc.page_size = 2
    assert [c.id for c in fc.find_customers_by_document("52998224725")] == [wanted["id"]]
    listed = [call for call in sandbox.calls("fieldcontrol", "GET /customers")]
    assert len(listed) >= 4  # several pages were read


def test_create_customer_sub_resources_and_tickets(fc, sandbox):
    customer = fc.create_customer(customer_body(name='Padaria "Pão" Ltda', document="52998224725",
                                                external_id="isales-sync:cliente:52998224725", address=ADDRESS))
    assert customer.primary_location_id and customer.external_id == "isales-sync:cliente:52998224725"
    other = fc.create_location(customer.id, location_body(customer_id=customer.id, address={**ADDRESS, "number": "7"}))
    assert {loc.id for loc in fc.locations(customer.id)} == {customer.primary_location_id, other.id}
    phone = fc.create_phone(customer.id, phone_body("11987654321", primary=True))
    assert [p.id for p in fc.phones(customer.id)] == [phone.id]
    email = fc.create_email(customer.id, {"address": "a@b.com", "type": "personal"})
    assert [e.address for e in fc.emails(customer.id)] == ["a@b.com"] and email.id
    service = sandbox.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    for n in range(3):
        fc.create_ticket(ticket_body(name='Padaria "Pão" Ltda', subject="Instalação: Padaria", message="m",
                                     external_id=f"isales:1:instalacao:{n}", customer_id=customer.id,
                                     service_id=service, location_id=other.id))
    fc.page_size = 1  # the match is found on a later page
    found = fc.find_tickets('Padaria "Pão" Ltda', "isales:1:instalacao:2")
    assert len(found) == 1 and found[0].location_id == other.id
    assert fc.find_tickets("Padaria", "isales:1:instalacao:9") == []
    updated = fc.update_customer(customer.id, customer_body(name="Padaria Pão Ltda", document="52998224725",
                                                            external_id="x", address=ADDRESS))
    assert updated.name == "Padaria Pão Ltda" and updated.primary_location_id == customer.primary_location_id


def test_refusals_map_to_errors(fc, sandbox):
    with pytest.raises(RemoteRejected) as info:
        fc.create_customer(customer_body(name="Sem Coordenadas", document="1", external_id="x",
                                         address={**ADDRESS, "coords": None, "state": "São Paulo"}))
    assert info.value.status == 422
    assert "address.state must be a two-letter state code" in str(info.value)
    assert "address.coords is required" in str(info.value)
    with pytest.raises(NotFound):
        fc.phones("bm9wZTox")
    sandbox.add_fault(system="fieldcontrol", route="GET /services", kind="html", times=1)
    with pytest.raises(BadResponse):
        fc.services()


def test_contact_ticket_update_orders_and_tasks(fc, sandbox):
    contact = contact_body(phone="11987654321", email="maria@example.com")
    customer = fc.create_customer(customer_body(name="Maria", document="52998224725", external_id="e",
                                                address=ADDRESS, contact=contact))
    assert (customer.contact_phone, customer.contact_email) == ("11987654321", "maria@example.com")
    moved = fc.update_customer(customer.id, customer_body(name="Maria", document="52998224725", external_id="e",
                                                          address=ADDRESS, contact={**contact, "phone": "1134567890"}))
    assert moved.contact_phone == "1134567890" and moved.address["street"] == "Avenida Paulista"
    service = sandbox.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    body = ticket_body(name="Maria", subject="Instalação: Maria", message="m1", external_id="isales:1:instalacao:2",
                       customer_id=customer.id, service_id=service, location_id=customer.primary_location_id)
    ticket = fc.create_ticket(body)
    assert ticket.editable and ticket.identifier
    assert fc.update_ticket(ticket.id, {**body, "message": "m2"}).message == "m2"
    assert fc.get_ticket(ticket.id).message == "m2"
    order = sandbox.fc_convert_ticket(ticket.id, tasks=2, status="scheduled", at="2026-12-01T10:00:00Z")
    assert not fc.get_ticket(ticket.id).editable
    with pytest.raises(RemoteRejected, match="convertido"):
        fc.update_ticket(ticket.id, {**body, "message": "m3"})
    other = fc.create_ticket({**body, "external": {"id": "isales:1:instalacao:3"}})
    sandbox.fc_convert_ticket(other.id, at="2026-11-01T10:00:00Z")
    found = fc.orders(ticket_id=ticket.id)
    assert [(o.id, o.identifier, o.ticket_id) for o in found] == [(order["id"], order["identifier"], ticket.id)]
    task = order["tasks"][0]["id"]
    sandbox.fc_move_task(task, "done", at="2026-12-03T16:00:00.500Z")
    fc.page_size = 1  # paging by updatedAt: the changed order still comes, once
    assert [o.id for o in fc.orders(updated_since=datetime(2026, 12, 2))] == [order["id"]]
    assert len(fc.orders(updated_since=datetime(2026, 10, 1))) == 2
    tasks = {task.id: task for task in fc.order_tasks(order["id"])}
    assert tasks[task].status == "done" and tasks[task].moment == datetime(2026, 12, 3, 16, 0, 0, 500000)
    assert tasks[task].order_id == order["id"] and len(tasks) == 2


def test_orders_filter_ignored_is_rechecked_locally(fc, sandbox, monkeypatch):
    customer = fc.create_customer(customer_body(name="Maria", document="1", external_id="e", address=ADDRESS))
    service = sandbox.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    tickets = [fc.create_ticket(ticket_body(name="Maria", subject="s", message="m", external_id=f"x:{n}",
                                            customer_id=customer.id, service_id=service, location_id=None))
               for n in range(3)]
    for n, ticket in enumerate(tickets):
        sandbox.fc_convert_ticket(ticket.id, at=f"2026-12-0{n + 1}T10:00:00Z")
    original = fc._pages

    def ignore_q(path, what, params=None):
        return original(path, what, {k: v for k, v in (params or {}).items() if k not in ("q", "sort")})

    monkeypatch.setattr(fc, "_pages", ignore_q)
    assert [o.ticket_id for o in fc.orders(ticket_id=tickets[1].id)] == [tickets[1].id]
    assert [o.ticket_id for o in fc.orders(updated_since=datetime(2026, 12, 2))] == [t.id for t in tickets[1:]]
