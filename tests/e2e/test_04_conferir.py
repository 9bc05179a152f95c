"""04_sync_field_api.py --conferir as a user runs it: read-only, 0 on a clean account, and every kind of
difference a person can make by hand in FieldControl found, printed, pending (exit 3), and closed once
it is undone."""

from __future__ import annotations

from sqlalchemy import select

import lib.db.schema as t
from lib.db.engine import make_engine
from tests.conftest import sandbox_env
from tests.steps import push_seed as seed


def writes(sandbox) -> int:
    return sum(1 for c in sandbox.calls("fieldcontrol") if c["method"] in ("POST", "PUT", "DELETE"))


def pending_conferir(engine) -> dict[str, str]:
    rows = select(t.pendencia.c.chave, t.pendencia.c.motivo).where(t.pendencia.c.etapa == "conferir",
                                                                  t.pendencia.c.resolvida_em.is_(None))
    with engine.connect() as conn:
        return {r.chave: r.motivo for r in conn.execute(rows)}


def test_conferir_finds_each_hand_made_difference(sandbox, tmp_path, migrated_db, run):
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    engine = make_engine(migrated_db)
    with engine.begin() as conn:
        for isales_id in (4711, 4712, 4713, 4714):
            seed.add_project(conn, isales_id, nome=f"Cliente {isales_id}")
    assert run("04", env=env).returncode == 0
    sandbox.reset_calls()
    clean = run("04", "--conferir", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 diferença(s)" in clean.stdout and writes(sandbox) == 0

    with engine.connect() as conn:
        clientes = {r.nome: r for r in conn.execute(select(t.cliente))}
        tickets = {r.os_id: r for r in conn.execute(select(t.os_status_historico)
                                                    .where(t.os_status_historico.c.enviado_field.is_(True)))}
        phones = [r for r in conn.execute(select(t.acao_field).where(t.acao_field.c.tipo == "phone"))]
        enderecos = {r.cliente_id: r for r in conn.execute(select(t.endereco))}
    a, b, c, d = (clientes[f"Cliente {n}"] for n in (4711, 4712, 4713, 4714))
    ticket_a = next(r for r in tickets.values() if r.ticket_field_id and r.os_id == 1)
    # what people do by hand in FieldControl
    sandbox.fc_edit("customers", a.field_id, {"documentNumber": "00000000000"})
    sandbox.fc_archive("tickets", ticket_a.ticket_field_id)
    sandbox.fc_edit("tickets", ticket_a.ticket_field_id, {"external": {"id": "outro"}})
    sandbox.fc_delete("customers", b.field_id)
    phone_c = next(p for p in phones if p.cliente_id == c.id)
    sandbox.fc_delete("phones", phone_c.field_id)
    location = next(loc for loc in sandbox.fc_locations() if loc["id"] == enderecos[c.id].location_field_id)
    sandbox.fc_edit("locations", location["id"], {"address": {**location["address"], "street": "Rua Trocada"}})
    ticket_c = next(r for r in tickets.values() if r.ticket_field_id and r.os_id == 3)
    sandbox.fc_edit("tickets", ticket_c.ticket_field_id, {"message": "editada à mão"})
    ticket_d = next(r for r in tickets.values() if r.ticket_field_id and r.os_id == 4)
    sandbox.fc_delete("tickets", ticket_d.ticket_field_id)
    sandbox.fc_archive("locations", enderecos[d.id].location_field_id)

    sandbox.reset_calls()
    found = run("04", "--conferir", env=env)
    assert found.returncode == 3, found.stdout + found.stderr
    assert writes(sandbox) == 0
    items = pending_conferir(engine)
    keys = {key.split(":", 1)[1] for key in items}
    assert {f"cliente:{a.id}:documento", f"ticket:{ticket_a.id}:arquivado", f"ticket:{ticket_a.id}:external.id",
            f"cliente:{b.id}:existe", f"phone:{phone_c.id}:existe", f"local:{enderecos[c.id].id}:endereco",
            f"ticket:{ticket_c.id}:mensagem", f"ticket:{ticket_d.id}:existe",
            f"local:{enderecos[d.id].id}:arquivado"} == keys, found.stdout
    for text in items.values():
        assert text in found.stdout
    assert "projeto 4712 (Cliente 4712): o cliente" in items[f"conferir:cliente:{b.id}:existe"]

    # --ids limits the check (and the calls) to those projects; what it did not look at stays open
    sandbox.fc_edit("customers", a.field_id, {"documentNumber": a.doc_pessoal})
    sandbox.reset_calls()
    partial = run("04", "--conferir", "--ids", "4711", env=env)
    assert partial.returncode == 3
    assert all(c["path"].find(b.field_id) < 0 for c in sandbox.calls("fieldcontrol"))
    assert f"conferir:cliente:{a.id}:documento" not in pending_conferir(engine)
    assert f"conferir:cliente:{b.id}:existe" in pending_conferir(engine)
    engine.dispose()
