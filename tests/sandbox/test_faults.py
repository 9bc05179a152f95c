"""Injected faults: status (429 with/without Retry-After, 5xx HTML, any 4xx), drop, commit-then-drop,
slow, html, malformed; matching by system, route template and method; rate and times."""

from __future__ import annotations

import json
import time

import pytest
import requests

from sandbox.faults import FaultError

from .conftest import customer_body


def test_429_with_and_without_retry_after(api, sb):
    sb.add_fault(system="isales", route="GET /clientes", kind="status", status=429, retry_after=7, times=1)
    sb.add_fault("isales", "GET /clientes", status=429, times=1)  # positional; kind inferred from status
    first, second = api.isales("/clientes", cliente_id=4711), api.isales("/clientes", cliente_id=4711)
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "7" and "Retry-After" not in second.headers


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_bodies(api, sb, status):
    sb.add_fault(kind="status", status=status)
    isales = api.isales("/clientes", cliente_id=4711)
    assert isales.status_code == status and isales.headers["Content-Type"].startswith("text/html")
    fc = api.fc("GET", "/services")
    assert fc.status_code == status and fc.headers["Content-Type"].startswith("text/plain")  # as the FC contract
    assert api.nominatim(q="Campinas").status_code == status


@pytest.mark.parametrize("status", [400, 404, 409, 418])
def test_any_4xx(api, sb, status):
    sb.add_fault(system="fieldcontrol", kind="status", status=status, times=1)
    assert api.fc("GET", "/services").status_code == status
    assert api.fc("GET", "/services").status_code == 200


def test_drop_cuts_the_connection_without_processing(api, sb):
    before = len(sb.fc_customers())
    sb.add_fault(system="fieldcontrol", route="POST /customers", kind="drop", times=1)
    with pytest.raises(requests.ConnectionError):
        api.fc("POST", "/customers", json=customer_body())
    assert len(sb.fc_customers()) == before
    [call] = sb.calls(route="POST /customers")
    assert call["fault"] == "drop" and call["status"] is None
    assert api.fc("POST", "/customers", json=customer_body()).status_code == 201


def test_commit_then_drop_stores_the_post_and_cuts_the_answer(api, sb):
    sb.add_fault(system="fieldcontrol", route="POST /customers", kind="commit_then_drop", times=1)
    with pytest.raises(requests.ConnectionError):
        api.fc("POST", "/customers", json=customer_body(name="Gravado Sem Resposta"))
    stored = [c for c in sb.fc_customers() if c["name"] == "Gravado Sem Resposta"]
    assert len(stored) == 1  # the client saw an error, yet the customer exists
    assert sb.calls(route="POST /customers")[-1]["status"] == 201


def test_slow_answer_triggers_client_read_timeouts(api, sb):
    sb.add_fault(system="fieldcontrol", route="GET /services", kind="slow", delay=0.6, times=2)
    with pytest.raises(requests.ReadTimeout):
        api.fc("GET", "/services", timeout=(3, 0.2))
    started = time.monotonic()
    assert api.fc("GET", "/services").status_code == 200
    assert time.monotonic() - started >= 0.6


def test_html_instead_of_json(api, sb):
    sb.add_fault(system="isales", route="/funil-clientes", kind="html", times=1)
    response = api.isales("/funil-clientes", funil_id=9001, desde="2000-01-01")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_malformed_json(api, sb):
    sb.add_fault(system="fieldcontrol", kind="malformed", times=1)
    response = api.fc("GET", "/services")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_matching_by_route_template_and_method(api, sb):
    customer = api.fc("POST", "/customers", json=customer_body()).json()
    sb.add_fault(system="fieldcontrol", route="GET /customers/{id}", kind="status", status=503)
    assert api.fc("GET", f"/customers/{customer['id']}").status_code == 503
    assert api.fc("GET", "/customers").status_code == 200
    assert api.fc("PUT", f"/customers/{customer['id']}", json=customer_body()).status_code == 200
    sb.clear_faults()
    sb.add_fault(route="/customers/{id}", method="PUT", kind="status", status=500)
    assert api.fc("GET", f"/customers/{customer['id']}").status_code == 200
    assert api.fc("PUT", f"/customers/{customer['id']}", json=customer_body()).status_code == 500


def test_system_filter(api, sb):
    sb.add_fault(system="nominatim", kind="status", status=503)
    assert api.nominatim(q="Campinas").status_code == 503
    assert api.google(address="Campinas").json()["status"] == "OK"


def test_times_and_deterministic_rate(make_sandbox):
    patterns = []
    for _ in range(2):
        sb, api = make_sandbox(seed=11)
        sb.add_fault(system="fieldcontrol", kind="status", status=500, rate=0.5)
        patterns.append([api.fc("GET", "/services").status_code for _ in range(30)])
    assert patterns[0] == patterns[1]
    assert 5 < patterns[0].count(500) < 25
    sb.clear_faults()
    sb.add_fault(system="fieldcontrol", kind="status", status=502, times=3)
    assert [api.fc("GET", "/services").status_code for _ in range(5)] == [502, 502, 502, 200, 200]


@pytest.mark.parametrize("kwargs", [{}, {"kind": "explode"}, {"kind": "status"}, {"kind": "slow"},
                                    {"kind": "slow_commit"},
                                    {"kind": "status", "status": 302},
                                    {"kind": "drop", "system": "erp"}, {"kind": "drop", "rate": 2},
                                    {"kind": "drop", "route": "POST /customers", "method": "GET"}])
def test_invalid_faults_are_refused(sb, kwargs):
    with pytest.raises(FaultError):
        sb.add_fault(**kwargs)


def test_server_side_latency_per_system(make_sandbox):
    _, api = make_sandbox(latency_ms={"fieldcontrol": 250})
    started = time.monotonic()
    assert api.fc("GET", "/services").status_code == 200
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    api.isales("/clientes", cliente_id=4711)
    assert time.monotonic() - started < 0.25


def test_remove_fault(api, sb):
    fault_id = sb.add_fault(system="fieldcontrol", kind="status", status=500)
    assert [f["id"] for f in sb.faults()] == [fault_id]
    assert sb.remove_fault(fault_id) is True and sb.faults() == []
    assert api.fc("GET", "/services").status_code == 200


def test_slow_commit_stores_the_write_only_after_the_client_gave_up(api, sb):
    """The real server may finish a write the client already abandoned: nothing is stored while the
    client waits, and the object appears once the delay has passed."""
    # the commit comes well after the client's 0.2 s: "not yet" below must hold even if this process
    # is descheduled for a while under CPU load
    sb.add_fault(system="fieldcontrol", route="POST /customers", kind="slow_commit", delay=5.0, times=1)
    with pytest.raises(requests.ReadTimeout):
        api.fc("POST", "/customers", json=customer_body(name="Gravado Depois"), timeout=(3, 0.2))
    assert [c for c in sb.fc_customers() if c["name"] == "Gravado Depois"] == []  # not yet committed
    deadline = time.monotonic() + 30
    while not [c for c in sb.fc_customers() if c["name"] == "Gravado Depois"]:
        assert time.monotonic() < deadline, "a escrita lenta nunca foi gravada"
        time.sleep(0.05)
    [call] = sb.calls(route="POST /customers")
    assert call["fault"] == "slow_commit" and call["status"] == 201


def test_hold_waits_for_release_then_processes(api, sb):
    import threading

    fault_id = sb.add_fault(system="fieldcontrol", route="POST /customers", kind="hold", times=1)
    answers = []
    worker = threading.Thread(target=lambda: answers.append(
        api.fc("POST", "/customers", json=customer_body(name="Segurado"), timeout=30)))
    worker.start()
    deadline = time.monotonic() + 30
    while sb.held() != {str(fault_id): 1}:
        assert time.monotonic() < deadline, "a requisição não chegou à trava"
        time.sleep(0.01)
    assert [c for c in sb.fc_customers() if c["name"] == "Segurado"] == []
    assert sb.release_fault(fault_id) is True
    worker.join(timeout=30)
    assert answers and answers[0].status_code == 201
    assert len([c for c in sb.fc_customers() if c["name"] == "Segurado"]) == 1
    assert sb.held() == {}
