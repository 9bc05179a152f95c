"""What an operator meets when running the steps by hand: a configured FieldControl service that is
archived, and --ids naming projects that match nothing — through the numbered scripts."""

from __future__ import annotations

import re

import pytest

from tests.conftest import sandbox_env


@pytest.fixture
def loaded(run, sandbox, tmp_path):
    """Steps 00–03 done on SQLite against the sandbox: the environment for the next steps."""
    env = sandbox_env(sandbox, tmp_path, f"sqlite:///{tmp_path / 'sync.db'}")
    for step in ("00", "01", "02", "03"):
        result = run(step, env=env)
        assert result.returncode in (0, 3), result.stderr[-3000:]
    return env


def test_an_archived_configured_service_is_a_configuration_error(run, sandbox, loaded):
    archived = next(s for s in sandbox.fc_services() if s["archived"])
    result = run("04", env={**loaded, "FIELDCONTROL_SERVICO_AUMENTO": archived["id"]})
    assert result.returncode == 2, result.stderr[-3000:]
    assert (f"FIELDCONTROL_SERVICO_AUMENTO={archived['id']} é o serviço arquivado '{archived['name']}'"
            in result.stderr)
    assert not [call for call in sandbox.calls("fieldcontrol") if call["method"] in ("POST", "PUT")]


def test_ids_that_match_nothing_are_named(run, sandbox, loaded):
    known = str(sandbox.projects()[0]["card"]["cliente_id"])
    fetched = run("01", "--ids", f"99999,{known}", env=loaded)
    assert "projeto 99999 pedido em --ids não está nas colunas de interesse" in fetched.stderr
    stored = run("03", "--ids", "99999", env=loaded)
    assert "projeto(s) 99999 de --ids não estão em 02_projetos_tratados.json" in stored.stderr
    sent = run("04", "--ids", "99998,99999", env=loaded)
    assert sent.returncode in (0, 3), sent.stderr[-3000:]
    assert "projetos 99998, 99999 de --ids não estão no banco local: nada a enviar" in sent.stderr
    dry = run("04", "--dry-run", "--ids", "99999", env=loaded)
    assert "projeto 99999 de --ids não está no banco local" in dry.stderr


def test_04_logs_say_what_happened_with_human_identifiers(run, sandbox, loaded):
    first = run("04", env=loaded)
    assert first.returncode in (0, 3), first.stderr[-3000:]
    tickets = [ticket for ticket in sandbox.fc_tickets()
               if str((ticket.get("external") or {}).get("id") or "").startswith("isales:")]
    ticket = tickets[0]
    assert f"criado ({ticket['identifier']})" in first.stderr  # "1#00004141", not the API id
    assert ticket["id"] not in first.stderr
    isales_id = ticket["external"]["id"].split(":")[1]
    nome = next(p["cliente"]["nome"] for p in sandbox.projects() if str(p["card"]["cliente_id"]) == isales_id)
    sandbox.edit_cliente(int(isales_id), nome=f"{nome} Costa")  # a surname added: the same person
    for step, args in (("01", ("--ids", isales_id)), ("02", ()), ("03", ())):
        assert run(step, *args, env=loaded).returncode in (0, 3)
    again = run("04", "-v", env=loaded)
    assert again.returncode in (0, 3), again.stderr[-3000:]
    assert [c for c in sandbox.calls("fieldcontrol") if c["method"] == "PUT" and "/customers/" in c["path"]]
    assert "dados do cliente alterados: atualizado" in again.stderr
    assert "dados do cliente alterados: criado" not in again.stderr
    assert "id no FieldControl" in again.stderr  # the API ids are there with -v


def test_counts_and_words_agree(run, sandbox, loaded):
    """02 treats (it creates nothing); 03 says how many column moves it ignores; the pending items of
    this run are told apart from those still open from earlier runs."""
    # a new installation with an invalid CPF: pending in 02, so 03 meets its column move, never stored
    (bad,) = sandbox.add_projects(1, cpf="123.456.789-00", coluna_id=17840)
    assert run("01", env=loaded).returncode in (0, 3)
    treated = run("02", env=loaded)
    assert treated.returncode == 3, treated.stderr[-3000:]
    summary = treated.stderr.split("resumo da etapa 02:")[1]
    head = summary.splitlines()[1]
    assert "tratados" in head.split() and "atualizados" not in head.split()
    assert "1 pendente(s) nesta execução" in treated.stderr
    assert "1 pendência(s) abertas: 1 desta execução; lista em" in treated.stderr
    stored = run("03", env=loaded)
    said = re.search(r"; (\d+) mudança\(s\) de coluna de projeto\(s\) que nunca foram gravados: ignorada", stored.stderr)
    assert said, stored.stderr[-3000:]
    summary = stored.stderr.split("resumo da etapa 03:")[1].splitlines()
    end = summary[1].index("ignorados") + len("ignorados")  # columns are right-aligned, 15 wide
    moves = next(line for line in summary if line.strip().startswith("movimento"))
    assert moves[end - 15:end].strip() == said.group(1) != "0"  # the log and the summary count the same moves
    other = next(p["card"]["cliente_id"] for p in sandbox.projects() if p["card"]["cliente_id"] != bad)
    assert run("01", "--ids", str(other), env=loaded).returncode in (0, 3)
    again = run("02", env=loaded)
    assert "0 pendente(s) nesta execução" in again.stderr
    assert "1 pendência(s) abertas: 1 ainda aberta(s) de execuções anteriores (não tentada(s) agora)" in again.stderr
