"""The whole pipeline 00 → 04 as a user runs it, with the e-mail report sent to a local SMTP server,
a second run that writes nothing, and a move in iSales that becomes history and a cancellation."""

from __future__ import annotations

import email
import email.policy
import json

import lib.db.schema as t
from lib.db.engine import make_engine
from tests.conftest import sandbox_env

STEPS = ("01", "02", "03", "04")


def _pipeline(run, env) -> dict[str, int]:
    codes = {}
    for step in STEPS:
        result = run(step, env=env)
        codes[step] = result.returncode
        assert result.returncode in (0, 3), f"passo {step}: {result.returncode}\n{result.stderr[-3000:]}"
    return codes


def _writes(sb) -> int:
    return sum(1 for call in sb.calls(system="fieldcontrol") if call["method"] in ("POST", "PUT"))


def test_pipeline_sends_the_report_and_a_second_run_writes_nothing(run, sandbox, tmp_path, db_url, smtp_server):
    env = sandbox_env(sandbox, tmp_path, db_url, **smtp_server.env())
    assert run("00", env=env).returncode == 0
    _pipeline(run, env)

    ours = [ticket for ticket in sandbox.fc_tickets() if (ticket["external"]["id"] or "").startswith("isales:")]
    assert ours, "nenhum ticket criado"
    reports = [email.message_from_bytes(e.content, policy=email.policy.default) for e in smtp_server.envelopes]
    push_reports = [m for m in reports if "OS criada" in m["Subject"]]
    assert len(push_reports) == 1
    assert push_reports[0]["Subject"].startswith(f"[iSales→FieldControl] {len(ours)} OS criada")
    text = push_reports[0].get_body(("plain",)).get_content()
    for ticket in ours:
        # the field team knows a ticket by its identifier; the API id is for -v only
        assert ticket["identifier"] in text and ticket["id"] not in text
    assert smtp_server.logins == [("relatorio", "senha-smtp-teste")] * len(smtp_server.envelopes)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        adopted = conn.execute(t.cliente.select().where(t.cliente.c.field_id.is_not(None),
                                                        t.cliente.c.criado_pelo_script.is_(False))).mappings().all()
    engine.dispose()
    assert adopted, "o sandbox semeia clientes cadastrados à mão: algum deveria ter sido adotado"
    for cliente in adopted:
        assert f"{cliente['nome']} | {'*' * (len(cliente['doc_pessoal']) - 4)}{cliente['doc_pessoal'][-4:]} | adotado" in text

    writes = _writes(sandbox)
    sandbox.reset_calls()
    _pipeline(run, env)
    assert _writes(sandbox) == 0
    assert not [c for c in sandbox.calls(system="nominatim")], "o geocodificador foi chamado de novo"
    assert writes > 0


def test_a_cancellation_after_installation_reaches_fieldcontrol_once(run, sandbox, tmp_path, db_url):
    env = sandbox_env(sandbox, tmp_path, db_url)
    assert run("00", env=env).returncode == 0
    _pipeline(run, env)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        sent = conn.execute(
            t.os.select().where(t.os.c.status == "instalacao", t.os.c.field_id.is_not(None)).order_by(t.os.c.id)
        ).mappings().first()
    assert sent is not None
    isales_id = int(sent["isales_id"])

    sandbox.move_card(isales_id, 20363)  # cancelled in iSales
    _pipeline(run, env)
    sandbox.move_card(isales_id, 20363)  # nothing new: a re-run changes nothing
    _pipeline(run, env)

    cancels = [k for k in sandbox.fc_tickets() if (k["external"]["id"] or "").startswith(f"isales:{isales_id}:cancelamento:")]
    assert len(cancels) == 1 and cancels[0]["subject"].startswith("Cancelamento: ")
    with engine.connect() as conn:
        history = conn.execute(
            t.os_status_historico.select().where(t.os_status_historico.c.os_id == sent["id"])
            .order_by(t.os_status_historico.c.id)).mappings().all()
    engine.dispose()
    assert [(h["status_anterior"], h["status"]) for h in history] == [(None, "instalacao"), ("instalacao", "cancelado")]
    assert [h["ticket_tipo"] for h in history] == ["instalacao", "cancelamento"]
    assert history[1]["ticket_field_id"] == cancels[0]["id"]
    pendencias = json.loads((tmp_path / "data" / "pendencias.json").read_text(encoding="utf-8"))
    assert all(item["isales_id"] != str(isales_id) for item in pendencias["pendencias"])
