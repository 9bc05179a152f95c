"""What an operator meets when running the steps by hand: a configured FieldControl service that is
archived, and --ids naming projects that match nothing — through the numbered scripts."""

from __future__ import annotations

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
