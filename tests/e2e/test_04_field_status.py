"""A project whose task is marked done in FieldControl shows the `done` row in its history after the
next run of 04 (as a user runs it), and in that run's e-mail report; a run without changes writes
nothing and lists the orders once."""

from __future__ import annotations

import email
import email.policy

from sqlalchemy import select

import lib.db.schema as t
from lib.db.engine import make_engine
from tests.conftest import sandbox_env
from tests.steps import push_seed as seed


def test_done_task_comes_back_to_the_history_and_the_report(sandbox, tmp_path, migrated_db, run, smtp_server):
    env = {**sandbox_env(sandbox, tmp_path, migrated_db), **smtp_server.env()}
    engine = make_engine(migrated_db)
    with engine.begin() as conn:
        project = seed.add_project(conn, 4711)
    first = run("04", env=env)
    assert first.returncode == 0, first.stderr
    with engine.connect() as conn:
        sent = seed.history(conn, project["os_id"])[0]
    order = sandbox.fc_convert_ticket(sent["ticket_field_id"], status="scheduled", at="2026-12-01T10:00:00Z")
    sandbox.fc_move_task(order["tasks"][0]["id"], "done", at="2026-12-02T17:30:00Z")
    done = run("04", env=env)
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:
        rows = seed.history(conn, project["os_id"])
    field_rows = [(r["origem"], r["status"], r["status_anterior"]) for r in rows if r["origem"] == "fieldcontrol"]
    assert field_rows == [("fieldcontrol", "done", None)]
    message = email.message_from_bytes(smtp_server.envelopes[-1].content, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    part = text.split("Instalações concluídas no FieldControl: 1")[1].split("\n\n")[0]
    assert "4711" in part and sent["ticket_identificador"] in part and "02/12/2026 17:30" in part
    sandbox.reset_calls()
    again = run("04", env=env)
    assert again.returncode == 0
    writes = [c for c in sandbox.calls("fieldcontrol") if c["method"] != "GET"]
    assert writes == [] and sandbox.call_counts().get("GET /orders") == 1
    with engine.connect() as conn:
        assert len(list(conn.execute(select(t.os_status_historico)))) == len(rows)
    engine.dispose()
