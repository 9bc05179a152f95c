"""03_sync_dados_local.py as a user runs it: on a prepared 02 file, and 01 → 02 → 03 against the
sandbox with a card moved between runs."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

import lib.db.schema as t
from lib.db.engine import make_engine
from lib.jsonfiles import FILE_02, write_envelope
from tests.conftest import ROOT, sandbox_env
from tests.steps.test_local_sync import AGRO, CANCELADO, COLUMNS_ENV, JOSE, OUTRA, counts, movimento, projeto


def _write_02(data_dir, projetos, movimentos=()):
    write_envelope(data_dir / FILE_02, "02", 7, {
        "origem": {"execucao_id_01": 6, "gerado_em_01": "2026-11-29T13:00:00Z"}, "contagens": {},
        "projetos": projetos, "movimentos": list(movimentos), "pendencias": []})


def test_03_on_a_prepared_file(migrated_db, tmp_path, run):
    data_dir = tmp_path / "data"
    env = {"DATABASE_URL": migrated_db, "DATA_DIR": str(data_dir), **COLUMNS_ENV}

    missing = run("03", env=env)
    assert missing.returncode == 1
    assert "rode 02_tratar_dados_clientes.py antes" in missing.stderr

    poisoned = projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "J" * 10_000})
    _write_02(data_dir, [projeto(4711), poisoned,
                         projeto(4713, cliente={"doc_pessoal": AGRO}, os={"data_fechamento": "ontem"})])
    first = run("03", env=env)
    assert first.returncode == 3, first.stderr
    assert "campo cliente.nome tem 10000 caracteres" in first.stderr
    items = json.loads((data_dir / "pendencias.json").read_text(encoding="utf-8"))["pendencias"]
    assert sorted(i["chave"] for i in items) == ["isales:4712", "isales:4713"]
    engine = make_engine(migrated_db)
    try:
        assert counts(engine) == {"cliente": 1, "endereco": 1, "os": 1, "pagamento": 1,
                                  "os_status_historico": 1, "alteracao": 0}

        # 4711 leaves the columns of interest and comes back cancelled; the operator fixes the two
        # projects in iSales and the next file has them right
        fixed = [projeto(4711, coluna=CANCELADO, obtido="2026-11-30T08:00:00Z"),
                 projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "José"}),
                 projeto(4713, cliente={"doc_pessoal": AGRO, "nome": "Solar Agro"})]
        _write_02(data_dir, [], [movimento(4711, OUTRA), movimento(4799, OUTRA)])  # 4799: never stored
        moved = run("03", env=env)
        assert moved.returncode == 3, moved.stderr  # 4712 and 4713 are still pending
        _write_02(data_dir, fixed)
        second = run("03", env=env)
        assert second.returncode == 0, second.stderr
        assert json.loads((data_dir / "pendencias.json").read_text(encoding="utf-8"))["pendencias"] == []
        after = counts(engine)
        assert after["os"] == 3 and after["os_status_historico"] == 5
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(
                select(t.os_status_historico.c.status_anterior, t.os_status_historico.c.status)
                .join(t.os).where(t.os.c.isales_id == "4711").order_by(t.os_status_historico.c.id))] == [
                (None, "instalacao"), ("instalacao", "outro"), ("outro", "cancelado")]
        with engine.connect() as conn:
            run_row = conn.execute(select(t.execucao).order_by(t.execucao.c.id.desc()).limit(1)).mappings().one()
        assert run_row["etapa"] == "03" and run_row["codigo_saida"] == 0
        assert json.loads(run_row["contagens"])["historico"] == {"criados": 3}

        # the same file again, and only --ids of it: nothing is written
        third = run("03", "--ids", "4711,4712", env=env)
        assert third.returncode == 0, third.stderr
        assert counts(engine) == after
    finally:
        engine.dispose()


def test_help():
    from tests.conftest import run_script

    result = run_script("03", "--help", env={}, cwd=ROOT)
    assert result.returncode == 0 and "os_status_historico" in result.stdout and "--arquivo" in result.stdout


def _pipeline(run, env, steps=("01", "02", "03")):
    for step in steps:
        result = run(step, env=env)
        assert result.returncode in (0, 3), f"{step}: {result.stderr}"


@pytest.mark.skipif(not (ROOT / "02_tratar_dados_clientes.py").exists() or not (ROOT / "01_get_projetos_isales.py").exists(),
                    reason="01/02 ainda não existem nesta árvore")
def test_pipeline_01_02_03_records_moves_and_edits_made_in_the_sandbox(sandbox, tmp_path, migrated_db, run):
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    _pipeline(run, env)
    engine = make_engine(migrated_db)
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(select(t.os.c.isales_id, t.os.c.coluna_id)).all())
        assert len(stored) >= 5, "03 gravou poucos projetos do sandbox"
        before = counts(engine)
        assert before["os_status_historico"] == before["os"] and before["alteracao"] == 0

        _pipeline(run, env, ("03",))  # the same 02 file again: nothing written
        assert counts(engine) == before

        active = [i for i, c in sorted(stored.items()) if c != CANCELADO]
        cancelled, hidden, edited = active[0], active[1], active[2]
        sandbox.move_card(int(cancelled), CANCELADO)
        sandbox.move_card(int(hidden), 16001)  # a column outside the three: 01 lists it as a movement
        sandbox.edit_cliente(int(edited), email="novo.endereco@example.com")
        result = run("01", "--completo", env=env)  # an edit without a move is seen on a full fetch
        assert result.returncode in (0, 3), result.stderr
        _pipeline(run, env, ("02", "03"))
        with engine.connect() as conn:
            hist = t.os_status_historico
            last = {isales_id: conn.execute(
                select(hist.c.coluna_anterior, hist.c.coluna_id, hist.c.status).join(t.os, t.os.c.id == hist.c.os_id)
                .where(t.os.c.isales_id == isales_id).order_by(hist.c.id.desc()).limit(1)).one()
                for isales_id in (cancelled, hidden)}
            total = conn.execute(select(func.count()).select_from(hist)).scalar_one()
            log = conn.execute(select(t.alteracao.c.tabela, t.alteracao.c.campo, t.alteracao.c.valor_novo)).all()
        assert tuple(last[cancelled]) == (stored[cancelled], CANCELADO, "cancelado")
        assert tuple(last[hidden]) == (stored[hidden], 16001, "outro")
        assert total == before["os_status_historico"] + 2
        assert ("cliente", "email", "novo.endereco@example.com") in log
    finally:
        engine.dispose()
