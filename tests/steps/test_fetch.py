"""lib/steps/fetch (step 01): the incremental rule, pending items and recovery, run in-process against
the sandbox and a real database (SQLite, and MariaDB when TEST_MYSQL_URL is set)."""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

import lib.db.schema as t
from lib.clock import db_now
from lib.config import IsalesSettings
from lib.db import pending
from lib.isales import Card
from lib.steps.fetch import LocalOs, select_cards
from tests.conftest import sandbox_env

door = importlib.import_module("01_get_projetos_isales")

INSTALACAO, AUMENTO, CANCELADO, OUTRA = 17840, 20024, 20363, 16001
SETTINGS = IsalesSettings(api_url="https://x/api", token="tok-teste", funil_id=9001, desde=datetime(2025, 1, 1).date(),
                          colunas_instalacao=(INSTALACAO,), colunas_aumento=(AUMENTO,),
                          colunas_cancelado=(CANCELADO,))
NOW = datetime(2026, 11, 29, 13, 0, 0)
FRESH, OLD = NOW - timedelta(days=1), NOW - timedelta(days=8)


# --------------------------------------------------------------------------- the rule, without I/O

def cards(*pairs) -> list[Card]:
    return [Card(cid, col, f"Cliente {cid}", {"cliente_id": cid, "coluna_id": col}) for cid, col in pairs]


LISTING = cards((1, INSTALACAO), (2, AUMENTO), (3, CANCELADO), (4, INSTALACAO), (5, INSTALACAO),
                (6, INSTALACAO), (7, OUTRA), (8, OUTRA), (9, OUTRA), (10, None))
LOCAL = {"2": LocalOs(INSTALACAO, FRESH), "3": LocalOs(CANCELADO, OLD), "4": LocalOs(INSTALACAO, None),
         "5": LocalOs(INSTALACAO, FRESH), "6": LocalOs(INSTALACAO, FRESH), "7": LocalOs(INSTALACAO, FRESH),
         "8": LocalOs(OUTRA, FRESH)}


def decide(**options):
    selection = select_cards(LISTING, SETTINGS, LOCAL, {"5"}, refresh_before=NOW - timedelta(days=7), **options)
    return ({todo.card.cliente_id: todo.motivo for todo in selection.to_fetch}, selection)


def test_incremental_rule_gives_each_card_its_reason():
    fetch, selection = decide()
    assert fetch == {1: "novo", 2: "coluna_alterada", 3: "detalhes_antigos", 4: "detalhes_antigos", 5: "pendente"}
    assert [c.cliente_id for c in selection.skipped] == [6]
    # 7 left the columns of interest (a move); 8 was already there; 9 was never known
    assert [(m["isales_id"], m["coluna_id"], m["status"]) for m in selection.movimentos] == [(7, OUTRA, "outro")]
    assert [c.cliente_id for c in selection.no_column] == [10]
    assert selection.of_interest == {1, 2, 3, 4, 5, 6, 10}


def test_completo_fetches_every_card_of_interest():
    fetch, selection = decide(completo=True)
    assert fetch == dict.fromkeys([1, 2, 3, 4, 5, 6], "completo") and not selection.skipped
    assert len(selection.movimentos) == 1


def test_ids_fetch_only_those_and_name_the_missing():
    fetch, selection = decide(ids=["6", "7", "42"])
    assert fetch == {6: "ids"}
    assert [m["isales_id"] for m in selection.movimentos] == [7]  # its move still counts
    assert selection.missing_ids == ["7", "42"]
    assert not selection.no_column


def test_zero_refresh_days_always_refreshes():
    selection = select_cards(cards((6, INSTALACAO)), SETTINGS, LOCAL, set(), refresh_before=NOW)
    assert [todo.motivo for todo in selection.to_fetch] == ["detalhes_antigos"]


# --------------------------------------------------------------------------- in-process runs

@pytest.fixture
def step(sandbox, tmp_path, migrated_db, engine, monkeypatch):
    """run(*args, **env overrides) → (exit code, parsed data/01 file or None)."""
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    base = sandbox_env(sandbox, tmp_path, migrated_db, ISALES_MAX_WORKERS="3")

    def _run(*args: str, **overrides):
        for key, value in {**base, **{k: str(v) for k, v in overrides.items()}}.items():
            monkeypatch.setenv(key, value)
        code = door.main(list(args))
        path = tmp_path / "data" / "01_projetos_isales.json"
        return code, (json.loads(path.read_text(encoding="utf-8")) if path.exists() else None)

    return _run


def of_interest(sb) -> dict[int, dict]:
    return {p["card"]["cliente_id"]: p for p in sb.projects()
            if p["card"]["coluna_id"] in (INSTALACAO, AUMENTO, CANCELADO) and p["card"]["funil_id"]}


def remember(engine, data: dict, detalhes_em: datetime) -> None:
    """What step 03 would store after reading `data` (os rows with column and details time)."""
    with engine.begin() as conn:
        for item in data["projetos"]:
            conn.execute(t.os.insert().values(isales_id=str(item["isales_id"]), coluna_id=item["coluna_id"],
                                              status=item["status"], detalhes_em=detalhes_em))


def detail_calls(sb) -> list[int]:
    return sorted(int(c["path"].rsplit("cliente_id=", 1)[1]) for c in sb.calls("isales", "GET /clientes"))


def open_01(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {item["chave"]: item["motivo"] for item in pending.open_items(conn, "01")}


def test_first_run_fetches_every_card_of_interest_untouched(step, sandbox, engine):
    code, data = step()
    assert code == 0
    expected = of_interest(sandbox)
    assert [p["isales_id"] for p in data["projetos"]] == sorted(expected)
    for item in data["projetos"]:
        project = expected[item["isales_id"]]
        assert item["motivo"] == "novo"
        assert (item["cliente"], item["proposta"], item["campos"]) == \
            (project["cliente"], project["proposta"], project["campos"])
        assert item["card"]["coluna_id"] == item["coluna_id"] == project["card"]["coluna_id"]
    assert data["contagens"]["cards_no_funil"] == len(sandbox.state.cards(None, None))
    assert data["contagens"]["detalhados"] == len(expected) and data["pendencias"] == []
    with engine.connect() as conn:
        counts = json.loads(conn.execute(select(t.execucao.c.contagens)).scalar_one())
    assert counts["projetos"]["detalhados"] == len(expected)


def test_incremental_run_fetches_only_what_changed(step, sandbox, engine):
    _, first = step()
    remember(engine, first, db_now())
    sandbox.reset_calls()
    code, data = step()
    assert code == 0 and data["projetos"] == [] and detail_calls(sandbox) == []
    assert data["contagens"]["ignorados_sem_mudanca"] == len(first["projetos"])

    ids = [p["isales_id"] for p in first["projetos"]]
    moved, left, old, flagged = ids[:4]
    sandbox.move_card(moved, AUMENTO if first["projetos"][0]["coluna_id"] != AUMENTO else INSTALACAO)
    sandbox.move_card(left, OUTRA)
    with engine.begin() as conn:
        conn.execute(t.os.update().where(t.os.c.isales_id == str(old)).values(detalhes_em=db_now() - timedelta(days=8)))
        pending.record(conn, "02", pending.project_key(flagged), "documento inválido", isales_id=flagged)
    [new] = sandbox.add_projects(1, coluna_id=CANCELADO)
    sandbox.reset_calls()
    code, data = step()
    assert code == 0
    assert {p["isales_id"]: p["motivo"] for p in data["projetos"]} == {
        moved: "coluna_alterada", old: "detalhes_antigos", flagged: "pendente", new: "novo"}
    assert detail_calls(sandbox) == sorted([moved, old, flagged, new])
    assert [(m["isales_id"], m["coluna_id"], m["status"]) for m in data["movimentos"]] == [(left, OUTRA, "outro")]
    assert data["contagens"]["movimentos"] == 1


def test_completo_and_ids(step, sandbox, engine):
    _, first = step()
    remember(engine, first, db_now())
    sandbox.reset_calls()
    code, data = step("--completo")
    assert code == 0 and {p["motivo"] for p in data["projetos"]} == {"completo"}
    assert len(data["projetos"]) == len(first["projetos"])
    wanted = [first["projetos"][1]["isales_id"], first["projetos"][3]["isales_id"]]
    sandbox.reset_calls()
    code, data = step("--ids", f"{wanted[0]},{wanted[1]},999999")
    assert code == 0
    assert [(p["isales_id"], p["motivo"]) for p in data["projetos"]] == [(wanted[0], "ids"), (wanted[1], "ids")]
    assert detail_calls(sandbox) == wanted


def test_card_with_html_details_becomes_pending_then_recovers(step, sandbox, engine):
    sandbox.add_fault("isales", "GET /propostas", kind="html", times=1)
    code, data = step()
    assert code == 3
    [bad] = [c for c in sandbox.calls("isales", "GET /propostas") if c["fault"] == "html"]
    bad_id = int(bad["path"].rsplit("cliente_id=", 1)[1])
    assert [p["isales_id"] for p in data["pendencias"]] == [bad_id]
    assert "página HTML" in data["pendencias"][0]["motivo"] and f"projeto {bad_id}" in data["pendencias"][0]["motivo"]
    assert bad_id not in [p["isales_id"] for p in data["projetos"]]
    assert len(data["projetos"]) == len(of_interest(sandbox)) - 1
    assert list(open_01(engine)) == [f"isales:{bad_id}"]

    code, data = step()
    assert code == 0 and bad_id in [p["isales_id"] for p in data["projetos"]]
    assert open_01(engine) == {}


def test_details_failing_after_retries_and_unknown_client_are_pending(step, sandbox, engine):
    sandbox.add_fault("isales", "GET /clientes", status=500, retry_after=0, times=6)  # HTTP_MAX_TENTATIVAS
    sandbox.add_fault("isales", "GET /clientes", status=404, times=1)
    code, data = step(ISALES_MAX_WORKERS=1)
    assert code == 3
    reasons = [p["motivo"] for p in data["pendencias"]]
    assert len(reasons) == 2
    assert any("500" in r and "6 tentativas" in r for r in reasons)
    assert any("cliente não encontrado" in r for r in reasons)
    assert len(open_01(engine)) == 2
    assert len(data["projetos"]) == len(of_interest(sandbox)) - 2


def test_pending_item_of_a_card_that_left_the_columns_is_resolved(step, sandbox, engine, caplog):
    target = next(iter(of_interest(sandbox)))
    with engine.begin() as conn:
        pending.record(conn, "01", pending.project_key(target), "falhou antes", isales_id=target)
        pending.record(conn, "01", "isales:999999", "card que sumiu do funil", isales_id=999999)
    sandbox.move_card(target, OUTRA)
    code, _ = step()
    assert code == 0 and open_01(engine) == {}
    assert f"projeto {target} resolvida: o card não está mais nas colunas de interesse" in caplog.text


def test_429_storm_5xx_and_dropped_connections_are_recovered(step, sandbox):
    sandbox.add_fault("isales", "GET /clientes", status=429, retry_after=1, times=1)
    sandbox.add_fault("isales", "GET /campo-customizado", status=429, retry_after=0.1, times=3)
    sandbox.add_fault("isales", "GET /propostas", status=502, retry_after=0, times=2)
    sandbox.add_fault("isales", "GET /clientes", kind="drop", times=2)
    sandbox.add_fault("isales", "GET /funil-clientes", status=503, retry_after=0, times=1)
    code, data = step(ISALES_MAX_WORKERS=4)
    assert code == 0 and data["pendencias"] == []
    assert len(data["projetos"]) == len(of_interest(sandbox))
    calls = sandbox.calls("isales")
    assert sorted(c["status"] for c in calls if c["status"] not in (200, None)) == [429, 429, 429, 429, 502, 502, 503]
    assert sum(1 for c in calls if c["fault"] == "drop") == 2
    # Retry-After: 1 holds every worker, not just the one that got the 429 (margin for in-flight calls)
    [limited] = [c for c in calls if c["status"] == 429 and c["route"] == "/clientes"]
    assert not [c for c in calls if limited["t"] + 0.3 < c["t"] < limited["t"] + 0.85]


def test_isales_down_during_details_stops_with_75_and_keeps_the_file(step, sandbox, engine, tmp_path):
    code, _ = step()
    path = tmp_path / "data" / "01_projetos_isales.json"
    before = path.read_bytes()
    sandbox.add_fault("isales", "GET /clientes", status=500, retry_after=0)
    code, _ = step("--completo", HTTP_MAX_TENTATIVAS=2)
    assert code == 75
    assert path.read_bytes() == before
    assert open_01(engine) == {}  # an outage is not a problem of the records


def test_token_refused_while_fetching_details_stops_with_2(step, sandbox, engine, tmp_path):
    sandbox.add_fault("isales", "GET /propostas", status=401, times=1)
    code, data = step()
    assert code == 2 and data is None
    assert open_01(engine) == {}
