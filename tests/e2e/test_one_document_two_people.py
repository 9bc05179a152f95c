"""Issue 12 §5 as a user meets it: a second project carries the CPF of an existing customer with
another person's name. Step 03 keeps it as a pending item naming both projects, and step 04 (against
the sandbox) changes no name in FieldControl and sends no ticket under the wrong name; fixing the
CRM clears it."""

from __future__ import annotations

import json

from lib.fieldcontrol import document_key
from tests.conftest import sandbox_env
from tests.e2e.test_03_local_sync import _write_02
from tests.steps.test_local_sync import JOSE, MARIA, projeto


def _customers(sb, doc: str) -> list[dict]:
    return [c for c in sb.fc_customers() if c["documentNumber"] and document_key(c["documentNumber"]) == doc]


def _tickets(sb, isales_id: int) -> list[dict]:
    return [t for t in sb.fc_tickets() if (t["external"]["id"] or "").startswith(f"isales:{isales_id}:")]


def _pending(data_dir) -> dict[str, str]:
    items = json.loads((data_dir / "pendencias.json").read_text(encoding="utf-8"))["pendencias"]
    return {item["chave"]: item["motivo"] for item in items if item["etapa"] == "03"}


def test_the_customer_name_in_fieldcontrol_is_not_changed(run, sandbox, tmp_path, migrated_db):
    data_dir = tmp_path / "data"
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    _write_02(data_dir, [projeto(4711)])  # Maria da Silva
    assert run("03", env=env).returncode == 0
    assert run("04", env=env).returncode == 0
    (maria,) = _customers(sandbox, MARIA)
    assert maria["name"] == "Maria da Silva" and len(_tickets(sandbox, 4711)) == 1

    # Bruno's new project with Maria's CPF, and Maria's own card renamed to Bruno in the CRM
    _write_02(data_dir, [projeto(4712, cliente={"nome": "Bruno Barbosa"}, obtido="2026-12-01T00:00:00Z"),
                         projeto(4711, cliente={"nome": "Bruno Barbosa"}, obtido="2026-12-01T00:00:00Z")])
    refused = run("03", env=env)
    assert refused.returncode == 3, refused.stderr
    items = _pending(data_dir)
    assert set(items) == {"isales:4711", "isales:4712"}
    assert "projeto 4712 (Bruno Barbosa): o CPF 529.982.247-25 já é do cliente 'Maria da Silva' (projeto(s) 4711)" \
        in items["isales:4712"]
    sandbox.reset_calls()
    pushed = run("04", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert [c for c in sandbox.calls("fieldcontrol") if c["method"] in ("POST", "PUT")] == []
    assert _customers(sandbox, MARIA) == [maria]  # the name in FieldControl did not change
    assert _tickets(sandbox, 4712) == [] and len(_tickets(sandbox, 4711)) == 1

    # the CRM is fixed: Bruno has his own CPF, Maria's card her name back; the pending items clear
    _write_02(data_dir, [projeto(4712, cliente={"nome": "Bruno Barbosa", "doc_pessoal": JOSE},
                                 obtido="2026-12-02T00:00:00Z"),
                         projeto(4711, obtido="2026-12-02T00:00:00Z")])
    assert run("03", env=env).returncode == 0
    assert _pending(data_dir) == {}
    assert run("04", env=env).returncode == 0
    assert [c["name"] for c in _customers(sandbox, JOSE)] == ["Bruno Barbosa"]
    assert [c["name"] for c in _customers(sandbox, MARIA)] == ["Maria da Silva"]
    assert [t["subject"] for t in _tickets(sandbox, 4712)] == ["Instalação: Bruno Barbosa"]
