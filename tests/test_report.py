"""lib/report: the e-mail run report, sent to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import argparse
import email
import email.policy
from datetime import timedelta

import pytest

import lib.db.schema as t
from lib import run
from lib.clock import db_now
from lib.config import Settings
from lib.db import pending
from lib.errors import EXIT_OK, EXIT_PENDING
from lib.steps import review
from tests.conftest import Inbox, free_port

CANARY_PASSWORD = "canario-smtp-senha-991"


@pytest.fixture
def step_env(monkeypatch, tmp_path, migrated_db):
    for key in ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_STARTTLS",
                "RELATORIO_EMAIL_DE", "RELATORIO_EMAIL_PARA", "ENV_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _smtp(monkeypatch, inbox_or_port):
    inbox = inbox_or_port if isinstance(inbox_or_port, Inbox) else Inbox()
    if not isinstance(inbox_or_port, Inbox):
        inbox.port = inbox_or_port
    for key, value in inbox.env(CANARY_PASSWORD).items():
        monkeypatch.setenv(key, value)


def _push_body(ctx: run.RunContext) -> None:
    """What a run of 04 leaves behind: a customer and a ticket created, one pending item."""
    now = db_now() + timedelta(seconds=1)
    with ctx.engine.begin() as conn:
        cliente_id = conn.execute(t.cliente.insert().values(
            nome="Maria da Silva", doc_pessoal="52998224725", field_id="Y3VzdDox", criado_pelo_script=True)
        ).inserted_primary_key[0]
        os_id = conn.execute(t.os.insert().values(isales_id="4711", cliente_id=cliente_id, status="instalacao")
                             ).inserted_primary_key[0]
        hist_id = conn.execute(t.os_status_historico.insert().values(
            os_id=os_id, status="instalacao", enviado_field=True, ticket_tipo="instalacao",
            ticket_field_id="dGljazox", ticket_identificador="1#00004150")).inserted_primary_key[0]
        for kind, key, extra in (("customer", "customer:1", {"cliente_id": cliente_id}),
                                 ("ticket", f"ticket:{hist_id}", {"historico_id": hist_id})):
            conn.execute(t.acao_field.insert().values(
                chave=key, tipo=kind, estado="concluida", field_id="Y3VzdDox" if kind == "customer" else "dGljazox",
                criada_em=now, atualizada_em=now, concluida_em=now, **extra))
        pending.record(conn, "04", "acao:ticket:99", "FieldControl recusou (422): address.coords is required",
                       isales_id=4799)
    ctx.summary.add("ticket_instalacao", "criados")


def _args(**kwargs):
    return argparse.Namespace(verbose=False, sem_email=False, **kwargs)


def test_report_of_a_push_run_is_sent_with_both_parts(step_env, smtp_server):
    _smtp(step_env, smtp_server)
    code = run.run_step("04", _args(), _push_body, Settings)
    assert code == EXIT_PENDING
    assert len(smtp_server.envelopes) == 1
    envelope = smtp_server.envelopes[0]
    assert sorted(envelope.rcpt_tos) == ["gerencia@solar.example", "operacao@solar.example"]
    assert smtp_server.logins == [("relatorio", CANARY_PASSWORD)]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"].startswith("[iSales→FieldControl] 1 OS criada, 1 pendência — ")
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
             if part.get_content_type() in ("text/plain", "text/html")}
    assert set(parts) == {"text/plain", "text/html"}
    for body in parts.values():
        assert "Maria da Silva" in body and "*******4725" in body and "52998224725" not in body
        assert "Instalação" in body and "1#00004150" in body and "dGljazox" not in body  # the human number
        assert "address.coords is required" in body
        assert CANARY_PASSWORD not in body
    assert "<table" in parts["text/html"]
    assert CANARY_PASSWORD.encode() not in envelope.content


def _field_body(ctx: run.RunContext) -> None:
    """A run of 04 that learned a task done and one cancelled, with an item for the operator."""
    _push_body(ctx)
    with ctx.engine.begin() as conn:
        os_id = conn.execute(t.os.select()).first().id
        for status, note in (("done", "concluída"), ("canceled", "cancelada. Motivo/observação: telhado condenado"),
                             ("in-progress", "em execução")):
            conn.execute(t.os_status_historico.insert().values(
                os_id=os_id, status=status, origem="fieldcontrol", execucao_id=ctx.run_id, ticket_tipo="instalacao",
                ticket_identificador="1#00004143", data_status=db_now(), observacao=f"FieldControl: {note}"))
        review.report(conn, review.key("telefone", "UGhvbmU6MQ=="),
                      "telefone antigo (11) 9…-…21 do cliente Maria da Silva", isales_id=4711, run_id=ctx.run_id)


def test_report_lists_field_results_and_review_items(step_env, smtp_server):
    _smtp(step_env, smtp_server)
    assert run.run_step("04", _args(), _field_body, Settings) == EXIT_PENDING
    message = email.message_from_bytes(smtp_server.envelopes[0].content, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    done = text.split("Instalações concluídas no FieldControl: 1")[1].split("\n\n")[0]
    assert "1#00004143" in done and "4711" in done
    canceled = text.split("Canceladas no FieldControl: 1")[1].split("\n\n")[0]
    assert "telhado condenado" in canceled
    assert "em execução" not in text
    review_part = text.split("Revise no FieldControl")[1].split("\n\n")[0]
    assert "telefone antigo (11) 9…-…21 do cliente Maria da Silva" in review_part
    assert "revisar:telefone:UGhvbmU6MQ==" in review_part
    pending_part = text.split("Pendências abertas: 1")[1]  # the review item is listed once, in its own part
    assert "revisar:" not in pending_part.split("Contagens")[0]


def test_no_smtp_host_means_no_mail_and_no_warning(step_env, smtp_server):
    captured = {}

    def body(ctx):
        _push_body(ctx)
        captured["summary"] = ctx.summary

    assert run.run_step("04", _args(), body, Settings) == EXIT_PENDING
    assert smtp_server.envelopes == [] and captured["summary"].warnings == []


def test_sem_email_skips_the_report(step_env, smtp_server):
    _smtp(step_env, smtp_server)
    run.run_step("04", argparse.Namespace(verbose=False, sem_email=True), _push_body, Settings)
    assert smtp_server.envelopes == []


def test_other_steps_report_only_when_they_end_with_pending(step_env, smtp_server):
    _smtp(step_env, smtp_server)
    assert run.run_step("03", _args(), lambda ctx: None, Settings) == EXIT_OK
    assert smtp_server.envelopes == []

    def with_pending(ctx):
        with ctx.engine.begin() as conn:
            pending.record(conn, "02", "isales:4713", "documento inválido: CPF 123.456.789-00", isales_id=4713)

    assert run.run_step("02", _args(), with_pending, Settings) == EXIT_PENDING
    message = email.message_from_bytes(smtp_server.envelopes[0].content, policy=email.policy.default)
    assert message["Subject"].startswith("[iSales→FieldControl] etapa 02: 1 pendência")


def test_a_failure_to_send_is_a_warning_and_keeps_the_exit_code(step_env):
    _smtp(step_env, free_port())  # nobody listens there
    captured = {}

    def body(ctx):
        _push_body(ctx)
        captured["ctx"] = ctx

    assert run.run_step("04", _args(), body, Settings) == EXIT_PENDING
    warnings = captured["ctx"].summary.warnings
    assert len(warnings) == 1 and "relatório por e-mail não enviado" in warnings[0]
    with captured["ctx"].engine.connect() as conn:
        counts = conn.execute(t.execucao.select().order_by(t.execucao.c.id.desc())).mappings().first()["contagens"]
    assert "relatório por e-mail não enviado" in counts


def test_incomplete_smtp_configuration_is_a_warning(step_env):
    step_env.setenv("SMTP_HOST", "127.0.0.1")
    captured = {}

    def body(ctx):
        _push_body(ctx)
        captured["ctx"] = ctx

    assert run.run_step("04", _args(), body, Settings) == EXIT_PENDING
    assert "RELATORIO_EMAIL_PARA" in captured["ctx"].summary.warnings[0]
