"""Step 04 (lib/steps/push/): the cancellation rule, the ticket text, and whole
runs in this process against the FieldControl simulator and a real database (SQLite and MariaDB)."""

from __future__ import annotations

import re
from argparse import Namespace
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

import lib.db.schema as t
from lib import config
from lib.clock import db_now
from lib.db import pending, runs
from lib.errors import ConfigError, TransientError
from lib.fieldcontrol import FieldControl, document_key, phone_body, same_address
from lib.http import Pacer
from lib.run import RunContext, Summary
from lib.steps import push
from lib.steps.push import Decision, qualify, step, ticket_message
from lib.steps.push.client import ClientSync
from lib.steps.push.outbox import Outbox
from lib.steps.push.plan import Plan
from tests.conftest import gaps, sandbox_env
from tests.steps import push_seed as seed

# --------------------------------------------------------------------------- the rule (table)

INS, AUM, CAN, OUT = "instalacao", "aumento", "cancelado", "outro"


@pytest.mark.parametrize("statuses, last_sent, expected", [
    ([INS], None, ["instalacao"]),
    ([AUM], None, ["aumento"]),
    ([CAN], None, [push.DISPENSED_NO_TICKET]),
    ([OUT], None, [push.DISPENSED_OTHER]),
    ([INS, CAN], None, [push.DISPENSED_CANCELLED, push.DISPENSED_NO_TICKET]),
    ([INS, OUT, CAN], None, [push.DISPENSED_CANCELLED, push.DISPENSED_OTHER, push.DISPENSED_NO_TICKET]),
    ([CAN], "instalacao", ["cancelamento"]),
    ([CAN], "aumento", ["cancelamento"]),
    ([CAN], "cancelamento", [push.DISPENSED_NO_TICKET]),
    ([INS], "instalacao", ["já existe uma OS de instalação enviada e não cancelada para este projeto"]),
    ([INS], "cancelamento", ["instalacao"]),
    ([AUM], "instalacao", ["aumento"]),
    ([AUM], "aumento", ["a OS de aumento de sistema já foi enviada"]),
    ([INS, AUM], None, ["instalacao", "aumento"]),
    ([INS, INS], None, ["instalacao", "já existe uma OS de instalação enviada e não cancelada para este projeto"]),
    ([AUM, CAN], "instalacao", [push.DISPENSED_CANCELLED, "cancelamento"]),
    ([CAN, INS], "instalacao", ["cancelamento", "instalacao"]),
    ([INS, CAN, INS], None, [push.DISPENSED_CANCELLED, push.DISPENSED_NO_TICKET, "instalacao"]),
    ([OUT, INS, CAN, OUT, AUM], None, [push.DISPENSED_OTHER, push.DISPENSED_CANCELLED, push.DISPENSED_NO_TICKET,
                             push.DISPENSED_OTHER, "aumento"]),
    (["ativo"], None, [push.DISPENSED_OTHER]),
])
def test_qualify(statuses, last_sent, expected):
    decisions = qualify(list(enumerate(statuses, start=10)), last_sent)
    assert [d.event_id for d in decisions] == list(range(10, 10 + len(statuses)))
    assert [d.ticket or d.reason for d in decisions] == expected
    assert all((d.ticket is None) != (d.reason is None) for d in decisions)


def test_qualify_never_two_tickets_for_one_event():
    decisions = qualify([(1, INS), (2, AUM), (3, AUM), (4, CAN), (5, CAN), (6, INS)], None)
    assert decisions[0] == Decision(1, INS, reason=push.DISPENSED_CANCELLED)
    assert [d.ticket for d in decisions] == [None, None, None, None, None, "instalacao"]


# --------------------------------------------------------------------------- the ticket text

def test_ticket_message_formats():
    assert ticket_message.money(Decimal("45900")) == "R$ 45.900,00"
    assert ticket_message.money(Decimal("1234567.5")) == "R$ 1.234.567,50"
    assert ticket_message.money(None) == "não informado"
    assert ticket_message.day(datetime(2025, 3, 4, 10, 22)) == "04/03/2025"
    assert ticket_message.subject("aumento", "Maria") == "Aumento de Sistema: Maria"
    text = ticket_message.message(
        "cancelamento", cliente={"nome": "Maria", "doc_pessoal": "52998224725", "telefone": "11987654321"},
        endereco={"logradouro": "Rua A", "numero": None, "cidade": "Recife", "estado": "PE", "cep": "50000000"},
        os_row={"isales_id": "4711", "vendedor": "João", "valor": Decimal("45900.00"), "modulos": "20x 550W",
                "inversor1": "8kW", "data_fechamento": datetime(2025, 3, 14, 10, 22)},
        pagamento={"forma_pgto": "PIX", "valor_seguro": Decimal("890")},
        event={"id": 7, "data_status": datetime(2025, 4, 1)},
        previous={"ticket_tipo": "instalacao", "ticket_field_id": "TICKET-1"})
    for expected in ("CANCELADO no iSales em 01/04/2025", "TICKET-1", "VENDEDOR: João", "R$ 45.900,00",
                     "DATA DE FECHAMENTO: 14/03/2025", "- Módulos: 20x 550W", "- Inversor 2: não informado",
                     "VALOR DO SEGURO: R$ 890,00", "FINANCIAMENTO NO NOME DE: não informado",
                     "CPF 529.982.247-25", "(11) 98765-4321", "Rua A, s/n - Recife/PE - CEP 50000-000"):
        assert expected in text


# --------------------------------------------------------------------------- runs against the sandbox

@pytest.fixture
def env(sandbox, tmp_path, migrated_db):
    return sandbox_env(sandbox, tmp_path, migrated_db)


@pytest.fixture
def lite(sandbox, tmp_path):
    """SQLite only, for what does not depend on the database (HTTP faults, pacing, configuration)."""
    from lib.db import migrate
    from lib.db.engine import make_engine

    url = f"sqlite:///{tmp_path / 'lite.db'}"
    setup = make_engine(url, for_migrations=True)
    migrate.upgrade(setup)
    setup.dispose()
    engine = make_engine(url)
    yield engine, sandbox_env(sandbox, tmp_path, url)
    engine.dispose()


def run04(engine, env, *, ids=None, dry_run=False, reprocessar=False) -> Summary:
    settings = config.load("fieldcontrol", environ=env)
    args = Namespace(dry_run=dry_run, ids=ids, reprocessar_pendentes=reprocessar, verbose=False)
    ctx = RunContext(step="04", settings=settings, args=args, summary=Summary(),
                     engine=None if dry_run else engine, run_id=None if dry_run else runs.start(engine, "04"))
    push.run(ctx)
    return ctx.summary


def posts(sb, route=None):
    return [c for c in sb.calls("fieldcontrol", route) if c["method"] in ("POST", "PUT")]


def only_status_check(sb) -> bool:
    """Nothing to send: the only calls are the services check and the one listing of changed orders."""
    return sorted(f"{c['method']} {c['route']}" for c in sb.calls()) == ["GET /orders", "GET /services"]


def by_document(sb, doc):
    return [c for c in sb.fc_customers() if document_key(c["documentNumber"]) == doc]


def tickets_of(sb, isales_id):
    return sorted((t["external"]["id"] for t in sb.fc_tickets()
                   if (t["external"]["id"] or "").startswith(f"isales:{isales_id}:")), key=lambda e: int(e.split(":")[3]))


def test_new_projects_sent_once(engine, env, sandbox):
    with engine.begin() as conn:
        a = seed.add_project(conn, 4711)
        b = seed.add_project(conn, 4712, statuses=("aumento",), nome="Ana Lima")
        c = seed.add_project(conn, 4713, statuses=("instalacao", "cancelado"), nome="Caio Prado")
        d = seed.add_project(conn, 4714, doc=a["doc"], numero="77", complemento="ap 12", cep="01310-100")
    summary = run04(engine, env)
    assert summary.counts["cliente"]["criados"] == 2
    assert summary.counts["ticket_instalacao"]["criados"] == 2
    assert summary.counts["ticket_aumento"]["criados"] == 1
    assert summary.counts["evento"]["ignorados"] == 2
    assert len(by_document(sandbox, a["doc"])) == 1 and by_document(sandbox, c["doc"]) == []
    customer = by_document(sandbox, a["doc"])[0]
    assert customer["external"]["id"] == f"isales-sync:cliente:{a['doc']}"
    locations = [loc for loc in sandbox.fc_locations() if loc["customer"]["id"] == customer["id"]]
    assert len(locations) == 2  # the primary one (created with the customer) and the second address
    assert sorted(p["number"] for p in sandbox.fc_phones() if p["customer"]["id"] == customer["id"]) == \
        ["1134567890", "11987654321"]
    ticket = next(t for t in sandbox.fc_tickets() if t["external"]["id"] == f"isales:4711:instalacao:{a['events'][0]}")
    assert ticket["subject"] == "Instalação: Maria da Silva" and ticket["name"] == "Maria da Silva"
    assert ticket["service"]["id"] == env["FIELDCONTROL_SERVICO_INSTALACAO"]
    assert "VALOR DO CONTRATO: R$ 45.900,00" in ticket["message"]
    with engine.connect() as conn:
        cliente = conn.execute(select(t.cliente).where(t.cliente.c.id == a["cliente_id"])).mappings().one()
        assert cliente["field_id"] == customer["id"] and cliente["criado_pelo_script"]
        row = seed.history(conn, a["os_id"])[0]
        assert row["enviado_field"] and row["ticket_tipo"] == "instalacao" and row["ticket_field_id"] == ticket["id"]
        os_row = conn.execute(select(t.os).where(t.os.c.id == a["os_id"])).mappings().one()
        assert os_row["field_id"] == ticket["id"] and os_row["tipo_servico"] == ticket["service"]["id"]
        endereco = conn.execute(select(t.endereco).where(t.endereco.c.id == a["endereco_id"])).mappings().one()
        assert endereco["location_field_id"] == customer["primaryLocation"]["id"] == ticket["location"]["id"]
        assert [r["motivo_dispensa"] for r in seed.history(conn, c["os_id"])] == [
            push.DISPENSED_CANCELLED, push.DISPENSED_NO_TICKET]
        audit = conn.execute(select(t.alteracao.c.tabela, t.alteracao.c.campo)
                             .where(t.alteracao.c.origem == "04")).all()
        assert ("cliente", "field_id") in audit and ("os", "field_id") in audit
        assert all(a["estado"] == "concluida" for a in seed.actions(conn).values())
        second = conn.execute(select(t.endereco).where(t.endereco.c.id == d["endereco_id"])).mappings().one()
    stored = next(loc for loc in locations if loc["id"] == second["location_field_id"])
    assert stored["address"]["complement"] == "ap 12" and same_address(stored["address"], push.records.address_of(second))
    assert b
    sandbox.reset_calls()
    again = run04(engine, env)
    assert only_status_check(sandbox) and not again.counts


def test_hand_made_customer_adopted_nothing_duplicated(lite, sandbox, tmp_path):
    engine, env = lite
    doc = seed.make_cpf(9001)
    with engine.begin() as conn:
        project = seed.add_project(conn, 4800, doc=doc)
        endereco = conn.execute(select(t.endereco).where(t.endereco.c.id == project["endereco_id"])).mappings().one()
    address = push.records.address_of(endereco)
    hand = sandbox.fc_add_customer("MARIA DA SILVA", f"{doc[:3]}.{doc[3:6]}.{doc[6:9]}-{doc[9:]}", address=address)
    fc = FieldControl.from_settings(config.load("fieldcontrol", environ=env))
    fc.create_phone(hand["id"], phone_body("(11) 98765-4321", primary=True))
    summary = run04(engine, env)
    assert summary.counts["cliente"]["adotados"] == 1 and summary.counts["local"]["adotados"] == 1
    assert summary.counts["telefone"] == {"adotados": 1, "criados": 1}
    assert posts(sandbox, "POST /customers") == [] and posts(sandbox, "POST /customers/{id}/locations") == []
    assert len(by_document(sandbox, doc)) == 1
    ticket = next(t for t in sandbox.fc_tickets() if (t["external"]["id"] or "").startswith("isales:4800:"))
    assert ticket["customer"]["id"] == hand["id"] and ticket["location"]["id"] == hand["primaryLocation"]["id"]
    with engine.begin() as conn:
        row = conn.execute(select(t.cliente).where(t.cliente.c.id == project["cliente_id"])).mappings().one()
        assert row["field_id"] == hand["id"] and not row["criado_pelo_script"]
        conn.execute(t.cliente.update().values(nome="Maria S."))
        seed.add_event(conn, project["os_id"], "aumento")
    sandbox.reset_calls()
    run04(engine, env)
    assert posts(sandbox, "PUT /customers/{id}") == []  # never overwrite a customer made by hand
    assert len(posts(sandbox, "POST /tickets")) == 1


def test_move_sequences_and_cancellation(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        p = seed.add_project(conn, 4900)
    run04(engine, env)
    with engine.begin() as conn:
        cancel = seed.add_event(conn, p["os_id"], "cancelado")
    run04(engine, env)
    ticket = next(t for t in sandbox.fc_tickets() if t["external"]["id"] == f"isales:4900:cancelamento:{cancel}")
    assert ticket["subject"] == "Cancelamento: Maria da Silva"
    assert ticket["service"]["id"] == env["FIELDCONTROL_SERVICO_CANCELAMENTO"]
    with engine.begin() as conn:
        installed = seed.history(conn, p["os_id"])[0]
        identifier = next(t["identifier"] for t in sandbox.fc_tickets() if t["id"] == installed["ticket_field_id"])
        assert installed["ticket_identificador"] == identifier
        assert f"A OS de instalação já enviada ({identifier}) não deve ser executada." in ticket["message"]
        assert installed["ticket_field_id"] not in ticket["message"]  # the field team reads the identifier
        events = [seed.add_event(conn, p["os_id"], s) for s in ("outro", "instalacao", "aumento", "aumento")]
    run04(engine, env)
    assert tickets_of(sandbox, 4900) == [f"isales:4900:instalacao:{p['events'][0]}", f"isales:4900:cancelamento:{cancel}",
                                         f"isales:4900:instalacao:{events[1]}", f"isales:4900:aumento:{events[2]}"]
    with engine.connect() as conn:
        rows = seed.history(conn, p["os_id"])
    assert rows[-1]["motivo_dispensa"] == "a OS de aumento de sistema já foi enviada"
    assert rows[2]["motivo_dispensa"] == push.DISPENSED_OTHER


def test_cancellation_names_a_ticket_sent_by_an_earlier_version_by_its_identifier(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        p = seed.add_project(conn, 4901)
    run04(engine, env)
    hist = t.os_status_historico
    with engine.begin() as conn:  # sent before the identifier was recorded
        conn.execute(hist.update().values(ticket_identificador=None))
        cancel = seed.add_event(conn, p["os_id"], "cancelado")
    run04(engine, env)
    with engine.connect() as conn:
        installed = seed.history(conn, p["os_id"])[0]
    identifier = next(tk["identifier"] for tk in sandbox.fc_tickets() if tk["id"] == installed["ticket_field_id"])
    assert installed["ticket_identificador"] == identifier  # read once and kept
    ticket = next(tk for tk in sandbox.fc_tickets() if tk["external"]["id"] == f"isales:4901:cancelamento:{cancel}")
    assert f"({identifier})" in ticket["message"] and installed["ticket_field_id"] not in ticket["message"]


def test_rejected_record_becomes_pending_and_is_retried(engine, env, sandbox):
    with engine.begin() as conn:
        bad = seed.add_project(conn, 5000, estado="São Paulo")
        seed.add_project(conn, 5001)
        nocoords = seed.add_project(conn, 5002, coords=False)
    summary = run04(engine, env)
    assert summary.counts["cliente"] == {"criados": 1, "pendentes": 2}
    assert tickets_of(sandbox, 5001) and not tickets_of(sandbox, 5000)
    with engine.connect() as conn:
        pend = seed.open_pending(conn)
    reason = pend[f"acao:customer:{bad['cliente_id']}"]
    assert "projeto 5000 (Maria da Silva)" in reason and "address.state must be a two-letter state code" in reason
    assert "coordenadas" in pend[f"acao:customer:{nocoords['cliente_id']}"]
    assert len(posts(sandbox, "POST /customers")) == 2  # the one without coordinates never left
    sandbox.reset_calls()
    assert run04(engine, env).counts["cliente"] == {"pendentes": 2}
    assert only_status_check(sandbox)  # unchanged and rejected less than 6 hours ago: not even looked up
    run04(engine, env, reprocessar=True)
    assert len(posts(sandbox, "POST /customers")) == 1
    with engine.begin() as conn:
        conn.execute(t.acao_field.update().values(atualizada_em=db_now() - timedelta(hours=7)))
    sandbox.reset_calls()
    run04(engine, env)
    assert len(posts(sandbox, "POST /customers")) == 1  # 6 hours passed
    with engine.begin() as conn:
        conn.execute(t.endereco.update().where(t.endereco.c.id == bad["endereco_id"]).values(estado="SP"))
    run04(engine, env)
    assert len(tickets_of(sandbox, 5000)) == 1
    with engine.begin() as conn:
        assert f"acao:customer:{bad['cliente_id']}" not in seed.open_pending(conn)
        seed.add_event(conn, nocoords["os_id"], "cancelado")  # cancelled before anything was sent
    run04(engine, env)
    with engine.connect() as conn:
        assert seed.open_pending(conn) == {}  # the customer is no longer needed: its pending item closes


POST_ROUTES = ["POST /customers", "POST /customers/{id}/locations", "POST /customers/{id}/phones",
               "POST /customers/{id}/emails", "POST /tickets"]


def test_commit_then_drop_on_every_write_never_duplicates(engine, env, sandbox):
    """Each kind of write is stored by FieldControl and its answer lost: looked up, never sent twice."""
    with engine.begin() as conn:
        first = seed.add_project(conn, 5100)
        seed.add_project(conn, 5101, doc=first["doc"], numero="9")
    for route in POST_ROUTES:
        sandbox.add_fault(system="fieldcontrol", route=route, kind="commit_then_drop", times=1)
    run04(engine, env)
    with engine.begin() as conn:
        conn.execute(t.cliente.update().values(nome="Maria da Silva Souza"))
    sandbox.add_fault(system="fieldcontrol", route="PUT /customers/{id}", kind="commit_then_drop", times=1)
    run04(engine, env)
    for route in POST_ROUTES + ["PUT /customers/{id}"]:
        assert [c["fault"] for c in sandbox.calls("fieldcontrol", route)].count("commit_then_drop") == 1, route
    assert len(by_document(sandbox, first["doc"])) == 1
    customer = by_document(sandbox, first["doc"])[0]
    assert customer["name"] == "Maria da Silva Souza"
    assert len([loc for loc in sandbox.fc_locations() if loc["customer"]["id"] == customer["id"]]) == 2
    assert len([p for p in sandbox.fc_phones() if p["customer"]["id"] == customer["id"]]) == 2
    assert len([e for e in sandbox.fc_emails() if e["customer"]["id"] == customer["id"]]) == 1
    assert len(tickets_of(sandbox, 5100)) == len(tickets_of(sandbox, 5101)) == 1
    with engine.connect() as conn:
        assert {a["estado"] for a in seed.actions(conn).values()} == {"concluida"}
        assert seed.open_pending(conn) == {}


def age_open_actions(engine, seconds: float) -> None:
    """Time passes for the open actions: their last attempt moves `seconds` into the past."""
    with engine.begin() as conn:
        for action in seed.actions(conn).values():
            if action["estado"] in ("enviando", "incerta"):
                conn.execute(t.acao_field.update().where(t.acao_field.c.id == action["id"]).values(
                    atualizada_em=action["atualizada_em"] - timedelta(seconds=seconds)))


def test_dropped_post_is_resent_only_after_the_settle_period_and_a_look_up(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5200)
    sandbox.add_fault(system="fieldcontrol", route="POST /tickets", kind="drop", times=1)
    with pytest.raises(TransientError, match="1 escrita\\(s\\) no FieldControl com resultado incerto"):
        run04(engine, env)  # looked up at once, not found: NOT resent in this run (it may still land)
    assert tickets_of(sandbox, 5200) == [] and len(posts(sandbox, "POST /tickets")) == 1
    with engine.connect() as conn:
        assert "nada é reenviado antes de" in seed.open_pending(conn)["acao:ticket:1"]
    with pytest.raises(TransientError):
        run04(engine, env)  # a run within the settle period looks again and still does not send
    assert len(posts(sandbox, "POST /tickets")) == 1
    age_open_actions(engine, 601)
    run04(engine, env)  # after the period: looked up once more, absent, sent
    assert len(tickets_of(sandbox, 5200)) == 1
    assert len(posts(sandbox, "POST /tickets")) == 2 and len(sandbox.calls("fieldcontrol", "GET /tickets")) == 3
    with engine.connect() as conn:
        assert seed.open_pending(conn) == {}


def test_crash_between_record_and_receipt(engine, env, sandbox, monkeypatch):
    """Killed with the action `enviando` (before or after FieldControl stored it): the next run
    looks it up before any POST (and resends only after the settle period), so each object exists once."""
    cases = [(method, when) for method in ("create_customer", "create_location", "create_phone", "create_ticket")
             for when in ("before", "after")]
    for n, (method, when) in enumerate(cases):
        with engine.begin() as conn:
            p = seed.add_project(conn, 5300 + 2 * n)
            seed.add_project(conn, 5301 + 2 * n, doc=p["doc"], numero="9")
        original = getattr(FieldControl, method)

        def crash(self, *args, original=original, when=when):
            if when == "after":
                original(self, *args)
            raise KeyboardInterrupt

        monkeypatch.setattr(FieldControl, method, crash)
        with pytest.raises(KeyboardInterrupt):
            run04(engine, env)
        monkeypatch.setattr(FieldControl, method, original)
        with engine.connect() as conn:
            assert "enviando" in {a["estado"] for a in seed.actions(conn).values()}, (method, when)
        if when == "before":  # absent from FieldControl, but it could still land: never resent before the wait
            with pytest.raises(TransientError):
                run04(engine, env)
            age_open_actions(engine, 601)
        run04(engine, env)
        assert len(by_document(sandbox, p["doc"])) == 1, (method, when)
        customer = by_document(sandbox, p["doc"])[0]
        mine = [x for x in sandbox.fc_locations() + sandbox.fc_phones() if x["customer"]["id"] == customer["id"]]
        assert len(mine) == 4, (method, when)  # two addresses, two phones
        assert len(tickets_of(sandbox, 5300 + 2 * n)) == len(tickets_of(sandbox, 5301 + 2 * n)) == 1, (method, when)
        with engine.connect() as conn:
            assert {a["estado"] for a in seed.actions(conn).values()} == {"concluida"}, (method, when)


def test_edits_update_customer_and_add_locations_and_phones(engine, env, sandbox):
    with engine.begin() as conn:
        p = seed.add_project(conn, 5400)
    run04(engine, env)
    customer = by_document(sandbox, p["doc"])[0]
    with engine.begin() as conn:  # as step 03 does: the address edited in place, its location forgotten
        conn.execute(t.endereco.update().where(t.endereco.c.id == p["endereco_id"]).values(
            logradouro="Rua Augusta", numero="500", location_field_id=None))
        conn.execute(t.cliente.update().values(telefone="11912345678"))
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert summary.counts["cliente"] == {"atualizados": 1} and summary.counts["telefone"] == {"criados": 1}
    assert summary.counts["local"] == {"atualizados": 1} and summary.counts["ticket_instalacao"] == {"atualizados": 1}
    assert [c["route"] for c in posts(sandbox)] == ["/customers/{id}", "/customers/{id}/locations/{locationId}",
                                                    "/customers/{id}/phones", "/tickets/{id}"]
    stored = next(c for c in sandbox.fc_customers() if c["id"] == customer["id"])
    assert stored["address"]["street"] == "Rua Augusta"
    assert stored["contact"] == {"phone": "11912345678", "email": "maria.silva@example.com"}  # the main contact
    primary = next(loc for loc in sandbox.fc_locations() if loc["id"] == customer["primaryLocation"]["id"])
    assert primary["name"] == "Rua Augusta, 500"  # the name follows the address
    phones = {ph["number"]: ph for ph in sandbox.fc_phones() if ph["customer"]["id"] == customer["id"]}
    assert phones["11912345678"]["primary"]
    ticket = next(tk for tk in sandbox.fc_tickets() if (tk["external"]["id"] or "").startswith("isales:5400:"))
    assert "TELEFONE: (11) 91234-5678" in ticket["message"] and "Rua Augusta, 500" in ticket["message"]
    with engine.begin() as conn:
        row = conn.execute(select(t.endereco).where(t.endereco.c.id == p["endereco_id"])).mappings().one()
        assert row["location_field_id"] == customer["primaryLocation"]["id"]  # the PUT moved the primary location
        old_phone = f"revisar:telefone:{phones['11987654321']['id']}"
        assert "telefone antigo (11) 9…-…21 do cliente Maria da Silva" in seed.open_pending(conn)[old_phone]
        second = seed.add_project(conn, 5401, doc=p["doc"], numero="12")
        conn.execute(t.endereco.update().where(t.endereco.c.id == second["endereco_id"]).values(location_field_id=None))
    run04(engine, env)
    with engine.begin() as conn:  # the second address edited: a location for the new address
        conn.execute(t.endereco.update().where(t.endereco.c.id == second["endereco_id"]).values(
            numero="14", location_field_id=None))
    sandbox.reset_calls()
    run04(engine, env)
    # a location for the new address, and the open ticket of that project moves to it
    assert [c["route"] for c in posts(sandbox)] == ["/customers/{id}/locations", "/tickets/{id}"]
    locations = [loc for loc in sandbox.fc_locations() if loc["customer"]["id"] == customer["id"]]
    assert sorted(loc["address"]["number"] for loc in locations) == ["12", "14", "500"]
    moved = next(tk for tk in sandbox.fc_tickets() if (tk["external"]["id"] or "").startswith("isales:5401:"))
    assert moved["location"]["id"] == next(loc["id"] for loc in locations if loc["address"]["number"] == "14")
    sandbox.reset_calls()
    run04(engine, env)
    assert posts(sandbox) == []  # followed once: nothing more to send


def test_a_clients_old_contacts_are_checked_against_its_own_review_items_only(engine, env, sandbox):
    """Once per client with a FieldControl id: reading every open "telefone:"/"email:" review item
    there cost time growing with the account (issue 14); only the client's own keys are asked."""
    from sqlalchemy import event

    with engine.begin() as conn:
        for n in range(3):
            seed.add_project(conn, 5600 + n, doc=seed.make_cpf(5600 + n), nome=f"Cliente {n}")
        for n in range(20):  # other clients' items, open
            pending.record(conn, "04", f"revisar:telefone:outro-{n}", "telefone antigo de outro cliente")
    run04(engine, env)
    with engine.begin() as conn:
        conn.execute(t.cliente.update().values(telefone="11912345678"))
    parameters: list = []
    listener = lambda conn, cursor, sql, params, *rest: parameters.append(params)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        run04(engine, env)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    asked = {value for params in parameters for value in (params if isinstance(params, (list, tuple)) else
                                                          (params or {}).values()) if isinstance(value, str)}
    assert not asked & {"revisar:telefone:", "revisar:email:"}  # no prefix read of every item
    with engine.connect() as conn:
        items = seed.open_pending(conn)
    assert sum(1 for k in items if k.startswith("revisar:telefone:") and "outro" not in k) == 3  # each old phone
    assert sum(1 for k in items if "outro" in k) == 20


def test_a_ticket_turned_into_an_order_is_reported_not_changed(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        p = seed.add_project(conn, 5500, email="antigo@example.com")
    run04(engine, env)
    with engine.connect() as conn:
        sent = seed.history(conn, p["os_id"])[0]
    sandbox.fc_convert_ticket(sent["ticket_field_id"], at="2026-12-01T10:00:00Z")
    with engine.begin() as conn:
        conn.execute(t.os.update().values(observacoes="Telhado de fibrocimento"))
        conn.execute(t.cliente.update().values(email="novo@example.com"))
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert "PUT /tickets/{id}" not in sandbox.call_counts()  # not touched
    with engine.connect() as conn:
        items = {k: v for k, v in seed.open_pending(conn).items() if k.startswith("revisar:")}
    ticket_items = [v for k, v in items.items() if k.startswith(f"revisar:ticket:{sent['id']}:")]
    assert len(ticket_items) == 1 and sent["ticket_identificador"] in ticket_items[0]
    assert "já virou ordem de serviço" in ticket_items[0] and "OBSERVAÇÕES DO PROJETO" in ticket_items[0]
    old_email = next(e for e in sandbox.fc_emails() if e["address"] == "antigo@example.com")
    assert "e-mail antigo a…@example.com" in items[f"revisar:email:{old_email['id']}"]
    assert summary.counts["revisar_no_fieldcontrol"] == {"pendentes": 2}
    # listed once: the next run asks nothing about the ticket again and opens nothing new
    sandbox.reset_calls()
    assert "revisar_no_fieldcontrol" not in run04(engine, env).counts
    assert "GET /tickets/{id}" not in sandbox.call_counts()
    # the operator deletes the old e-mail in FieldControl: its item closes by itself
    sandbox.fc_delete("emails", old_email["id"])
    run04(engine, env)
    with engine.connect() as conn:
        still = seed.open_pending(conn)
    assert f"revisar:email:{old_email['id']}" not in still and any(k.startswith("revisar:ticket:") for k in still)


def test_an_open_ticket_follows_a_value_that_comes_back(lite, sandbox):
    """Two cards of one person can alternate a value: the ticket holds the latest, even an earlier one."""
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5600)
    run04(engine, env)

    def message() -> str:
        return next(tk for tk in sandbox.fc_tickets() if (tk["external"]["id"] or "").startswith("isales:5600:"))["message"]

    for value in ("Telhado metálico", "Telhado cerâmico", "Telhado metálico"):
        with engine.begin() as conn:
            conn.execute(t.os.update().values(observacoes=value))
        run04(engine, env)
        assert f"OBSERVAÇÕES DO PROJETO: {value}" in message()
    sandbox.reset_calls()
    run04(engine, env)
    assert posts(sandbox) == []


def test_an_ambiguous_ticket_update_is_sent_again_once(lite, sandbox):
    """A ticket PUT whose answer is lost is an outbox action: a PUT of the whole body is idempotent, so
    it is sent again at once (no look-up), and recorded done once."""
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5700)
    run04(engine, env)
    with engine.begin() as conn:
        conn.execute(t.os.update().values(observacoes="Telhado metálico"))
    sandbox.add_fault(system="fieldcontrol", route="PUT /tickets/{id}", kind="commit_then_drop", times=1)
    run04(engine, env)
    with engine.connect() as conn:
        puts = {k: a["estado"] for k, a in seed.actions(conn).items() if k.startswith("ticket-put:")}
        assert list(puts.values()) == ["concluida"] and seed.open_pending(conn) == {}
    assert [c["fault"] for c in sandbox.calls("fieldcontrol", "PUT /tickets/{id}")] == ["commit_then_drop", None]
    assert len(sandbox.calls("fieldcontrol", "PUT /tickets/{id}")) == 2 and len(tickets_of(sandbox, 5700)) == 1
    ticket = next(tk for tk in sandbox.fc_tickets() if (tk["external"]["id"] or "").startswith("isales:5700:"))
    assert "OBSERVAÇÕES DO PROJETO: Telhado metálico" in ticket["message"]


def test_dry_run_changes_nothing(lite, sandbox, capsys):
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5500)
        seed.add_project(conn, 5501, statuses=("instalacao", "cancelado"))
    with engine.connect() as conn:
        before = seed.dump(conn)
    fc_before = (sandbox.fc_customers(), sandbox.fc_locations(), sandbox.fc_tickets())
    sandbox.reset_calls()
    summary = run04(engine, env, dry_run=True)
    out = capsys.readouterr().out
    assert "POST /customers" in out and "será procurado por documento" in out and '"subject": "Instalação: ' in out
    assert "seria dispensado" in out and summary.counts["cliente"] == {"previstos": 1}
    assert sandbox.calls() == []
    with engine.connect() as conn:
        assert seed.dump(conn) == before
    assert (sandbox.fc_customers(), sandbox.fc_locations(), sandbox.fc_tickets()) == fc_before


def test_the_run_sends_what_the_dry_run_printed(lite, sandbox, monkeypatch, capsys):
    """--dry-run prints the plan as it is made (each client walked once); the real run, deciding each
    client once too, sends exactly the actions the dry run listed, in its order."""
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5700)
        seed.add_project(conn, 5701, statuses=("instalacao", "cancelado"), nome="Bia Rocha")
        seed.add_project(conn, 5702, statuses=("aumento",), nome="Ana Lima")
        seed.add_project(conn, 5703, coords=False, nome="Caio Prado")
    plans, walks, taken = [], [], []
    make_plan, decide, take = step.make_plan, ClientSync.decide, Plan.take
    monkeypatch.setattr(step, "make_plan", lambda *args: (plans.append(make_plan(*args)), plans[-1])[1])
    monkeypatch.setattr(ClientSync, "decide",
                        lambda self, client, decisions: (walks.append(client.id), decide(self, client, decisions))[1])
    monkeypatch.setattr(Plan, "take", lambda self: (taken.append(take(self)), taken[-1])[1])
    summary = run04(engine, env, dry_run=True)
    printed = capsys.readouterr().out
    assert len(plans) == 1 and len(walks) == len(set(walks)) == 4
    entries = [entry for batch, _notes in taken for entry in batch]
    assert printed.count("\n[") == len(entries)  # the heading, then one block per entry
    assert all(entry.text() in printed for entry in entries)
    dry_sends = [entry.chave for entry in entries if entry.sends and entry.chave]
    assert summary.counts["cliente"] == {"previstos": 2} and plans[0].requests > len(dry_sends) > 0
    plans.clear(), walks.clear()
    run04(engine, env)
    assert plans == [] and len(walks) == len(set(walks)) == 4  # no plan made before sending: one walk
    with engine.connect() as conn:
        sent = [row.chave for row in conn.execute(select(t.acao_field.c.chave)
                                                  .where(t.acao_field.c.payload.isnot(None)).order_by(t.acao_field.c.id))]
    assert sent == dry_sends


def test_a_real_run_decides_each_client_once(engine, env, sandbox, monkeypatch):
    """Issue 16 §6: one walk per run, each client's actions decided once (the run used to walk every
    client twice: a plan to count the estimate, then again to send). Counted on the first load, on a
    run with edits to follow (customer PUT, ticket PUT, a cancellation) and on a run with nothing new."""
    with engine.begin() as conn:
        projects = [seed.add_project(conn, 6700 + n, nome=f"Cliente {n}") for n in range(3)]
    decided: Counter[int] = Counter()
    ensure_customer = ClientSync.ensure_customer
    monkeypatch.setattr(ClientSync, "ensure_customer", lambda self, client, endereco: (
        decided.update([client.id]), ensure_customer(self, client, endereco))[1])
    clients = {project["cliente_id"] for project in projects}

    run04(engine, env)
    assert dict(decided) == dict.fromkeys(clients, 1)
    assert [len(tickets_of(sandbox, 6700 + n)) for n in range(3)] == [1, 1, 1]
    with engine.begin() as conn:
        conn.execute(t.cliente.update().where(t.cliente.c.id == projects[0]["cliente_id"]).values(nome="Cliente Zero"))
        conn.execute(t.os.update().where(t.os.c.id == projects[1]["os_id"]).values(observacoes="Telhado metálico"))
        seed.add_event(conn, projects[2]["os_id"], "cancelado")
    decided.clear()
    summary = run04(engine, env)
    assert dict(decided) == dict.fromkeys(clients, 1)
    assert summary.counts["ticket_cancelamento"] == {"criados": 1} and summary.counts["cliente"] == {"atualizados": 1}
    decided.clear()
    run04(engine, env)
    assert dict(decided) == dict.fromkeys(clients, 1)


def test_waiting_events_are_told_once_per_run(lite, sandbox, caplog):
    """The plan made before sending tells nothing: each waiting project is logged once, by the run
    that sends (or by --dry-run, from its plan)."""
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5800, coords=False, nome="Caio Prado")
    told = ["projeto 5800 (Caio Prado): 1 evento(s) aguardam a próxima execução (a ordem dos eventos importa)"]
    caplog.set_level("INFO", logger="lib.steps.push")
    summary = run04(engine, env, dry_run=True)
    assert [r.getMessage() for r in caplog.records if "aguardam" in r.getMessage()] == told
    assert summary.counts["evento"] == {"pendentes": 1}
    caplog.clear()
    summary = run04(engine, env)
    assert [r.getMessage() for r in caplog.records if "aguardam" in r.getMessage()] == told
    assert summary.counts["evento"] == {"pendentes": 1} and summary.counts["cliente"] == {"pendentes": 1}


def test_the_run_holds_one_batch_of_clients_and_their_actions(engine, env, sandbox, monkeypatch):
    """Issue 14 §2: 04 reads the clients a batch at a time and holds the outbox actions of that batch
    only (and the open actions of earlier runs a page at a time), not every client and every action."""
    with engine.begin() as conn:
        projects = [seed.add_project(conn, 6400 + n, nome=f"Cliente {n}") for n in range(7)]
    run04(engine, env)
    with engine.begin() as conn:
        for project in projects:
            seed.add_event(conn, project["os_id"], "cancelado")
        # three tickets of a run cut off after sending them, before their receipts: looked up first
        cut = [project["events"][0] for project in projects[:3]]
        conn.execute(t.acao_field.update().where(t.acao_field.c.historico_id.in_(cut)).values(
            estado="incerta", field_id=None, atualizada_em=db_now() - timedelta(seconds=601)))
        conn.execute(t.os_status_historico.update().where(t.os_status_historico.c.id.in_(cut)).values(
            enviado_field=False, ticket_tipo=None, ticket_field_id=None, enviado_em=None))
    held = {"clients": 0, "actions": 0}
    clients_of, keep = push.records._clients, Outbox._keep

    def counted_clients(conn, os_rows, *known):
        found = clients_of(conn, os_rows, *known)
        held["clients"] = max(held["clients"], len(found[0]))
        return found

    def counted_keep(self, action):
        keep(self, action)
        held["actions"] = max(held["actions"], len(self.actions))

    monkeypatch.setattr(push.records, "_clients", counted_clients)
    monkeypatch.setattr(Outbox, "_keep", counted_keep)
    monkeypatch.setattr(push.records, "BATCH", 2, raising=False)
    monkeypatch.setattr(push.outbox, "PAGE", 2, raising=False)
    summary = run04(engine, env)
    with engine.connect() as conn:
        per_client = Counter(action["cliente_id"] for action in seed.actions(conn).values())
    assert summary.counts["ticket_instalacao"] == {"criados": 3}  # the open ones, found in FieldControl
    assert summary.counts["ticket_cancelamento"] == {"criados": 7}
    assert held["clients"] == 2
    assert held["actions"] <= sum(sorted(per_client.values())[-2:]) < sum(per_client.values())


def test_the_estimate_counts_the_customer_look_ups_the_run_makes(lite, sandbox, caplog):
    """Past FEW_LOOKUPS new customers the run reads the account once instead of two look-ups each:
    the dry run's estimate says so (it counted two per customer), and the real run makes just as many
    requests, telling its progress as it goes."""
    engine, env = lite
    with engine.begin() as conn:
        for n in range(7):
            seed.add_project(conn, 6500 + n, nome=f"Cliente {n}")
    caplog.set_level("INFO", logger="lib.steps.push")
    run04(engine, env, dry_run=True)
    estimate = next(int(re.search(r"cerca de (\d+) requisição", r.getMessage()).group(1))
                    for r in caplog.records if "requisição(ões) previstas" in r.getMessage())
    sandbox.reset_calls()
    caplog.clear()
    run04(engine, env)
    sent = [c for c in sandbox.calls("fieldcontrol") if c["route"] != "/orders"]  # the status phase comes after
    assert [c["route"] for c in sent].count("/customers") == 7 + 1  # 7 created, the account read once
    assert estimate == len(sent)
    told = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FieldControl: ")]
    assert told == [f"FieldControl: 7 de 7 cliente(s), {len(sent)} requisição(ões) em " + told[-1].rsplit(" em ", 1)[1]]
    assert any("7 projeto(s) de 7 cliente(s) a conferir" in r.getMessage() for r in caplog.records)


def test_the_real_run_tells_its_progress_and_the_time_left(caplog):
    """Without a plan made ahead, the real run tells the operator of a long first load how far it got
    and how long the rest takes at the pace so far (every PROGRESS_SECONDS; here every client)."""
    made = iter([3, 7, 12])
    told = step.Progress(3, lambda: next(made), every=0)
    caplog.set_level("INFO", logger="lib.steps.push")
    told.tick(), told.tick(), told.tick()  # the last client is told by the run's last line
    told.tell()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" em ")[0] for line in lines] == [
        "FieldControl: 1 de 3 cliente(s), 3 requisição(ões)", "FieldControl: 2 de 3 cliente(s), 7 requisição(ões)",
        "FieldControl: 3 de 3 cliente(s), 12 requisição(ões)"]
    assert all("no ritmo até aqui faltam ≈ " in line for line in lines[:2]) and "faltam" not in lines[2]


def test_an_open_ticket_of_a_dispensed_event_found_by_reconciliation(engine, env, sandbox):
    """A ticket POST left open, its event dispensed meanwhile (cancelled within the settle period): the
    next run finds the ticket and records the event as sent, reading the event inside the receipt's
    own transaction (on SQLite another connection waited for that transaction's lock, then failed)."""
    with engine.begin() as conn:
        project = seed.add_project(conn, 6600)
    run04(engine, env)
    event = project["events"][0]
    with engine.begin() as conn:
        conn.execute(t.acao_field.update().where(t.acao_field.c.historico_id == event).values(
            estado="incerta", field_id=None, atualizada_em=db_now() - timedelta(seconds=601)))
        conn.execute(t.os_status_historico.update().where(t.os_status_historico.c.id == event).values(
            enviado_field=False, ticket_tipo=None, ticket_field_id=None, enviado_em=None,
            motivo_dispensa=push.DISPENSED_CANCELLED))
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert summary.counts["ticket_instalacao"] == {"criados": 1} and not posts(sandbox, "/tickets")
    with engine.connect() as conn:
        row = seed.history(conn, project["os_id"])[0]
    assert row["enviado_field"] and row["ticket_field_id"] and row["motivo_dispensa"] is None


def test_a_cancellation_dispensed_by_an_earlier_version_is_decided_again_when_its_ticket_is_found(
        engine, env, sandbox):
    """Earlier versions dispensed the events of a project cancelled while its installation POST was
    uncertain. When reconciliation finds that ticket, the later dispensed events are decided again:
    the cancellation is sent in the same run; if a later event was sent since, a "revisar:" item
    tells the operator instead."""
    with engine.begin() as conn:
        project = seed.add_project(conn, 6610)
        other = seed.add_project(conn, 6611)
    run04(engine, env)
    with engine.begin() as conn:
        cancels = {p["os_id"]: seed.add_event(conn, p["os_id"], "cancelado") for p in (project, other)}
        reapproved = seed.add_event(conn, other["os_id"], "instalacao")
        firsts = [p["events"][0] for p in (project, other)]
        conn.execute(t.acao_field.update().where(t.acao_field.c.historico_id.in_(firsts)).values(
            estado="incerta", field_id=None, atualizada_em=db_now() - timedelta(seconds=601)))
        hist = t.os_status_historico
        conn.execute(hist.update().where(hist.c.id.in_(firsts)).values(
            enviado_field=False, ticket_tipo=None, ticket_field_id=None, enviado_em=None,
            motivo_dispensa=push.DISPENSED_CANCELLED))
        conn.execute(hist.update().where(hist.c.id.in_(list(cancels.values()))).values(
            motivo_dispensa=push.DISPENSED_NO_TICKET))
        # the other project was approved again and that installation sent by the earlier version
        conn.execute(hist.update().where(hist.c.id == reapproved).values(
            enviado_field=True, ticket_tipo="instalacao", ticket_field_id="manual-1", enviado_em=db_now()))
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert summary.counts["ticket_instalacao"] == {"criados": 2}  # both found, none posted again
    assert summary.counts["ticket_cancelamento"] == {"criados": 1}
    assert tickets_of(sandbox, 6610) == [f"isales:6610:instalacao:{project['events'][0]}",
                                         f"isales:6610:cancelamento:{cancels[project['os_id']]}"]
    with engine.connect() as conn:
        assert seed.history(conn, other["os_id"])[1]["motivo_dispensa"] == push.DISPENSED_NO_TICKET
        items = {item["chave"]: item for item in pending.open_items(conn, "04")}
    assert f"revisar:dispensado:{other['events'][0]}" in items
    assert str(cancels[other["os_id"]]) in items[f"revisar:dispensado:{other['events'][0]}"]["motivo"]


def test_held_from_waits_only_for_a_dispensal_of_an_open_ticket():
    decisions = qualify([(1, INS), (2, CAN), (3, OUT)], None)  # 1 and 2 dispensed, 3 dispensed
    assert push.rule.held_from(decisions, {1}) == 0
    assert push.rule.held_from(decisions, set()) is None
    sent = qualify([(1, INS), (2, OUT)], None)  # 1 sends: its open POST is looked up by its own turn
    assert push.rule.held_from(sent, {1}) is None


def test_ids_limit_the_run(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 5600)
        seed.add_project(conn, 5601)
    run04(engine, env, ids=["5601"])
    assert not tickets_of(sandbox, 5600) and len(tickets_of(sandbox, 5601)) == 1


def test_configuration_and_unreachable(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        p = seed.add_project(conn, 5700)
    with pytest.raises(ConfigError, match="FIELDCONTROL_SERVICO_AUMENTO=bogus não existe"):
        run04(engine, {**env, "FIELDCONTROL_SERVICO_AUMENTO": "bogus"})
    closed = {**env, "FIELDCONTROL_API_URL": "http://127.0.0.1:9", "HTTP_MAX_TENTATIVAS": "2"}
    with pytest.raises(TransientError):
        run04(engine, closed)
    with engine.connect() as conn:
        assert {a["estado"] for a in seed.actions(conn).values()} <= {"nova"}
        assert not seed.history(conn, p["os_id"])[0]["enviado_field"]
    run04(engine, env)
    assert len(tickets_of(sandbox, 5700)) == 1


def test_429_storm(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        docs = [seed.add_project(conn, 5800 + n)["doc"] for n in range(3)]
    sandbox.add_fault(system="fieldcontrol", kind="status", status=429, rate=0.4, retry_after=0.01)
    run04(engine, {**env, "HTTP_MAX_TENTATIVAS": "12"})
    assert any(c["status"] == 429 for c in sandbox.calls("fieldcontrol"))
    assert all(len(by_document(sandbox, doc)) == 1 for doc in docs)
    assert all(len(tickets_of(sandbox, 5800 + n)) == 1 for n in range(3))


def test_every_request_of_a_run_keeps_the_configured_pace(lite, sandbox, pacers):
    """Every FieldControl request (retries included) takes a slot of the key's pacer, at least
    1/FIELDCONTROL_RATE_PER_SECOND (+2 %) after the previous one: the client's own schedule, which
    arrival times at the simulator cannot show on a loaded machine."""
    engine, env = lite
    sandbox.configure(fc_rps=20.0)
    with engine.begin() as conn:
        seed.add_project(conn, 5900)
        seed.add_project(conn, 5901)
    run04(engine, {**env, "FIELDCONTROL_RATE_PER_SECOND": "20"})
    (paced,) = [pacer for pacer in pacers if pacer.slots]
    assert len(paced.slots) == len(sandbox.calls("fieldcontrol")) > 10
    # never closer than the limit plus the thinner margin the pacer keeps while it makes up a late
    # caller's slot (the shared state file keeps microseconds)
    assert min(gaps(paced.slots)) >= 1 / 20 * Pacer.MIN_MARGIN - 1e-5


def test_no_blind_resend_when_the_lookup_fails(lite, sandbox):
    """An ambiguous POST whose lookup cannot be read: nothing is sent again until a lookup succeeds."""
    engine, env = lite
    with engine.begin() as conn:
        seed.add_project(conn, 6100)
    sandbox.add_fault(system="fieldcontrol", route="POST /tickets", kind="commit_then_drop", times=1)
    sandbox.add_fault(system="fieldcontrol", route="GET /tickets", kind="html", times=1)
    summary = run04(engine, env)
    assert summary.counts["ticket_instalacao"] == {"falhas": 1}
    assert len(posts(sandbox, "POST /tickets")) == 1 and len(tickets_of(sandbox, 6100)) == 1
    with engine.connect() as conn:
        assert [a["estado"] for a in seed.actions(conn).values() if a["tipo"] == "ticket"] == ["incerta"]
        assert "não foi possível conferir" in seed.open_pending(conn)["acao:ticket:1"]
    sandbox.reset_calls()
    assert run04(engine, env).counts["ticket_instalacao"] == {"criados": 1}  # found by the lookup
    assert posts(sandbox) == [] and len(tickets_of(sandbox, 6100)) == 1
    with engine.connect() as conn:
        assert seed.open_pending(conn) == {}


def test_edited_primary_address_waits_for_the_customer_update(lite, sandbox):
    """The PUT moves the primary location to the edited address: no second location meanwhile."""
    engine, env = lite
    with engine.begin() as conn:
        p = seed.add_project(conn, 6200)
    run04(engine, env)
    with engine.begin() as conn:
        conn.execute(t.endereco.update().values(numero="999", location_field_id=None))
        event = seed.add_event(conn, p["os_id"], "aumento")
    sandbox.add_fault(system="fieldcontrol", route="PUT /customers/{id}", kind="status", status=422, times=1)
    summary = run04(engine, env)
    assert summary.counts["cliente"] == {"pendentes": 1} and summary.counts["evento"] == {"pendentes": 1}
    assert posts(sandbox, "POST /customers/{id}/locations") == [] and len(tickets_of(sandbox, 6200)) == 1
    run04(engine, env, reprocessar=True)
    customer = by_document(sandbox, p["doc"])[0]
    locations = [loc for loc in sandbox.fc_locations() if loc["customer"]["id"] == customer["id"]]
    assert [loc["address"]["number"] for loc in locations] == ["999"]
    ticket = next(t for t in sandbox.fc_tickets() if t["external"]["id"] == f"isales:6200:aumento:{event}")
    assert ticket["location"]["id"] == customer["primaryLocation"]["id"]


def test_customer_of_the_legacy_scripts(lite, sandbox):
    """Sent by the old scripts (ids in the database, nothing in the outbox): no calls until a new event,
    then its cancellation goes out, what it already has is adopted and it is never PUT over."""
    engine, env = lite
    with engine.begin() as conn:
        p = seed.add_project(conn, 6300)
        endereco = conn.execute(select(t.endereco).where(t.endereco.c.id == p["endereco_id"])).mappings().one()
    fc = FieldControl.from_settings(config.load("fieldcontrol", environ=env))
    old = fc.create_customer({"name": "Maria da Silva", "documentNumber": p["doc"],
                              "address": push.records.address_of(endereco)})
    fc.create_phone(old.id, phone_body("11987654321", primary=True))
    with engine.begin() as conn:
        conn.execute(t.cliente.update().values(field_id=old.id, criado_pelo_script=True, nome="Maria S."))
        conn.execute(t.endereco.update().values(location_field_id=old.primary_location_id))
        conn.execute(t.os_status_historico.update().values(enviado_field=True, ticket_tipo="instalacao",
                                                           ticket_field_id="TICKET-LEGADO"))
    sandbox.reset_calls()
    assert not run04(engine, env).counts and only_status_check(sandbox)
    with engine.begin() as conn:
        cancel = seed.add_event(conn, p["os_id"], "cancelado")
    summary = run04(engine, env)
    assert summary.counts["telefone"] == {"adotados": 1, "criados": 1}
    assert [c["route"] for c in posts(sandbox)] == ["/customers/{id}/phones", "/customers/{id}/emails", "/tickets"]
    ticket = next(t for t in sandbox.fc_tickets() if t["external"]["id"] == f"isales:6300:cancelamento:{cancel}")
    assert ticket["customer"]["id"] == old.id and "TICKET-LEGADO" in ticket["message"]


# --------------------------------------------------------------------------- customer look-ups per run

def customer_queries(sb) -> tuple[int, int, int]:
    """(GET /customers by document, GET /customers without a filter, GET /customers/{id})."""
    listed = sb.calls("fieldcontrol", "GET /customers")
    by_doc = sum("document_number" in c["path"] for c in listed)
    return by_doc, len(listed) - by_doc, len(sb.calls("fieldcontrol", "GET /customers/{id}"))


def test_many_new_customers_read_the_account_once(lite, sandbox):
    """12 customers to look up: the account (one page) is read once instead of 24 look-ups; the
    customers typed by hand (masked and digits) are read again by id and adopted, none duplicated."""
    engine, env = lite
    with engine.begin() as conn:
        projects = [seed.add_project(conn, 6000 + n, nome=f"Cliente {n}") for n in range(12)]
    masked, digits = projects[0]["doc"], projects[1]["doc"]
    sandbox.fc_add_customer("CLIENTE ZERO", f"{masked[:3]}.{masked[3:6]}.{masked[6:9]}-{masked[9:]}")
    sandbox.fc_add_customer("Cliente Um", digits)
    for n in range(30):
        sandbox.fc_add_customer(f"Outro {n}", seed.make_cpf(90_000 + n))
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert summary.counts["cliente"] == {"adotados": 2, "criados": 10}
    assert customer_queries(sandbox) == (0, 1, 2)
    assert all(len(by_document(sandbox, p["doc"])) == 1 for p in projects)


def test_few_new_customers_are_looked_up_one_by_one(lite, sandbox):
    engine, env = lite
    with engine.begin() as conn:
        projects = [seed.add_project(conn, 6100 + n, nome=f"Cliente {n}") for n in range(3)]
    digits = projects[0]["doc"]
    sandbox.fc_add_customer("Cliente Zero", digits)
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert summary.counts["cliente"] == {"adotados": 1, "criados": 2}
    assert customer_queries(sandbox) == (1 + 2 * 2, 0, 0)  # digits found it; the others: digits, then masked


def test_an_ambiguous_customer_write_is_reconciled_by_asking_fieldcontrol(lite, sandbox):
    """The account was read before the POST: the customer it stored (answer lost) is not in that
    snapshot, so the look-up after the lost answer asks FieldControl by document."""
    engine, env = lite
    with engine.begin() as conn:
        projects = [seed.add_project(conn, 6200 + n, nome=f"Cliente {n}") for n in range(8)]
    sandbox.add_fault(system="fieldcontrol", route="POST /customers", kind="commit_then_drop", times=1)
    sandbox.reset_calls()
    summary = run04(engine, env)
    assert summary.counts["cliente"] == {"criados": 8}
    assert all(len(by_document(sandbox, p["doc"])) == 1 for p in projects)
    assert customer_queries(sandbox)[:2] == (1, 1)  # the listing, then one live look-up (found by digits)
    assert len(posts(sandbox, "POST /customers")) == 8


class _Account:
    """A FieldControl stand-in for the finder: the account as read, and what a GET by id answers now."""

    def __init__(self, customers, now):
        self.customers, self.now, self.asked = customers, now, []

    def all_customers(self, worth_it):
        assert worth_it(1)
        return self.customers

    def get_customer(self, customer_id):
        from lib.fieldcontrol import NotFound

        if customer_id not in self.now:
            raise NotFound(f"cliente {customer_id} não existe")
        return self.now[customer_id]

    def find_customers_by_document(self, document):
        self.asked.append(document)
        return []


@pytest.mark.parametrize("now", ["apagado", "documento trocado"])
def test_a_customer_changed_since_the_account_was_read_is_asked_again(now):
    from types import SimpleNamespace

    from lib.fieldcontrol import Customer
    from lib.steps.push.remote import Remote

    doc = seed.make_cpf(6300)
    read = Customer(id="c1", name="Maria", document_number=doc, external_id=None, primary_location_id=None, created_at=None)
    account = _Account([read], {} if now == "apagado" else {"c1": Customer(
        id="c1", name="Maria", document_number=seed.make_cpf(6301), external_id=None, primary_location_id=None, created_at=None)})
    remote = Remote(SimpleNamespace(summary=Summary()), lambda: account)
    remote.expected_lookups = 10
    assert remote.find_customer_first({"doc_pessoal": doc}, "projeto 6300: cliente") is None
    assert account.asked == [doc]


def test_the_account_read_once_keeps_only_each_documents_customer_id():
    """Issue 14 §2: the account's customers are read as the pages come, and the directory keeps each
    document's digits and customer id, not the customers (an account may hold tens of thousands)."""
    import tracemalloc
    from types import SimpleNamespace

    from lib.fieldcontrol import Customer
    from lib.steps.push.remote import Remote

    count = 5000
    address = {"street": "Rua das Palmeiras", "number": "100", "district": "Centro", "city": "Campinas",
               "state": "SP", "zipCode": "13010000", "coords": {"latitude": -22.9, "longitude": -47.06}}

    class Pages:
        def all_customers(self, worth_it):
            assert worth_it(count // 100)
            for n in range(count):  # each customer made as its page comes, as FieldControl.all_customers does
                yield Customer(id=f"C{n}", name=f"Cliente {n}", document_number=seed.make_cpf(7000 + n),
                               external_id=None, primary_location_id=f"L{n}", created_at="2024-01-01T00:00:00Z",
                               address=dict(address, number=str(n)), contact_phone="11999990000",
                               contact_email=f"c{n}@example.com")

        def get_customer(self, customer_id):
            n = int(customer_id[1:])
            return Customer(id=customer_id, name=None, document_number=seed.make_cpf(7000 + n), external_id=None,
                            primary_location_id=None, created_at=None)

    remote = Remote(SimpleNamespace(summary=Summary()), Pages)
    remote.expected_lookups = count
    tracemalloc.start()
    try:
        found = remote.find_customer_first({"doc_pessoal": seed.make_cpf(7042)}, "projeto 7042: cliente")
        kept, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is not None and found.id == "C42"
    assert kept < 250 * count  # digits and an id a customer (a whole Customer with its address is ~2 KB)
