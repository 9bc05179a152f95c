"""01_get_projetos_isales.py run as a user runs it: paginated funnel, bad token, iSales down, and a
canary token that must appear nowhere (stderr at DEBUG, data/ recursively, the database)."""

from __future__ import annotations

import socket
import uuid

from sqlalchemy import select

import lib.db.schema as t
from lib.db.engine import make_engine
from lib.jsonfiles import FILE_01, read_envelope
from sandbox import Sandbox
from tests.conftest import sandbox_env

INTERESSE = (17840, 20024, 20363)


def of_interest(sb) -> list[int]:
    return sorted(p["card"]["cliente_id"] for p in sb.projects() if p["card"]["coluna_id"] in INTERESSE)


def test_help_explains_the_options(run, tmp_path):
    result = run("01", "--help", env={})
    assert result.returncode == 0
    assert "--completo" in result.stdout and "--ids" in result.stdout and "códigos de saída" in result.stdout


def test_paginated_funnel_writes_every_card_of_interest(run, sandbox, tmp_path, migrated_db):
    sandbox.configure(paginado=True, page_size=4)
    result = run("01", env=sandbox_env(sandbox, tmp_path, migrated_db))
    assert result.returncode == 0, result.stderr
    data = read_envelope(tmp_path / "data" / FILE_01, "01", produced_by="01_get_projetos_isales.py")
    assert [p["isales_id"] for p in data["projetos"]] == of_interest(sandbox)
    assert data["origem"] == f"{sandbox.url}/isales/api"
    assert data["funil_id"] == sandbox.state.funnel_id and data["execucao_id"] == 1
    assert len(sandbox.calls("isales", "GET /funil-clientes")) == -(-data["contagens"]["cards_no_funil"] // 4) > 1
    assert "resumo da etapa 01" in result.stderr


def test_bad_token_exits_2_and_keeps_the_previous_file(run, sandbox, tmp_path, migrated_db):
    previous = tmp_path / "data" / FILE_01
    previous.parent.mkdir(parents=True)
    previous.write_text('{"etapa": "01", "anterior": true}\n', encoding="utf-8")
    result = run("01", env=sandbox_env(sandbox, tmp_path, migrated_db, ISALES_API_TOKEN="token-errado"))
    assert result.returncode == 2
    assert "recusou o token" in result.stderr and "ISALES_API_TOKEN" in result.stderr
    assert previous.read_text(encoding="utf-8") == '{"etapa": "01", "anterior": true}\n'
    assert not sandbox.calls("isales", "GET /clientes")


def test_isales_unreachable_exits_75_and_keeps_the_previous_file(run, sandbox, tmp_path, migrated_db):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    previous = tmp_path / "data" / FILE_01
    previous.parent.mkdir(parents=True)
    previous.write_text("anterior\n", encoding="utf-8")
    env = sandbox_env(sandbox, tmp_path, migrated_db, ISALES_API_URL=f"http://127.0.0.1:{port}/isales/api",
                      HTTP_MAX_TENTATIVAS=2)
    result = run("01", env=env)
    assert result.returncode == 75
    assert "conexão recusada" in result.stderr
    assert previous.read_text(encoding="utf-8") == "anterior\n"


def _everything_in(tmp_path, db_url: str) -> str:
    texts = [path.read_bytes().decode("utf-8", "replace") for path in (tmp_path / "data").rglob("*")
             if path.is_file() and not path.name.startswith("sync.db")]
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in t.metadata.sorted_tables:
                texts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
    finally:
        engine.dispose()
    return "\n".join(texts)


def test_canary_token_never_leaks(run, tmp_path, migrated_db):
    canary = f"canario-{uuid.uuid4().hex}"
    with Sandbox(projetos=12, seed=11, token=canary, isales_rpm=1_000_000) as sb:
        sb.add_fault("isales", "GET /funil-clientes", status=429, retry_after=0, times=1)
        sb.add_fault("isales", "GET /clientes", status=500, retry_after=0, times=1)
        sb.add_fault("isales", "GET /propostas", kind="html", times=1)  # a pending item with its reason
        sb.add_fault("isales", "GET /campo-customizado", kind="malformed", times=1)
        env = sandbox_env(sb, tmp_path, migrated_db)
        good = run("01", "-v", env=env)
        bad = run("01", "-v", env={**env, "ISALES_API_TOKEN": canary + "-errado"})
    assert good.returncode == 3, good.stderr
    assert bad.returncode == 2
    assert "api_token=***" in good.stderr  # urllib3's DEBUG lines were there, masked
    pendencias = read_envelope(tmp_path / "data" / FILE_01, "01", produced_by="01")["pendencias"]
    assert len(pendencias) == 2
    for text in (good.stdout, good.stderr, bad.stdout, bad.stderr, _everything_in(tmp_path, migrated_db)):
        assert canary not in text
        assert canary[len("canario-"):] not in text


def _local_phones(db_url: str) -> dict[int, str | None]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(t.os.c.isales_id, t.cliente.c.telefone)
                                .join(t.cliente, t.cliente.c.id == t.os.c.cliente_id))
            return {int(row.isales_id): row.telefone for row in rows}
    finally:
        engine.dispose()


def _cycle(run, env) -> dict:
    for step in ("01", "02", "03"):
        result = run(step, env=env)
        assert result.returncode in (0, 3), f"passo {step}: {result.returncode}\n{result.stderr[-3000:]}"
    return read_envelope(env["DATA_DIR"] + "/" + FILE_01, "01", produced_by="01")


def test_an_edit_that_does_not_move_the_card_arrives_in_the_next_run(run, sandbox, tmp_path, migrated_db):
    """Renamed card (its listing row changed): next run. Phone-only edit: when the rolling refresh
    reaches it (here the budget covers every card, so also the next run; with 0, never)."""
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    assert run("00", env=env).returncode == 0
    _cycle(run, env)
    stored = _local_phones(migrated_db)
    renamed, quiet = sorted(stored)[:2]
    name = next(p["cliente"]["nome"] for p in sandbox.projects() if p["card"]["cliente_id"] == renamed)
    # a name completed (the same person, lib/names.py), so that 03 takes it; the listing row changes
    sandbox.edit_cliente(renamed, nome=f"{name} Filho", telefone="(11) 91234-5678")
    sandbox.edit_cliente(quiet, telefone="(11) 98765-4321")

    data = _cycle(run, {**env, "ISALES_REFRESH_BUDGET": "0"})
    # (projects never stored, e.g. an invalid document pending at 02, are fetched as new every run)
    assert {p["isales_id"]: p["motivo"] for p in data["projetos"] if p["isales_id"] in stored} == \
        {renamed: "card_alterado"}
    phones = _local_phones(migrated_db)
    assert phones[renamed] == "11912345678" and phones[quiet] == stored[quiet]

    data = _cycle(run, env)  # default budget: 300 calls, ~100 cards, more than this funnel holds
    assert {p["isales_id"]: p["motivo"] for p in data["projetos"] if p["isales_id"] in stored} == \
        dict.fromkeys(stored, "renovacao")
    assert _local_phones(migrated_db)[quiet] == "11987654321"


def test_a_project_done_in_fieldcontrol_leaves_the_rotation_after_a_last_refresh(run, sandbox, tmp_path, migrated_db):
    """The task marked done by a technician comes back with 04; the next 01 refreshes the card one last
    time, and the one after leaves it out of the rolling refresh (it is still listed)."""
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    assert run("00", env=env).returncode == 0
    _cycle(run, env)
    assert run("04", env=env).returncode in (0, 3)
    ticket = next(tk for tk in sandbox.fc_tickets() if ":instalacao:" in (tk["external"]["id"] or ""))
    done = int(ticket["external"]["id"].split(":")[1])
    order = sandbox.fc_convert_ticket(ticket["id"])
    sandbox.fc_move_task(order["tasks"][0]["id"], "done")
    assert run("04", env=env).returncode in (0, 3)  # reads the task status back

    last = _cycle(run, env)
    assert {p["isales_id"]: p["motivo"] for p in last["projetos"]}.get(done) == "renovacao"
    after = _cycle(run, env)
    refreshed = {p["isales_id"] for p in after["projetos"] if p["motivo"] == "renovacao"}
    assert done not in refreshed and refreshed  # the others still rotate
    sandbox.edit_cliente(done, nome="Nome Depois da Instalação")  # a listing change still arrives
    assert {p["isales_id"]: p["motivo"] for p in _cycle(run, env)["projetos"]}.get(done) == "card_alterado"
