"""Claiming an outbox action is atomic: of two runs that both got in (no lock between them), one sends
and the other leaves the action alone — no second send, no IntegrityError, no error at all."""

from __future__ import annotations

from types import SimpleNamespace

from lib.run import Summary
from lib.steps.push.outbox import ENVIANDO, INCERTA, Keys, Outbox, Outcome, Spec


def spec(sent: list, chave: str = "ticket:1") -> Spec:
    return Spec(chave=chave, tipo="ticket", kind="ticket_instalacao", label="projeto 4711 (Maria): OS",
                request="POST /tickets", payload={"name": "Maria"},
                send=lambda: sent.append(chave) or SimpleNamespace(id="T1"), receipt=lambda conn, value: None,
                find=lambda: None, isales_id="4711", historico_id=1)


def outbox(engine) -> Outbox:
    box = Outbox(engine, None, Summary())
    with engine.connect() as conn:
        box.load(conn, Keys(historico_ids={1}))
    return box


def test_two_runs_insert_the_same_new_action_one_wins(engine):
    first, second = outbox(engine), outbox(engine)  # both read "no action yet"
    assert first.claim(spec([])) is True
    assert second.claim(spec([])) is False  # the unique key: lost, not an IntegrityError
    assert second.get("ticket:1").estado == ENVIANDO  # and it now sees the winner's row


def test_two_runs_claim_the_same_open_action_one_wins(engine):
    sent: list = []
    first = outbox(engine)
    first.claim(spec(sent))
    first.set_state("ticket:1", INCERTA, "tempo de resposta esgotado")
    a, b = outbox(engine), outbox(engine)  # both read it `incerta` (its settle period over, say)
    assert a.claim(spec(sent)) is True
    assert b.claim(spec(sent)) is False  # the state and attempt count it saw are gone


def test_a_lost_claim_sends_nothing_and_is_not_an_error(engine):
    sent: list = []
    early, late = outbox(engine), outbox(engine)
    assert early.perform(spec(sent)).outcome is Outcome.CREATED
    result = late.perform(spec(sent))
    assert result.outcome is Outcome.ELSEWHERE and not result.ok
    assert sent == ["ticket:1"]
    assert late.summary.as_dict() == {"ticket_instalacao": {"em_outra_execucao": 1}}
