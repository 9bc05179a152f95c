"""The FieldControl simulator's grown contract: the customer's main contact, `PUT /tickets/{id}`,
orders and their tasks, and the controls that play FieldControl staff, technicians and people."""

from __future__ import annotations

import re

import pytest
import requests

from sandbox import Sandbox
from sandbox.state import StateError

from .conftest import customer_body

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _customer(api, **kwargs):
    response = api.fc("POST", "/customers", json=customer_body(**kwargs))
    assert response.status_code == 201, response.text
    return response.json()


def _ticket_body(customer, service_id, **extra):
    body = {"name": customer["name"], "external": {"id": "isales:4711:instalacao"},
            "subject": f"Instalação: {customer['name']}", "message": "VENDEDOR: João",
            "customer": {"id": customer["id"]}, "service": {"id": service_id},
            "location": {"id": customer["primaryLocation"]["id"]}}
    body.update(extra)
    return body


@pytest.fixture
def ticket(api, sb):
    customer = _customer(api)
    response = api.fc("POST", "/tickets", json=_ticket_body(customer, sb.env()["FIELDCONTROL_SERVICO_INSTALACAO"]))
    assert response.status_code == 201
    return response.json()


# -- contact ------------------------------------------------------------------------------------
def test_contact_is_stored_returned_and_kept_through_a_put_without_it(api):
    contact = {"email": "maria@example.com", "phone": "11987654321"}
    created = _customer(api, contact=contact)
    assert created["contact"] == contact
    assert api.fc("GET", f"/customers/{created['id']}").json()["contact"] == contact
    without = customer_body(name="Maria S.")
    assert api.fc("PUT", f"/customers/{created['id']}", json=without).json()["contact"] == contact
    changed = {"email": "nova@example.com", "phone": "11911112222"}
    put = api.fc("PUT", f"/customers/{created['id']}", json=customer_body(contact=changed))
    assert put.status_code == 200 and put.json()["contact"] == changed
    assert api.fc("GET", f"/customers/{created['id']}").json()["contact"] == changed
    assert _customer(api, name="Sem contato")["contact"] == {"email": None, "phone": None}


@pytest.mark.parametrize("contact, field", [("11987654321", "contact"), ({"phone": 11987654321}, "contact.phone"),
                                            ({"email": ["a@b.c"]}, "contact.email")])
def test_bad_contact_is_422(api, contact, field):
    response = api.fc("POST", "/customers", json=customer_body(contact=contact))
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


# -- PUT /tickets/{id} ----------------------------------------------------------------------------
def test_put_ticket_updates_a_pending_ticket(api, sb, ticket):
    other = _customer(api, name="Outra Pessoa", doc="11144477735")
    count = len(sb.fc_tickets())
    body = _ticket_body(other, sb.env()["FIELDCONTROL_SERVICO_AUMENTO"], subject="Aumento: Outra",
                        message="texto novo")
    response = api.fc("PUT", f"/tickets/{ticket['id']}", json=body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["subject"] == "Aumento: Outra" and updated["message"] == "texto novo"
    assert updated["location"] == {"id": other["primaryLocation"]["id"]}
    assert {k: updated[k] for k in ("id", "identifier", "status", "createdAt")} == \
        {k: ticket[k] for k in ("id", "identifier", "status", "createdAt")}
    assert api.fc("GET", f"/tickets/{ticket['id']}").json() == updated
    assert len(sb.fc_tickets()) == count  # updated in place, no new ticket


def test_put_ticket_validates_like_create_and_404s(api, sb, ticket):
    customer = sb.fc_customers()[-1]
    bad = api.fc("PUT", f"/tickets/{ticket['id']}", json=_ticket_body(customer, "bm9wZTox"))
    assert bad.status_code == 422 and "service.id" in [e["field"] for e in bad.json()["errors"]]
    assert api.fc("GET", f"/tickets/{ticket['id']}").json() == ticket  # unchanged
    assert api.fc("PUT", "/tickets/bm9wZTox", json=_ticket_body(customer, None)).status_code == 404


def test_put_ticket_after_conversion_or_other_status_is_422(api, sb, ticket):
    sb.fc_convert_ticket(ticket["id"])
    body = _ticket_body(sb.fc_customers()[-1], sb.env()["FIELDCONTROL_SERVICO_INSTALACAO"], subject="novo")
    refused = api.fc("PUT", f"/tickets/{ticket['id']}", json=body)
    assert refused.status_code == 422
    assert refused.json()["message"] == "ticket já convertido em ordem de serviço"
    assert api.fc("GET", f"/tickets/{ticket['id']}").json()["subject"] == ticket["subject"]
    second = api.fc("POST", "/tickets", json=body).json()
    sb.fc_edit("tickets", second["id"], {"status": "closed"})
    assert api.fc("PUT", f"/tickets/{second['id']}", json=body).status_code == 422


# -- orders and tasks -----------------------------------------------------------------------------
def test_convert_ticket_makes_an_order_with_tasks(api, sb, ticket):
    order = sb.fc_convert_ticket(ticket["id"], tasks=2, at="2025-03-01T10:00:00Z",
                                 scheduling={"date": "2025-03-05", "time": "09:30"})
    assert api.fc("GET", f"/tickets/{ticket['id']}").json()["status"] == "converted"
    listed = api.fc("GET", "/orders", params={"q": f'ticket_id:"{ticket["id"]}"'}).json()
    assert listed["totalCount"] == 1
    got = listed["items"][0]
    assert set(got) == {"id", "identifier", "archived", "description", "createdAt", "updatedAt", "external",
                        "customer", "service", "location", "ticket"}
    assert "status" not in got and got["ticket"] == {"id": ticket["id"]}
    assert re.match(r"^1#\d{8}$", got["identifier"]) and got["identifier"] != ticket["identifier"]
    assert got["customer"] == ticket["customer"] and got["service"] == ticket["service"]
    assert got["location"] == ticket["location"] and got["external"] == ticket["external"]
    assert got["description"] == ticket["message"] and got["updatedAt"] == "2025-03-01T10:00:00.000Z"
    assert api.fc("GET", f"/orders/{order['id']}").json() == got
    tasks = api.fc("GET", f"/orders/{order['id']}/tasks").json()
    assert tasks["totalCount"] == 2
    task = tasks["items"][0]
    assert set(task) == {"id", "status", "statusDescription", "scheduling", "startedAt", "completedAt",
                         "updatedAt", "employee", "order", "archived"}
    assert task["status"] == "scheduled" and task["scheduling"] == {"date": "2025-03-05", "time": "09:30"}
    assert task["order"] == {"id": order["id"]} and task["startedAt"] is None
    assert [t["id"] for t in order["tasks"]] == [t["id"] for t in tasks["items"]]
    assert api.fc("GET", "/orders/bm9wZTox/tasks").status_code == 404
    assert api.fc("GET", "/orders/bm9wZTox").status_code == 404
    with pytest.raises(StateError, match="não está pendente"):
        sb.fc_convert_ticket(ticket["id"])


def test_a_task_moves_through_its_statuses_with_dates(api, sb, ticket):
    order = sb.fc_convert_ticket(ticket["id"], at="2025-03-01T10:00:00Z")
    task_id = order["tasks"][0]["id"]
    sb.fc_move_task(task_id, "on-route", at="2025-03-05T08:00:00Z")
    sb.fc_move_task(task_id, "in-progress", at="2025-03-05T09:00:00Z")
    done = sb.fc_move_task(task_id, "done", at="2025-03-05T12:15:30.250Z")
    assert done["status"] == "done" and done["startedAt"] == "2025-03-05T09:00:00.000Z"
    assert done["completedAt"] == done["updatedAt"] == "2025-03-05T12:15:30.250Z"
    assert api.fc("GET", f"/orders/{order['id']}/tasks").json()["items"] == [done]
    assert api.fc("GET", f"/orders/{order['id']}").json()["updatedAt"] == "2025-03-05T12:15:30.250Z"
    reopened = sb.fc_move_task(task_id, "reported", at="2025-03-06T08:00:00Z", description="telhado quebrado")
    assert reopened["completedAt"] is None and reopened["statusDescription"] == "telhado quebrado"
    with pytest.raises(StateError, match="status de atividade desconhecido"):
        sb.fc_move_task(task_id, "cancelled")  # two Ls: not FieldControl's word
    with pytest.raises(StateError, match="data/hora inválida"):
        sb.fc_move_task(task_id, "done", at="ontem")
    with pytest.raises(StateError, match="id desconhecido"):
        sb.fc_move_task("bm9wZTox", "done")


def test_orders_filters_sort_and_paging(api, sb):
    service = sb.env()["FIELDCONTROL_SERVICO_INSTALACAO"]
    customer = _customer(api)
    orders = []
    for day in (3, 1, 2):
        ticket = api.fc("POST", "/tickets", json=_ticket_body(customer, service)).json()
        orders.append(sb.fc_convert_ticket(ticket["id"], at=f"2025-03-0{day}T10:00:00Z"))
    sb.fc_move_task(orders[1]["tasks"][0]["id"], "done", at="2025-03-10T10:00:00Z")  # day-1 order moves last

    def ids(**params):
        body = api.fc("GET", "/orders", params={"limit": 100, **params}).json()
        return [o["id"] for o in body["items"]]

    assert ids(sort="updated_at") == [orders[2]["id"], orders[0]["id"], orders[1]["id"]]
    assert ids(sort="-updated_at")[0] == orders[1]["id"]
    assert ids(q='updated_at>=:"2025-03-03T10:00:00Z"', sort="updated_at") == [orders[0]["id"], orders[1]["id"]]
    assert ids(q='updated_at>:"2025-03-03T10:00:00Z"') == [orders[1]["id"]]
    assert ids(q='updated_at<:"2025-03-03T10:00:00Z"') == [orders[2]["id"]]
    assert ids(q='created_at<=:"2025-03-02T10:00:00Z"', sort="created_at") == [orders[1]["id"], orders[2]["id"]]
    assert ids(q=f'identifier:"{orders[0]["identifier"]}"') == [orders[0]["id"]]
    assert len(ids(q=f'customer_id:"{customer["id"]}" service_id:"{service}"')) == 3
    assert ids(q='customer_id:"bm9wZTox"') == []
    assert len(ids(q='external_id:"isales:4711:instalacao"')) == 3
    assert len(ids(q='status:"done"')) == 3  # unsupported key: ignored
    page = api.fc("GET", "/orders", params={"sort": "updated_at", "limit": 2, "offset": 2}).json()
    assert page["totalCount"] == 3 and [o["id"] for o in page["items"]] == [orders[1]["id"]]
    assert api.fc("GET", "/orders", params={"limit": 101}).status_code == 422


# -- by hand ----------------------------------------------------------------------------------------
def test_archive_edit_and_delete_by_hand(api, sb, ticket):
    customer_id = ticket["customer"]["id"]
    edited = sb.fc_edit("customers", customer_id, {"documentNumber": "11144477735"})
    assert edited["documentNumber"] == "11144477735"
    assert api.fc("GET", f"/customers/{customer_id}").json()["documentNumber"] == "11144477735"
    sb.fc_archive("tickets", ticket["id"])
    assert api.fc("GET", f"/tickets/{ticket['id']}").json()["archived"] is True
    archived = api.fc("GET", "/tickets", params={"q": "archived:true", "limit": 100}).json()["items"]
    assert [t["id"] for t in archived] == [ticket["id"]]
    assert sb.fc_archive("tickets", ticket["id"], archived=False)["archived"] is False
    sb.fc_delete("tickets", ticket["id"])
    assert api.fc("GET", f"/tickets/{ticket['id']}").status_code == 404
    assert ticket["id"] not in [t["id"] for t in sb.fc_tickets()]
    with pytest.raises(StateError, match="coleção desconhecida"):
        sb.fc_archive("pessoas", customer_id)
    with pytest.raises(StateError, match="o id não muda"):
        sb.fc_edit("customers", customer_id, {"id": "outro"})


def test_editing_a_task_by_hand_moves_the_order_updated_at(api, sb, ticket):
    order = sb.fc_convert_ticket(ticket["id"], at="2025-03-01T10:00:00Z")
    sb.fc_archive("tasks", order["tasks"][0]["id"])
    after = api.fc("GET", f"/orders/{order['id']}").json()["updatedAt"]
    assert ISO_MS.match(after) and after > "2025-03-01T10:00:00.000Z"
    assert api.fc("GET", f"/orders/{order['id']}/tasks").json()["items"][0]["archived"] is True


def test_http_controls_for_orders_tasks_and_hand_edits(api, sb, ticket):
    base = f"{sb.url}/_sandbox"
    order = requests.post(f"{base}/fc_convert_ticket", json={"ticket_id": ticket["id"], "at": "2025-03-01T10:00:00Z"},
                          timeout=5).json()
    task_id = order["tasks"][0]["id"]
    moved = requests.post(f"{base}/fc_move_task", json={"task_id": task_id, "status": "done"}, timeout=5).json()
    assert moved["status"] == "done" and ISO_MS.match(moved["completedAt"])
    assert [o["id"] for o in requests.get(f"{base}/fc_orders", timeout=5).json()] == [order["id"]]
    assert requests.get(f"{base}/fc_tasks", params={"order_id": order["id"]}, timeout=5).json() == [moved]
    assert requests.post(f"{base}/fc_archive", json={"collection": "orders", "obj_id": order["id"]},
                         timeout=5).json()["archived"] is True
    edit = requests.post(f"{base}/fc_edit", json={"collection": "customers", "obj_id": ticket["customer"]["id"],
                                                  "fields": {"name": "Editado à mão"}}, timeout=5)
    assert edit.json()["name"] == "Editado à mão"
    assert requests.post(f"{base}/fc_delete", json={"collection": "tickets", "obj_id": ticket["id"]}, timeout=5).ok
    refused = requests.post(f"{base}/fc_move_task", json={"task_id": task_id, "status": "feito"}, timeout=5)
    assert refused.status_code == 400 and "status de atividade desconhecido" in refused.json()["erro"]


def test_orders_survive_a_restart(tmp_path):
    path = tmp_path / "estado.json"
    with Sandbox(projetos=5, seed=3, estado=path) as first:
        customer = first.fc_add_customer("Com Contato", "52998224725", contact={"email": "a@b.c", "phone": "1"},
                                         address=customer_body()["address"])
        made = first.fc_tickets()[0]
        order = first.fc_convert_ticket(made["id"], at="2025-03-01T10:00:00Z")
        first.fc_move_task(order["tasks"][0]["id"], "in-progress", at="2025-03-02T10:00:00Z")
    with Sandbox(projetos=5, seed=3, estado=path) as second:
        assert [o["id"] for o in second.fc_orders()] == [order["id"]]
        assert second.fc_tasks(order["id"])[0]["status"] == "in-progress"
        assert next(c for c in second.fc_customers() if c["id"] == customer["id"])["contact"]["email"] == "a@b.c"
        again = second.fc_convert_ticket(second.fc_tickets()[1]["id"])
        assert again["identifier"] != order["identifier"]
