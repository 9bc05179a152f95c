"""Step 04's last phase (lib/steps/push/status.py): the orders FieldControl staff make of our tickets
and their tasks' statuses come back as os_status_historico rows with origem='fieldcontrol', at the cost
of one listing of the changed orders plus one task listing per changed order of ours."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

import lib.db.schema as t
from lib import config
from lib.fieldcontrol import FieldControl
from lib.steps.push.status import StatusFollower
from tests.conftest import sandbox_env
from tests.steps import push_seed as seed


@pytest.fixture
def env(sandbox, tmp_path, migrated_db):
    return sandbox_env(sandbox, tmp_path, migrated_db)


def fc_of(env) -> FieldControl:
    return FieldControl.from_settings(config.load("fieldcontrol", environ=env))


def make_ticket(sandbox, engine, env, project: dict, kind: str = "instalacao") -> dict:
    """A ticket in the sandbox and its send recorded on the project's event, as step 04 leaves them."""
    with engine.connect() as conn:
        cliente = conn.execute(select(t.cliente).where(t.cliente.c.id == project["cliente_id"])).mappings().one()
    customer = sandbox.fc_add_customer(cliente["nome"], cliente["doc_pessoal"], address={
        "zipCode": "01310100", "street": "Avenida Paulista", "number": "1000", "neighborhood": "Bela Vista",
        "complement": None, "city": "São Paulo", "state": "SP", "coords": {"latitude": -23.56, "longitude": -46.65}})
    event = project["events"][-1]
    fc = fc_of(env)
    ticket = fc.create_ticket({"name": cliente["nome"], "subject": f"Instalação: {cliente['nome']}", "message": "m",
                               "external": {"id": f"isales:x:{kind}:{event}"}, "customer": {"id": customer["id"]},
                               "service": {"id": sandbox.env()["FIELDCONTROL_SERVICO_INSTALACAO"]},
                               "location": customer["primaryLocation"]})
    hist = t.os_status_historico
    with engine.begin() as conn:
        conn.execute(hist.update().where(hist.c.id == event).values(
            enviado_field=True, ticket_tipo=kind, ticket_field_id=ticket.id, ticket_identificador=ticket.identifier,
            enviado_em=datetime(2026, 11, 1, 12, 0)))
    return {"id": ticket.id, "identifier": ticket.identifier, "event": event}


@pytest.fixture
def project(engine):
    with engine.begin() as conn:
        return seed.add_project(conn, 4711)


def fc_rows(engine, os_id: int) -> list[tuple]:
    hist = t.os_status_historico
    with engine.connect() as conn:
        return [(r.status, r.status_anterior, r.data_status, r.ticket_identificador)
                for r in conn.execute(select(hist).where(hist.c.os_id == os_id, hist.c.origem == "fieldcontrol")
                                      .order_by(hist.c.id))]


def follow(engine, env, ids=None):
    return StatusFollower(engine, fc_of(env), run_id=None).run(ids)


def test_task_statuses_come_back_once_each(engine, env, sandbox, project):
    ticket = make_ticket(sandbox, engine, env, project)
    assert follow(engine, env).changes == []  # sent, not yet an order: one listing, nothing written
    order = sandbox.fc_convert_ticket(ticket["id"], status="scheduled", at="2026-12-01T10:00:00Z")
    task = order["tasks"][0]["id"]
    result = follow(engine, env)
    assert [c["status"] for c in result.changes] == ["scheduled"]
    assert "agendada (scheduled) para 01/12/2026 08:00" in result.changes[0]["observacao"]
    sandbox.fc_move_task(task, "in-progress", at="2026-12-02T08:30:00Z")
    sandbox.fc_move_task(task, "done", at="2026-12-02T15:45:10.250Z")
    sandbox.reset_calls()
    result = follow(engine, env)
    assert [c["status"] for c in result.changes] == ["done"]  # what the task holds now, with its own date
    assert fc_rows(engine, project["os_id"]) == [
        ("scheduled", None, datetime(2026, 12, 1, 10, 0), ticket["identifier"]),
        ("done", "scheduled", datetime(2026, 12, 2, 15, 45, 10), ticket["identifier"])]
    assert sandbox.call_counts().get("GET /orders/{id}/tasks") == 1
    observation = result.changes[0]["observacao"]
    assert order["identifier"] in observation and "concluída (done)" in observation
    # nothing changed since: the order at the mark is not read again, nothing is written
    sandbox.reset_calls()
    assert follow(engine, env).changes == []
    assert sandbox.call_counts().get("GET /orders/{id}/tasks") is None
    assert sandbox.call_counts().get("GET /orders") == 1


def test_cancelled_task_reason_and_other_orders_ignored(engine, env, sandbox, project):
    ticket = make_ticket(sandbox, engine, env, project)
    # an order made from a ticket typed by hand in FieldControl is none of ours
    stranger = next(tk for tk in sandbox.fc_tickets() if tk["external"]["id"] is None and tk["status"] == "pending")
    sandbox.fc_convert_ticket(stranger["id"], at="2026-12-01T09:00:00Z")
    order = sandbox.fc_convert_ticket(ticket["id"], tasks=2, at="2026-12-01T10:00:00Z")
    first, second = (task["id"] for task in order["tasks"])
    sandbox.fc_move_task(first, "canceled", at="2026-12-01T11:00:00Z", description="cliente desistiu")
    sandbox.reset_calls()
    result = follow(engine, env)
    assert sorted(c["status"] for c in result.changes) == ["canceled", "scheduled"]
    assert sandbox.call_counts().get("GET /orders/{id}/tasks") == 1  # only our order
    canceled = next(c for c in result.changes if c["status"] == "canceled")
    assert "cliente desistiu" in canceled["observacao"]
    sandbox.fc_move_task(second, "canceled", at="2026-12-01T12:00:00Z")
    assert [c["status"] for c in follow(engine, env).changes] == ["canceled"]


def test_ids_ask_for_each_ticket_order(engine, env, sandbox, project):
    ticket = make_ticket(sandbox, engine, env, project)
    sandbox.fc_convert_ticket(ticket["id"], status="on-route", at="2026-12-01T10:00:00Z")
    sandbox.reset_calls()
    assert [c["status"] for c in follow(engine, env, ids=["4711"]).changes] == ["on-route"]
    listed = [c["path"] for c in sandbox.calls("fieldcontrol", "GET /orders")]
    assert len(listed) == 1 and "ticket_id" in listed[0]
    assert follow(engine, env, ids=["9999"]).changes == []  # no ticket of those projects: no call
    with engine.connect() as conn:
        assert conn.execute(select(t.marcador)).first() is None  # --ids never moves the mark
