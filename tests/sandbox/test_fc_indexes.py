"""The FieldControl simulator answers look-ups, pages and sub-resources without reading the whole
account (the bench runs it with 50,000 customers): proven structurally — the collections are
swapped for dicts that refuse to be scanned, so any route that walks every object answers 500."""

from __future__ import annotations

import pytest

from sandbox.documents import mask_cpf

from .conftest import customer_body


class NoScan(dict):
    """A collection that may be read by id only."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("a rota percorreu a coleção inteira")

    values = items = keys = __iter__ = _refuse


@pytest.fixture
def account(sb):
    """120 customers (one phone, one e-mail each), one ticket turned into an order with 2 tasks;
    then every collection refuses scans."""
    store = sb.state.fc
    with sb.state.lock:
        customers = []
        for i in range(120):
            customer = store.create_customer(customer_body(name=f"Cliente {i}", doc=f"{10_000_000_000 + i}"))
            store.create_phone(customer["id"], {"number": f"1199999{i:04d}", "type": "cell"})
            store.create_email(customer["id"], {"address": f"c{i}@example.com"})
            customers.append(customer)
        service = next(iter(store.service_ids().values()))
        ticket = store.create_ticket({"name": "OS", "subject": "Instalação", "customer": {"id": customers[7]["id"]},
                                      "service": {"id": service}})
        order = store.convert_ticket(ticket["id"], 2, "scheduled", None, "2025-03-01T10:00:00.000Z", None)
        expected = {name: list(store.data[name]) for name in store.data}
        for name in list(store.data):
            store.data[name] = NoScan(store.data[name])
    return {"customers": customers, "ticket": ticket, "order": order, "ids": expected}


def test_a_document_filter_reads_its_index(api, account):
    wanted = account["customers"][42]
    body = api.fc("GET", "/customers", params={"q": f'document_number:"{wanted["documentNumber"]}"'}).json()
    assert [c["id"] for c in body["items"]] == [wanted["id"]] and body["totalCount"] == 1
    assert api.fc("GET", "/customers", params={"q": 'document_number:"999"'}).json() == {"items": [], "totalCount": 0}


def test_a_page_by_offset_reads_only_that_page(api, account):
    ids = account["ids"]["customers"]
    body = api.fc("GET", "/customers", params={"limit": 100, "offset": 50}).json()
    assert [c["id"] for c in body["items"]] == ids[50:150] and body["totalCount"] == len(ids)


def test_sub_resources_and_tasks_read_their_index(api, account):
    customer = account["customers"][3]
    phones = api.fc("GET", f"/customers/{customer['id']}/phones").json()
    assert [p["number"] for p in phones["items"]] == ["11999990003"]
    emails = api.fc("GET", f"/customers/{customer['id']}/emails").json()
    assert [e["address"] for e in emails["items"]] == ["c3@example.com"]
    locations = api.fc("GET", f"/customers/{customer['id']}/locations").json()
    assert [loc["id"] for loc in locations["items"]] == [customer["primaryLocation"]["id"]]
    order = account["order"]
    tasks = api.fc("GET", f"/orders/{order['id']}/tasks").json()
    assert tasks["totalCount"] == 2 and {t["order"]["id"] for t in tasks["items"]} == {order["id"]}
    found = api.fc("GET", "/orders", params={"q": f'ticket_id:"{account["ticket"]["id"]}"'}).json()
    assert [o["id"] for o in found["items"]] == [order["id"]]


def test_indexes_follow_puts_hand_edits_and_deletes(api, sb):
    created = api.fc("POST", "/customers", json=customer_body(doc="52998224725")).json()

    def by_document(doc):
        body = api.fc("GET", "/customers", params={"q": f'document_number:"{doc}"'}).json()
        return [c["id"] for c in body["items"]]

    assert by_document("52998224725") == [created["id"]]
    masked = mask_cpf("52998224725")
    assert api.fc("PUT", f"/customers/{created['id']}", json=customer_body(doc=masked)).status_code == 200
    assert by_document("52998224725") == [] and by_document(masked) == [created["id"]]
    sb.fc_edit("customers", created["id"], {"documentNumber": "11144477735"})
    assert by_document(masked) == [] and by_document("11144477735") == [created["id"]]
    phone = api.fc("POST", f"/customers/{created['id']}/phones", json={"number": "11988887777"}).json()
    other = sb.fc_add_customer("Outro", "39053344705")
    sb.fc_edit("phones", phone["id"], {"customer": {"id": other["id"]}})
    assert api.fc("GET", f"/customers/{created['id']}/phones").json()["items"] == []
    assert [p["id"] for p in api.fc("GET", f"/customers/{other['id']}/phones").json()["items"]] == [phone["id"]]
    sb.fc_delete("customers", created["id"])
    assert by_document("11144477735") == []
    total = api.fc("GET", "/customers", params={"limit": 100}).json()
    assert created["id"] not in [c["id"] for c in total["items"]] and total["totalCount"] == len(sb.fc_customers())


def test_a_restored_state_is_indexed(tmp_path):
    from sandbox import Sandbox

    path = tmp_path / "estado.json"
    with Sandbox(projetos=5, seed=3, estado=path) as first:
        first.fc_add_customer("Guardado", "52998224725")
    with Sandbox(projetos=5, seed=3, estado=path) as again:
        from .conftest import Api

        api = Api(again)
        try:
            body = api.fc("GET", "/customers", params={"q": 'document_number:"52998224725"'}).json()
        finally:
            api.close()
    assert [c["name"] for c in body["items"]] == ["Guardado"]
