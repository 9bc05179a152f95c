"""lib/steps/fetch (step 01): the incremental rule, pending items and recovery, run in-process against
the sandbox and a real database (SQLite, and MariaDB when TEST_MYSQL_URL is set)."""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

import lib.db.schema as t
from lib.clock import db_now
from lib.config import IsalesSettings
from lib.db import pending
from lib.isales import Card
from lib.steps.fetch import LocalOs, load_local
from lib.steps.fetch import select_cards as select_in_spool
from lib.steps.fetch_spool import SKIP, Spool
from tests.conftest import sandbox_env

door = importlib.import_module("01_get_projetos_isales")

INSTALACAO, AUMENTO, CANCELADO, OUTRA = 17840, 20024, 20363, 16001
SETTINGS = IsalesSettings(api_url="https://x/api", token="tok-teste", funil_id=9001, desde=datetime(2025, 1, 1).date(),
                          colunas_instalacao=(INSTALACAO,), colunas_aumento=(AUMENTO,),
                          colunas_cancelado=(CANCELADO,))
NOW = datetime(2026, 11, 29, 13, 0, 0)
FRESH, OLD = NOW - timedelta(days=1), NOW - timedelta(days=8)


# --------------------------------------------------------------------------- the rule, without I/O

def select_cards(listing, settings, local, pending_ids, **options) -> SimpleNamespace:
    """lib.steps.fetch.select_cards over a spool holding `listing`, `local` (isales_id → LocalOs) and the
    `pending_ids`; its decisions read back as lists."""
    with Spool(None) as spool:
        for position, card in enumerate(listing, 1):
            spool.put(card, position)
        spool.add_local((key, n, known.coluna_id, known.detalhes_em, known.listagem)
                        for n, (key, known) in enumerate(local.items(), 1))
        spool.add_finished((n, known.concluido_em) for n, known in enumerate(local.values(), 1) if known.concluido_em)
        spool.add_pending(pending_ids)
        selection = select_in_spool(spool, settings, **options)
        return SimpleNamespace(to_fetch=list(selection.todo()), skipped=[card for card, *_ in spool.decided(SKIP)],
                               movimentos=list(selection.moves()), no_column=list(selection.unclassified()),
                               of_interest=spool.of_interest(card.cliente_id for card in listing),
                               missing_ids=selection.missing_ids, finished=selection.finished,
                               counts=selection)


def cards(*pairs) -> list[Card]:
    return [Card(cid, col, f"Cliente {cid}", {"cliente_id": cid, "coluna_id": col}) for cid, col in pairs]


LISTING = cards((1, INSTALACAO), (2, AUMENTO), (3, CANCELADO), (4, INSTALACAO), (5, INSTALACAO),
                (6, INSTALACAO), (7, OUTRA), (8, OUTRA), (9, OUTRA), (10, None), (11, INSTALACAO), (12, INSTALACAO))
ROW = {card.cliente_id: card.fingerprint for card in LISTING}
LOCAL = {"2": LocalOs(INSTALACAO, FRESH, ROW[2]), "3": LocalOs(CANCELADO, OLD, ROW[3]), "4": LocalOs(INSTALACAO, None),
         "5": LocalOs(INSTALACAO, FRESH, ROW[5]), "6": LocalOs(INSTALACAO, FRESH, ROW[6]),
         "7": LocalOs(INSTALACAO, FRESH), "8": LocalOs(OUTRA, FRESH),
         "11": LocalOs(INSTALACAO, FRESH, "listagem-de-antes"),  # its listing row changed since
         "12": LocalOs(INSTALACAO, NOW - timedelta(days=2), ROW[12])}


def decide(refresh_cards=0, local=LOCAL, **options):
    selection = select_cards(LISTING, SETTINGS, local, {"5"}, refresh_cards=refresh_cards, **options)
    return ({todo.card.cliente_id: todo.motivo for todo in selection.to_fetch}, selection)


def test_incremental_rule_gives_each_card_its_reason():
    fetch, selection = decide()
    assert fetch == {1: "novo", 2: "coluna_alterada", 5: "pendente", 11: "card_alterado"}
    # 4 has no fingerprint yet (stored before the upgrade): unknown is not a change
    assert [c.cliente_id for c in selection.skipped] == [3, 4, 6, 12]
    # 7 left the columns of interest (a move); 8 was already there; 9 was never known
    assert [(m["isales_id"], m["coluna_id"], m["status"]) for m in selection.movimentos] == [(7, OUTRA, "outro")]
    assert [c.cliente_id for c in selection.no_column] == [10]
    assert selection.of_interest == {1, 2, 3, 4, 5, 6, 10, 11, 12}


def test_a_renamed_card_is_fetched_because_its_listing_row_changed():
    renamed = Card(6, INSTALACAO, "Nome Novo", {"cliente_id": 6, "coluna_id": INSTALACAO,
                                                 "cliente": {"nome": "Nome Novo"}})
    selection = select_cards([renamed], SETTINGS, LOCAL, set())
    assert [(todo.card.cliente_id, todo.motivo) for todo in selection.to_fetch] == [(6, "card_alterado")]
    same = Card(6, INSTALACAO, "Cliente 6", {"coluna_id": INSTALACAO, "cliente_id": 6})  # key order differs
    assert select_cards([same], SETTINGS, LOCAL, set()).to_fetch == []
    slim = same.without_row()  # what 01 keeps of a card it does not write: no listing row
    assert slim.raw == {} and slim.fingerprint == same.fingerprint and select_cards([slim], SETTINGS, LOCAL, set()).to_fetch == []
    assert same.raw == {"coluna_id": INSTALACAO, "cliente_id": 6}  # the row written is the one iSales sent


def test_rolling_refresh_takes_the_stalest_within_the_budget():
    fetch, selection = decide(refresh_cards=2)
    # never fetched (4) first, then the oldest details (3, 8 days); 12 (2 days) and 6 (1 day) wait
    assert {k: v for k, v in fetch.items() if v == "renovacao"} == {4: "renovacao", 3: "renovacao"}
    assert [c.cliente_id for c in selection.skipped] == [6, 12]
    fetch, _ = decide(refresh_cards=3)
    assert sorted(k for k, v in fetch.items() if v == "renovacao") == [3, 4, 12]
    fetch, selection = decide(refresh_cards=100)
    assert sorted(k for k, v in fetch.items() if v == "renovacao") == [3, 4, 6, 12] and not selection.skipped


def test_completo_fetches_every_card_of_interest():
    fetch, selection = decide(completo=True, refresh_cards=2)
    assert fetch == dict.fromkeys([1, 2, 3, 4, 5, 6, 11, 12], "completo") and not selection.skipped
    assert len(selection.movimentos) == 1


def test_ids_fetch_only_those_and_name_the_missing():
    fetch, selection = decide(ids=["6", "7", "42"], refresh_cards=5)
    assert fetch == {6: "ids"}
    assert [m["isales_id"] for m in selection.movimentos] == [7]  # its move still counts
    assert selection.missing_ids == ["7", "42"]
    assert not selection.no_column


def test_finished_work_leaves_the_rotation_after_a_last_refresh():
    learned = NOW - timedelta(days=3)
    local = dict(LOCAL)
    local["3"] = LocalOs(CANCELADO, OLD, ROW[3], concluido_em=learned)  # details older than the news: one more
    local["4"] = LocalOs(INSTALACAO, NOW - timedelta(days=4), ROW[4], concluido_em=learned)
    local["12"] = LocalOs(INSTALACAO, NOW - timedelta(days=2), ROW[12], concluido_em=learned)  # refreshed since
    fetch, selection = decide(refresh_cards=100, local=local)
    assert [k for k, v in fetch.items() if v == "renovacao"] == [3, 4, 6]
    assert [c.cliente_id for c in selection.skipped] == [12] and selection.finished == 1
    # its listing row changing, or a pending item, still fetches it
    local["12"] = LocalOs(INSTALACAO, NOW - timedelta(days=2), "outra", concluido_em=learned)
    assert decide(local=local)[0][12] == "card_alterado"


def test_cards_rotate_until_every_one_is_refreshed():
    """20 cards, 6 per run: every card is refreshed within ceil(20 / 6) = 4 runs, none twice before."""
    listing = cards(*[(i, INSTALACAO) for i in range(1, 21)])
    local = {str(c.cliente_id): LocalOs(INSTALACAO, OLD - timedelta(minutes=c.cliente_id % 7), c.fingerprint)
             for c in listing}
    runs: list[set[int]] = []  # the cards refreshed by each run (fetched in the order of their ids)
    for run in range(4):
        selection = select_cards(listing, SETTINGS, local, set(), refresh_cards=6)
        assert len(selection.to_fetch) == 6  # the budget is spent in every run
        for todo in selection.to_fetch:
            key = str(todo.card.cliente_id)
            local[key] = LocalOs(INSTALACAO, NOW + timedelta(minutes=run), local[key].listagem)
        runs.append({todo.card.cliente_id for todo in selection.to_fetch})
    first_round = runs[0] | runs[1] | runs[2]
    assert len(first_round) == 18  # none twice in the first three runs
    last_two = set(range(1, 21)) - first_round
    assert last_two < runs[3]  # each once before any twice
    assert runs[3] - last_two < runs[0]  # then the second round starts with the first run's


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
                                              status=item["status"], detalhes_em=detalhes_em,
                                              listagem_hash=item["listagem"]))


def detail_calls(sb) -> list[int]:
    return sorted(int(c["path"].rsplit("cliente_id=", 1)[1]) for c in sb.calls("isales", "GET /clientes"))


def open_01(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {item["chave"]: item["motivo"] for item in pending.open_items(conn, "01")}


def test_first_run_fetches_every_card_of_interest_untouched(step, sandbox, engine, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".01_selecao.k1ll3d.sqlite").write_bytes(b"left by a killed run")
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
    assert list((tmp_path / "data").glob("*.sqlite")) == []  # the run's spool is gone, and a killed run's
    with engine.connect() as conn:
        counts = json.loads(conn.execute(select(t.execucao.c.contagens)).scalar_one())
    assert counts["projetos"]["detalhados"] == len(expected)


def test_incremental_run_fetches_only_what_changed(step, sandbox, engine):
    _, first = step()
    remember(engine, first, db_now())
    sandbox.reset_calls()
    code, data = step(ISALES_REFRESH_BUDGET=0)
    assert code == 0 and data["projetos"] == [] and detail_calls(sandbox) == []
    assert data["contagens"]["ignorados_sem_mudanca"] == len(first["projetos"])

    ids = [p["isales_id"] for p in first["projetos"]]
    moved, left, old, flagged, renamed, phone = ids[:6]
    sandbox.move_card(moved, AUMENTO if first["projetos"][0]["coluna_id"] != AUMENTO else INSTALACAO)
    sandbox.move_card(left, OUTRA)
    sandbox.edit_cliente(renamed, nome="Nome Novo da Silva", telefone="(11) 91234-5678")
    sandbox.edit_cliente(phone, telefone="(11) 98765-4321")  # not in the listing row: waits for its turn
    with engine.begin() as conn:
        conn.execute(t.os.update().where(t.os.c.isales_id == str(old)).values(detalhes_em=db_now() - timedelta(days=8)))
        pending.record(conn, "02", pending.project_key(flagged), "documento inválido", isales_id=flagged)
    [new] = sandbox.add_projects(1, coluna_id=CANCELADO)
    sandbox.reset_calls()
    code, data = step(ISALES_REFRESH_BUDGET=5)  # one card (3 calls): the stalest
    assert code == 0
    assert {p["isales_id"]: p["motivo"] for p in data["projetos"]} == {
        moved: "coluna_alterada", old: "renovacao", flagged: "pendente", new: "novo", renamed: "card_alterado"}
    assert detail_calls(sandbox) == sorted([moved, old, flagged, new, renamed])
    [fresh] = [p for p in data["projetos"] if p["isales_id"] == renamed]
    assert fresh["cliente"]["telefone"] == "(11) 91234-5678" and fresh["listagem"] != first["projetos"][4]["listagem"]
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


def test_budget_is_respected_and_the_stalest_go_first(step, sandbox, engine):
    _, first = step()
    remember(engine, first, db_now())
    ids = [p["isales_id"] for p in first["projetos"]]
    now = db_now()
    with engine.begin() as conn:  # each card a different age: the last ids are the stalest
        for age, isales_id in enumerate(ids):
            conn.execute(t.os.update().where(t.os.c.isales_id == str(isales_id))
                         .values(detalhes_em=now - timedelta(hours=age)))
    sandbox.reset_calls()
    code, data = step(ISALES_REFRESH_BUDGET=11)  # 3 whole cards (3 calls each); the rest of the budget waits
    assert code == 0
    assert [(p["isales_id"], p["motivo"]) for p in data["projetos"]] == [(i, "renovacao") for i in sorted(ids[-3:])]
    assert sum(sandbox.call_counts().get(route, 0)
               for route in ("GET /clientes", "GET /propostas", "GET /campo-customizado")) == 9


def test_finished_work_in_fieldcontrol_leaves_the_rotation(engine):
    """load_local reads the latest FieldControl history row of each os (h13: origem='fieldcontrol')."""
    learned = datetime(2026, 11, 20, 12, 0)
    with engine.begin() as conn:
        run_id = conn.execute(t.execucao.insert().values(etapa="04", iniciada_em=learned)).inserted_primary_key[0]

        def os_with(isales_id, status, *history):
            os_id = conn.execute(t.os.insert().values(isales_id=isales_id, coluna_id=INSTALACAO, status=status,
                                                      detalhes_em=learned - timedelta(days=1))).inserted_primary_key[0]
            for origem, word, kind in history:
                conn.execute(t.os_status_historico.insert().values(
                    os_id=os_id, origem=origem, status=word, ticket_tipo=kind, execucao_id=run_id,
                    data_status=learned - timedelta(hours=2)))

        os_with("1", "instalacao", ("isales", "instalacao", "instalacao"), ("fieldcontrol", "in-progress", "instalacao"),
                ("fieldcontrol", "done", "instalacao"))
        os_with("2", "instalacao", ("fieldcontrol", "done", "instalacao"), ("fieldcontrol", "reported", "instalacao"))
        os_with("3", "cancelado", ("fieldcontrol", "done", "instalacao"))  # the cancellation is not done yet
        os_with("4", "cancelado", ("fieldcontrol", "done", "instalacao"), ("fieldcontrol", "done", "cancelamento"))
        os_with("5", "instalacao", ("isales", "instalacao", "instalacao"))
        os_with("6", "aumento", ("fieldcontrol", "done", "instalacao"))  # the expansion is not done yet
        os_with("7", "aumento", ("fieldcontrol", "done", "instalacao"), ("fieldcontrol", "done", "aumento"))
        os_with("8", "outro", ("fieldcontrol", "done", "instalacao"))  # not of interest: no rotation anyway
    with Spool(None) as spool:
        load_local(engine, spool)
        local = {key: spool.known(key) for key in "12345678"}
    assert {key: known.concluido_em for key, known in local.items()} == {
        "1": learned, "2": None, "3": None, "4": learned, "5": None, "6": None, "7": learned, "8": None}
    assert all(known.in_rotation for known in local.values())  # details older than the news: one last refresh
    assert not LocalOs(INSTALACAO, learned + timedelta(minutes=1), None, learned).in_rotation


def test_obsolete_refresh_days_is_named_in_a_warning(step, caplog):
    code, _ = step(ISALES_REFRESH_DAYS=7)
    assert code == 0
    assert "ISALES_REFRESH_DAYS não é mais usada" in caplog.text and "ISALES_REFRESH_BUDGET" in caplog.text


def test_a_client_listed_twice_is_reported_naming_both_entries(step, sandbox, engine, monkeypatch):
    """A card read twice in the listing (it moved between pages while we paged): in one column it
    is used once, with a warning; in two columns it is not fetched and is a pending item naming
    both entries (the later entry used to win silently)."""
    from lib import isales

    interesting = sorted(of_interest(sandbox))
    same, moved = interesting[0], interesting[1]
    real_add = isales._FunnelBuilder.add

    def listed_twice(self, items):  # every page of the listing goes through here (items: an iterable)
        items = list(items)
        extra = [dict(item) for item in items if isinstance(item, dict) and item.get("cliente_id") in (same, moved)]
        for item in extra:
            if item["cliente_id"] == moved:
                item["coluna_id"] = CANCELADO if item["coluna_id"] != CANCELADO else INSTALACAO
        return real_add(self, items + extra)

    monkeypatch.setattr(isales._FunnelBuilder, "add", listed_twice)
    code, data = step()
    assert code == 3
    fetched = [p["isales_id"] for p in data["projetos"]]
    assert same in fetched and moved not in fetched
    assert moved not in [m["isales_id"] for m in data["movimentos"]]
    (reason,) = [p["motivo"] for p in data["pendencias"] if p["isales_id"] == moved]
    assert reason.startswith(f"projeto {moved} aparece 2 vezes na listagem do funil, em colunas diferentes (item ")
    assert reason.count("coluna_id") == 2
    assert set(open_01(engine)) == {f"isales:{moved}"}
    with engine.connect() as conn:
        counts = json.loads(conn.execute(select(t.execucao.c.contagens)).scalar_one())
    assert any(f"projeto {same} aparece 2 vezes na listagem do funil" in warning and "usado uma vez" in warning
               for warning in counts["avisos"])


def test_details_are_written_as_they_are_fetched(step, sandbox, monkeypatch):
    """Only the window of cards fetched ahead is alive at once, never every card's details; the
    counts, known at the end, follow the projects in the file."""
    from lib import isales
    from lib.steps import fetch
    from tests.conftest import AliveCounter

    monkeypatch.setattr(fetch, "WINDOW_PER_WORKER", 2)
    counter = AliveCounter()
    monkeypatch.setattr(isales.IsalesClient, "details", counter.wrap(isales.IsalesClient.details))
    code, data = step(ISALES_MAX_WORKERS="1")
    assert code == 0
    assert len(data["projetos"]) == len(of_interest(sandbox)) > 10
    assert [p["isales_id"] for p in data["projetos"]] == sorted(of_interest(sandbox))
    assert 1 <= counter.most <= 3  # the window of 2, and the one just fetched before the oldest is dropped
    assert list(data)[-3:] == ["movimentos", "pendencias", "contagens"]
    assert data["contagens"]["detalhados"] == len(data["projetos"])


def test_a_failure_midway_keeps_the_previous_file(step, sandbox, tmp_path, monkeypatch):
    """The file is written while the details arrive: a token refused after some cards leaves the
    previous file as it was, and no half file."""
    from lib import isales
    from lib.errors import AuthError

    previous = tmp_path / "data" / "01_projetos_isales.json"
    previous.parent.mkdir(parents=True, exist_ok=True)
    previous.write_text('{"etapa": "01", "anterior": true}\n', encoding="utf-8")
    real_details = isales.IsalesClient.details
    calls = [0]

    def refused_later(self, cliente_id):
        calls[0] += 1
        if calls[0] > 6:
            raise AuthError("iSales /clientes: o iSales recusou o token (HTTP 401)")
        return real_details(self, cliente_id)

    monkeypatch.setattr(isales.IsalesClient, "details", refused_later)
    code, data = step(ISALES_MAX_WORKERS="1")
    assert code == 2 and calls[0] > 6
    assert data == {"etapa": "01", "anterior": True}
    assert [path.name for path in previous.parent.iterdir() if path.name.endswith((".tmp", ".sqlite"))] == []


def test_only_cards_with_an_open_item_are_resolved(step, sandbox, monkeypatch):
    """A first load resolves nothing (it used to send every fetched key, 85 updates of 500 keys at
    50,000 cards); a card that failed before is resolved once fetched."""
    from lib.db import pending

    asked: list[list[str]] = []
    real = pending.resolve

    def resolve(conn, etapa, keys, **kwargs):
        keys = list(keys)
        asked.append(keys)
        return real(conn, etapa, keys, **kwargs)

    monkeypatch.setattr(pending, "resolve", resolve)
    sandbox.add_fault(system="isales", route="/clientes", status=404, times=2)  # two cards fail this run
    code, data = step()
    assert code in (0, 3) and data["projetos"]
    assert all(keys == [] for keys in asked)
    failed = {item["isales_id"] for item in data["pendencias"]}
    asked.clear()
    code, data = step()
    fetched = {p["isales_id"] for p in data["projetos"]}
    assert fetched & failed, "the sandbox should have a card that fails once"
    assert set(asked[0]) == {pending.project_key(n) for n in fetched & failed}


def test_memory_of_a_run_does_not_grow_with_the_funnel(tmp_path, migrated_db, engine, monkeypatch):
    """Issue 14 §2: a first load and a second run of step 01 hold the same memory for 1,000 and for
    3,000 cards. The listing, what the local database knew and the selection are kept in a spool on
    disk; they used to be held in memory, ~1 KB a card in a first load and more in a second run
    (each card's listing row, and the local index of every stored project)."""
    import tracemalloc

    from lib import isales

    per_page = 500
    note = "Observação do vendedor: cliente pediu visita pela manhã, portão azul, cachorro bravo. " * 2

    def row(n: int) -> dict:
        return {"id": 900_000 + n, "cliente_id": 10_000 + n, "coluna_id": INSTALACAO, "funil_id": 9001,
                "cliente": {"nome": f"Cliente Número {n} da Silva", "vendedor": "Renan Ávila",
                            "email": f"cliente{n}@example.com", "telefone": "(11) 91234-5678"}, "observacao": note}

    def run_with(cards: int) -> int:
        pages = -(-cards // per_page)

        def funnel_page(self, params, page, body=None):  # the listing without HTTP: only step 01 is measured
            page = page or 1
            first = (page - 1) * per_page
            return (row(n) for n in range(first, min(cards, first + per_page))), {"current_page": page,
                                                                                   "last_page": pages}

        monkeypatch.setattr(isales.IsalesClient, "_funnel_page", funnel_page)
        tracemalloc.start()
        try:
            assert door.main([]) == 0
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    monkeypatch.chdir(tmp_path)
    env = {"ISALES_API_URL": "http://127.0.0.1:9/isales/api", "ISALES_API_TOKEN": "token-teste",
           "ISALES_FUNIL_ID": "9001", "ISALES_DESDE": "2025-01-01", "ISALES_COLUNA_INSTALACAO": str(INSTALACAO),
           "ISALES_COLUNA_AUMENTO": str(AUMENTO), "ISALES_COLUNA_CANCELADO": str(CANCELADO),
           "DATABASE_URL": migrated_db, "DATA_DIR": str(tmp_path / "data"), "ISALES_MAX_WORKERS": "2"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(isales.IsalesClient, "details",
                        lambda self, cliente_id: isales.Details({"id": cliente_id, "nome": f"Cliente {cliente_id}"},
                                                                {}, {}))
    first, second = {}, {}
    for cards in (1000, 3000):
        with engine.begin() as conn:
            conn.execute(t.os.delete())
        first[cards] = run_with(cards)
        data = json.loads((tmp_path / "data" / "01_projetos_isales.json").read_text(encoding="utf-8"))
        assert data["contagens"]["detalhados"] == cards
        with engine.begin() as conn:
            conn.execute(t.os.insert(), [{"isales_id": str(p["isales_id"]), "coluna_id": p["coluna_id"],
                                          "status": p["status"], "detalhes_em": NOW, "listagem_hash": p["listagem"]}
                                         for p in data["projetos"]])
        del data
        second[cards] = run_with(cards)  # everything known: only the rolling refresh is fetched
    growth = {name: (peaks[3000] - peaks[1000]) / 2000 for name, peaks in (("first", first), ("second", second))}
    assert growth["first"] < 150 and growth["second"] < 150, (growth, first, second)
