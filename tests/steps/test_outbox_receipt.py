"""A send's claim and receipt write what they must and read nothing back: the action the outbox holds
afterwards is built from what it wrote and equals the stored row; the pending item of the action is
closed by the receipt when it may be open, and one another run opened meanwhile is closed at the end
of the run (Obsolete.resolve)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import event, select

import lib.db.schema as t
from lib.db import pending
from lib.run import Summary
from lib.steps.push.outbox import CONCLUIDA, INCERTA, Keys, Obsolete, Outbox, Outcome, Spec, _action, pending_key


def spec(sent: list, chave: str = "ticket:1", found=None) -> Spec:
    return Spec(chave=chave, tipo="ticket", kind="ticket_instalacao", label="projeto 4711 (Maria): OS",
                request="POST /tickets", payload={"name": "Maria", "when": 3},
                send=lambda: sent.append(chave) or SimpleNamespace(id="T1"), receipt=lambda conn, value: None,
                find=lambda: found, isales_id="4711", historico_id=1)


def outbox(engine, run_id: int | None = None) -> Outbox:
    box = Outbox(engine, run_id, Summary(), settle_seconds=0)
    with engine.connect() as conn:
        box.load(conn, Keys(historico_ids={1}))
    return box


def stored(engine, chave: str = "ticket:1"):
    with engine.connect() as conn:
        return _action(conn.execute(select(t.acao_field).where(t.acao_field.c.chave == chave)).one())


def statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *rest: seen.append(sql))
    return seen


def open_items(engine) -> int:
    with engine.connect() as conn:
        return pending.count_open(conn, "04")


def test_a_send_reads_nothing_back_and_holds_what_is_stored(engine):
    box = outbox(engine, run_id=7)
    seen = statements(engine)
    assert box.perform(spec([])).outcome is Outcome.CREATED
    reads = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
    assert reads == []  # no re-read of the action, no pending item looked for: none was open
    assert not [sql for sql in seen if "pendencia" in sql]
    assert box.get("ticket:1") == stored(engine)
    assert box.get("ticket:1").estado == CONCLUIDA and box.get("ticket:1").payload == {"name": "Maria", "when": 3}


def test_a_claim_of_an_existing_action_holds_what_is_stored(engine):
    first = outbox(engine)
    first.claim(spec([]))
    first.set_state("ticket:1", INCERTA, "tempo esgotado")
    again = outbox(engine, run_id=8)
    assert again.claim(spec([])) is True
    assert again.get("ticket:1") == stored(engine)
    assert again.get("ticket:1").tentativas == 2


def test_an_adoption_holds_what_is_stored(engine):
    box = outbox(engine, run_id=3)
    box.complete(spec([]), SimpleNamespace(id="T9"))
    assert box.get("ticket:1") == stored(engine)
    assert box.get("ticket:1").field_id == "T9"


def test_a_receipt_closes_the_item_open_when_the_batch_was_read(engine):
    earlier = outbox(engine)
    earlier.record_pending(spec([]), "não foi possível conferir")
    assert open_items(engine) == 1
    assert outbox(engine).perform(spec([])).outcome is Outcome.CREATED
    assert open_items(engine) == 0


def test_a_receipt_closes_the_item_this_run_opened(engine):
    box = outbox(engine)
    box.record_pending(spec([]), "não foi possível conferir")
    assert box.perform(spec([])).outcome is Outcome.CREATED
    assert open_items(engine) == 0


def test_an_item_another_run_opened_after_the_batch_was_read_is_closed_at_the_end(engine):
    ours = outbox(engine)
    obsolete = Obsolete(ours, None)
    outbox(engine).record_pending(spec([]), "não foi possível conferir")  # the other run, after our read
    obsolete.need("ticket:1")
    assert ours.perform(spec([])).outcome is Outcome.CREATED
    obsolete.resolve()
    assert open_items(engine) == 0


def test_an_item_recorded_after_its_action_was_concluded_stays_open(engine):
    box = outbox(engine)
    assert box.perform(spec([])).outcome is Outcome.CREATED
    obsolete = Obsolete(box, None)
    later = stored(engine).concluida_em + timedelta(seconds=1)
    with engine.begin() as conn:
        pending.record(conn, "04", pending_key("ticket:1"), "outra coisa")
        conn.execute(t.pendencia.update().values(ultima_vez=later))
    obsolete.need("ticket:1")
    assert obsolete.resolve() == 0
    assert open_items(engine) == 1


def _open_action_items(engine, count: int) -> None:
    from tests.memory import open_item

    with engine.begin() as conn:
        conn.execute(t.pendencia.delete())
        if not count:
            return
        conn.execute(t.pendencia.insert(), [open_item("04", pending_key(f"ticket:{n}"), "não foi possível conferir", n)
                                            for n in range(count)]
                     + [open_item("04", f"revisar:telefone:{n}", "telefone antigo", n) for n in range(count // 10)])


def test_the_end_of_the_run_reads_the_open_items_a_page_at_a_time(engine):
    """A first load may leave thousands of open action items: the end of the run never holds them all."""
    from tests.memory import traced_peak

    peaks = {}
    for count in (1000, 10000):
        _open_action_items(engine, 0)
        obsolete = Obsolete(outbox(engine), None)  # read before: every item is one this run opened
        _open_action_items(engine, count)
        peaks[count] = traced_peak(obsolete.resolve)
        assert open_items(engine) == count + count // 10  # needed and not concluded: all stay open
    # 9,000 more items cost ≈ 2.5 MB when read at once; in pages of 500, nothing more than a page
    assert peaks[10000] - peaks[1000] < 600_000, peaks


def test_items_no_action_needs_are_closed_across_pages(engine):
    _open_action_items(engine, 1050)
    obsolete = Obsolete(outbox(engine), {str(n) for n in range(0, 1050, 2)}, page=100)
    assert len(obsolete.unseen) == 525
    obsolete.need("ticket:0")
    assert obsolete.resolve() == 524
    assert open_items(engine) == 1050 - 524 + 105
