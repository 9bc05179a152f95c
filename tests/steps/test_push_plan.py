"""lib/steps/push/plan.py: each action judged against the outbox as loaded — what would be sent and
looked up first, what waits, what is already done — with its request count and its printed text."""

from __future__ import annotations

from datetime import timedelta

import pytest

import lib.db.schema as t
from lib.clock import db_now
from lib.errors import RecordError, TransientError
from lib.steps.push.outbox import Keys, Outbox, Outcome, Spec, canonical
from lib.steps.push.plan import Plan, Read, Write, execute


def spec(chave: str, tipo: str = "phone", *, payload=None, look_first: bool = False, lookup_cost: int = 1) -> Spec:
    return Spec(chave=chave, tipo=tipo, kind="telefone", label=f"projeto 4711 (Maria da Silva): {chave}",
                request="POST /customers/C1/phones", payload=payload or {"number": "11987654321"},
                send=lambda: None, receipt=lambda conn, value: None, look_first=look_first,
                lookup_note="será procurado entre os telefones do cliente antes de criar", lookup_cost=lookup_cost)


def loaded(engine, rows: list[dict]) -> Outbox:
    now = db_now()
    with engine.begin() as conn:
        for row in rows:
            conn.execute(t.acao_field.insert().values(**{"tipo": "phone", "tentativas": 1, "criada_em": now,
                                                         "atualizada_em": now, "cliente_id": 1, **row}))
    outbox = Outbox(engine, None, summary=None)
    with engine.connect() as conn:
        outbox.load(conn, Keys(cliente_ids={1}))
    return outbox


def test_each_action_judged_against_the_outbox(engine):
    payload = {"number": "11987654321"}
    outbox = loaded(engine, [
        {"chave": "phone:1:done", "estado": "concluida", "field_id": "P1", "payload": canonical(payload)},
        {"chave": "phone:1:rejected", "estado": "rejeitada", "payload": canonical(payload)},
        {"chave": "phone:1:rejected-old", "estado": "rejeitada", "payload": canonical(payload),
         "atualizada_em": db_now() - timedelta(hours=7)},
        {"chave": "phone:1:uncertain", "estado": "incerta", "payload": canonical(payload)},
    ])
    plan = Plan(outbox)
    plan.start(1, "projeto 4711 (Maria da Silva)")
    results = {chave: plan.perform(spec(chave, payload=payload, look_first=True, lookup_cost=2))
               for chave in ("phone:1:new", "phone:1:done", "phone:1:rejected", "phone:1:rejected-old",
                             "phone:1:uncertain")}
    assert {chave: r.outcome for chave, r in results.items()} == {
        "phone:1:new": Outcome.PLANNED, "phone:1:done": Outcome.DONE, "phone:1:rejected": Outcome.BLOCKED,
        "phone:1:rejected-old": Outcome.PLANNED, "phone:1:uncertain": Outcome.PLANNED}
    assert results["phone:1:done"].field_id == "P1" and results["phone:1:new"].field_id == "<telefone a criar>"
    # the done action is not in the plan; the one rejected less than 6 hours ago waits and costs nothing
    entries = {entry.chave: entry for entry in plan.clients[0].entries}
    assert list(entries) == ["phone:1:new", "phone:1:rejected", "phone:1:rejected-old", "phone:1:uncertain"]
    assert {chave: entry.requests for chave, entry in entries.items()} == {
        "phone:1:new": 3, "phone:1:rejected": 0, "phone:1:rejected-old": 3, "phone:1:uncertain": 3}
    assert plan.sends() == ["phone:1:new", "phone:1:rejected-old", "phone:1:uncertain"] and plan.requests == 9
    assert plan.lookups["phone"] == 2  # an open action's look-up is not a first look-up
    assert dict(plan.summary.counts["telefone"]) == {"previstos": 3, "pendentes": 1}
    assert "aguarda dados novos, 6 horas ou --reprocessar-pendentes" in entries["phone:1:rejected"].text()
    assert "seria tentada de novo" in entries["phone:1:rejected-old"].text()
    assert "envio anterior com resultado incerto" in entries["phone:1:uncertain"].text()
    text = entries["phone:1:new"].text().splitlines()
    assert text[:4] == ["[telefone] projeto 4711 (Maria da Silva): phone:1:new",
                        "  será procurado entre os telefones do cliente antes de criar",
                        "  POST /customers/C1/phones", "  {"]
    assert '    "number": "11987654321"' in text


def test_looked_up_blocked_and_dispensed_are_written_down_not_sent(engine):
    plan = Plan(loaded(engine, []))
    assert plan.reconcile(spec("ticket:9", "ticket")) is False
    plan.start(1, "projeto 4711 (Maria da Silva)")
    plan.block(spec("phone:1:x"), "telefone inválido")
    plan.dispense("projeto 4711 (Maria da Silva): evento 3 (outro)", 3, "movido para uma coluna que não gera OS")
    plan.wait("projeto 4711 (Maria da Silva)", 2)
    assert plan.sends() == [] and plan.requests == 1  # only the look-up of the open action
    assert [entry.text().splitlines()[1] for entry in plan.entries] == [
        "  envio anterior interrompido ou incerto: será conferido no FieldControl antes de qualquer novo envio",
        "  ficaria pendente: telefone inválido",
        "  seria dispensado (sem OS): movido para uma coluna que não gera OS"]
    assert plan.notes == ["projeto 4711 (Maria da Silva): 2 evento(s) aguardam a próxima execução "
                          "(a ordem dos eventos importa)"]
    assert {kind: dict(c) for kind, c in plan.summary.counts.items()} == {"evento": {"previstos": 1, "pendentes": 2}}
    assert plan.read(lambda: 1 / 0) is None  # nothing is asked of FieldControl while planning


class Asking:
    """Hands that do what a Read asks (as the real run's Send does) and keep what is written."""

    def __init__(self):
        self.written = []

    def read(self, fetch):
        return fetch()

    def write(self, action):
        self.written.append(action)


def refused():
    raise RecordError("OS não encontrada")


def decision():
    """A decision as ClientSync writes one: a step's outcome feeds the next, an error is caught where
    its step was yielded."""
    first = yield Read(lambda: 20)
    try:
        second = yield Read(refused)
    except RecordError as exc:
        second = exc.message
    yield Write(lambda conn: None)
    return first, second


def test_execute_hands_back_each_outcome_and_raises_an_error_where_its_step_was_yielded(engine):
    hands = Asking()
    assert execute(decision(), hands) == (20, "OS não encontrada") and len(hands.written) == 1
    plan = Plan(loaded(engine, []))
    assert execute(decision(), plan) == (None, None)  # the plan asks nothing and writes nothing


def test_execute_lets_an_error_the_decision_does_not_handle_stop_the_run():
    def stopping():
        yield Read(lambda: (_ for _ in ()).throw(TransientError("FieldControl fora do ar")))
        raise AssertionError("never decided after the error")

    with pytest.raises(TransientError, match="FieldControl fora do ar"):
        execute(stopping(), Asking())
