"""Issue 12 §4 as a user meets it: a hand-edited data/02 file marks an installation card 'cancelado'.
Step 03 refuses the record (it used to record a cancellation, 04 dispensed it, and the installation
ticket was never sent, not even after 01 --completo); once the file is right, 04 sends it."""

from __future__ import annotations

from tests.conftest import sandbox_env
from tests.e2e.test_03_local_sync import _write_02
from tests.steps.test_local_sync import projeto


def _tickets(sb, isales_id: int) -> list[str]:
    return sorted(t["external"]["id"].split(":")[2] for t in sb.fc_tickets()
                  if (t["external"]["id"] or "").startswith(f"isales:{isales_id}:"))


def test_cancelado_written_on_an_installation_card_does_not_lose_the_ticket(run, sandbox, tmp_path, migrated_db):
    data_dir = tmp_path / "data"
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    _write_02(data_dir, [{**projeto(4711), "status": "cancelado"}, {**projeto(5001), "isales_id": "05001"}])
    edited = run("03", env=env)
    assert edited.returncode == 3, edited.stderr
    assert "campo status 'cancelado' contradiz a coluna_id 17840" in edited.stderr
    assert "isales_id '05001' inválido" in edited.stderr
    assert run("04", env=env).returncode == 0
    assert _tickets(sandbox, 4711) == [] and _tickets(sandbox, 5001) == []

    _write_02(data_dir, [projeto(4711)])  # the file as step 02 writes it
    assert run("03", env=env).returncode == 0
    assert run("04", env=env).returncode == 0
    assert _tickets(sandbox, 4711) == ["instalacao"]
