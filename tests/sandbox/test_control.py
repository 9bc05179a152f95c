"""Control of the sandbox: call log and token masking, HTTP control routes, reset, determinism,
persistence across a restart, env lines, clean stop."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from sandbox import Sandbox
from sandbox.state import StateError

from .conftest import Api, customer_body

ENV_NAMES = ["ISALES_API_URL", "ISALES_API_TOKEN", "ISALES_FUNIL_ID", "ISALES_DESDE", "ISALES_COLUNA_INSTALACAO",
             "ISALES_COLUNA_AUMENTO", "ISALES_COLUNA_CANCELADO", "FIELDCONTROL_API_URL", "FIELDCONTROL_API_KEY",
             "FIELDCONTROL_SERVICO_INSTALACAO", "FIELDCONTROL_SERVICO_AUMENTO", "FIELDCONTROL_SERVICO_CANCELAMENTO",
             "GEOCODER_URL", "GEOCODER_USER_AGENT", "GOOGLE_GEOCODER_URL", "FIELDCONTROL_RATE_PER_SECOND",
             "GEOCODER_MIN_DELAY_SECONDS", "GOOGLE_MAPS_API_KEY"]


def test_call_log_fields_counts_and_secret_masking(api, sb):
    api.isales("/clientes", cliente_id=4711)
    api.google(address="Campinas")
    api.fc("POST", "/customers", json=customer_body())
    calls = sb.calls()
    assert [c["route"] for c in calls] == ["/clientes", "/maps/api/geocode/json", "/customers"]
    first = calls[0]
    assert set(first) >= {"system", "method", "route", "path", "status", "t", "fault"}
    assert first["path"] == "/isales/api/clientes?cliente_id=4711&api_token=***"
    assert "chave-google-sandbox" not in calls[1]["path"] and "key=***" in calls[1]["path"]
    assert calls[0]["t"] <= calls[1]["t"] <= calls[2]["t"]
    assert sb.call_counts() == {"GET /clientes": 1, "GET /maps/api/geocode/json": 1, "POST /customers": 1}
    assert [c["status"] for c in sb.calls(system="fieldcontrol", route="POST /customers")] == [201]
    assert sb.calls(method="GET", system="fieldcontrol") == []
    sb.reset_calls()
    assert sb.calls() == [] and sb.call_counts() == {}


def test_http_control_routes(api, sb):
    cliente_id = sb.projects()[0]["card"]["cliente_id"]
    base = f"{sb.url}/_sandbox"
    assert requests.get(f"{base}/health", timeout=5).json() == {"ok": True}
    assert requests.post(f"{base}/move_card", json={"cliente_id": cliente_id, "coluna_id": 20363}, timeout=5).ok
    assert requests.post(f"{base}/edit_cliente", json={"cliente_id": cliente_id, "nome": "Nome Novo"}, timeout=5).ok
    card = next(p for p in requests.get(f"{base}/projects", timeout=5).json() if p["card"]["cliente_id"] == cliente_id)
    assert card["card"]["coluna_id"] == 20363 and card["cliente"]["nome"] == "Nome Novo"
    fault = requests.post(f"{base}/add_fault", json={"system": "fieldcontrol", "route": "GET /services",
                                                      "kind": "status", "status": 503, "times": 1}, timeout=5)
    assert isinstance(fault.json(), int)
    assert api.fc("GET", "/services").status_code == 503
    assert requests.get(f"{base}/call_counts", timeout=5).json() == {"GET /services": 1}
    assert requests.get(f"{base}/calls", params={"route": "GET /services"}, timeout=5).json()[0]["fault"] == "status"
    ids = requests.post(f"{base}/add_projects", json={"n": 2, "coluna_id": 17840}, timeout=5).json()
    assert len(ids) == 2
    made = requests.post(f"{base}/fc_add_customer", json={"name": "À Mão", "document_number": "1"}, timeout=5).json()
    assert made["id"] in [c["id"] for c in requests.get(f"{base}/fc_customers", timeout=5).json()]
    assert requests.get(f"{base}/env", timeout=5).json() == sb.env()
    assert requests.post(f"{base}/move_card", json={"cliente_id": 1, "coluna_id": 1}, timeout=5).status_code == 400
    assert requests.post(f"{base}/move_card", json={"cliente": 1}, timeout=5).status_code == 400
    assert requests.post(f"{base}/add_fault", json={"kind": "nada"}, timeout=5).status_code == 400
    assert requests.get(f"{base}/move_card", timeout=5).status_code == 405
    assert requests.get(f"{base}/desconhecida", timeout=5).status_code == 404
    assert sb.call_counts() == {"GET /services": 1}  # control calls are not logged


def test_reset_regenerates_everything_from_the_seed(api, sb):
    original = sb.projects()
    cliente_id = original[0]["card"]["cliente_id"]
    sb.edit_cliente(cliente_id, nome="Trocado")
    api.fc("POST", "/customers", json=customer_body())
    sb.add_fault(kind="drop")
    sb.reset()
    assert sb.projects() == original
    assert not any(c["name"] == "Maria da Silva" and c["external"]["id"] for c in sb.fc_customers())
    assert sb.faults() == [] and sb.calls() == []
    assert api.fc("GET", "/services").status_code == 200


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = Sandbox(40, 7, hoje="2025-06-01"), Sandbox(40, 7, hoje="2025-06-01"), Sandbox(40, 8, hoje="2025-06-01")
    assert a.projects() == b.projects() and a.fc_customers() == b.fc_customers()
    assert a.projects() != c.projects()
    assert a.add_projects(3) == b.add_projects(3) and a.projects() == b.projects()


def test_persistence_across_a_restart(tmp_path):
    path = tmp_path / "estado.json"
    with Sandbox(20, 7, estado=path) as first:
        api = Api(first)
        created = api.fc("POST", "/customers", json=customer_body(name="Persistido")).json()
        cliente_id = first.projects()[0]["card"]["cliente_id"]
        first.edit_cliente(cliente_id, nome="Editado Antes do Restart")
        first.move_card(cliente_id, 20363)
    assert json.loads(path.read_text(encoding="utf-8"))["versao"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["estado.json"]  # no temporary files left behind
    with Sandbox(5, 99, estado=path) as second:  # the file wins over --projetos/--seed
        assert second.loaded_from_file
        api = Api(second)
        assert api.fc("GET", f"/customers/{created['id']}").json()["name"] == "Persistido"
        assert api.isales("/clientes", cliente_id=cliente_id).json()["clientes"]["nome"] == "Editado Antes do Restart"
        cards = api.isales("/funil-clientes", funil_id=9001, desde="2000-01-01").json()["funil_clientes"]
        assert len(cards) == 20 and {c["cliente_id"]: c["coluna_id"] for c in cards}[cliente_id] == 20363
        again = api.fc("POST", "/customers", json=customer_body(name="Depois")).json()
        assert again["id"] not in (created["id"], created["primaryLocation"]["id"])


def test_corrupt_state_file_is_a_clear_error(tmp_path):
    path = tmp_path / "estado.json"
    path.write_text("{ quebrado", encoding="utf-8")
    with pytest.raises(StateError, match="estado"):
        Sandbox(estado=path)


def test_env_lines(sb):
    env = sb.env()
    assert list(env) == ENV_NAMES
    assert env["ISALES_API_URL"] == f"{sb.url}/isales/api" and env["GOOGLE_GEOCODER_URL"] == f"{sb.url}/google"
    assert env["ISALES_FUNIL_ID"] == "9001" and env["ISALES_COLUNA_CANCELADO"] == "20363"
    assert env["FIELDCONTROL_SERVICO_CANCELAMENTO"] in {s["id"] for s in sb.fc_services()}
    assert min(p["card"]["data_card"] for p in sb.projects()) >= env["ISALES_DESDE"]


def test_stop_releases_the_port():
    sb = Sandbox(5).start()
    port = sb.port
    keep_alive = requests.Session()
    keep_alive.get(f"{sb.url}/_sandbox/health", timeout=5)
    sb.stop()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    with Sandbox(5, port=port) as again:
        assert requests.get(f"{again.url}/_sandbox/health", timeout=5).ok


def test_snapshot_restores_a_state_without_writing_it_back(tmp_path):
    from sandbox import Sandbox

    path = tmp_path / "estado.json"
    with Sandbox(projetos=5, seed=3) as original:
        original.fc_add_customer("Cliente Antigo", "52998224725")
        original.snapshot(path)
        customers = original.fc_customers()
    before = path.read_bytes()
    with Sandbox(estado=path, persistir=False) as copy:
        assert copy.loaded_from_file and copy.fc_customers() == customers
        copy.fc_add_customer("Outro", "11222333000181")
    assert path.read_bytes() == before
