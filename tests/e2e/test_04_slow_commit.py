"""A write FieldControl commits after the client gave up (read timeout 1 s, commit after 2 s): step 04
looks it up at once, does not find it, and never sends it again before the settle period has passed
and a later look-up found nothing. The run goes on with the other clients and exits 75; the next run
after the period finds each object: none created twice."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import lib.db.schema as t
from lib.clock import db_now
from lib.db.engine import make_engine
from lib.errors import EXIT_TEMPFAIL
from lib.fieldcontrol import document_key
from tests.reliability.harness import Runner, step_env
from tests.reliability.invariants import Local, Remote, exactly_once, matches_remote
from tests.steps import push_seed as seed

SETTLE = 3  # FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS: above commit delay - read timeout
COMMIT_AFTER = 2.0
WRITES = ["POST /customers/{id}/locations", "POST /customers/{id}/phones", "POST /customers/{id}/emails",
          "POST /tickets"]


def posts(sb) -> Counter:
    return Counter(f"POST {call['route']}" for call in sb.calls("fieldcontrol") if call["method"] == "POST")


def committed(sb, n: int) -> None:
    """Wait until the server has finished the `n` slow writes (their calls are logged once answered)."""
    deadline = time.monotonic() + 60
    while len([c for c in sb.calls("fieldcontrol") if c["fault"] == "slow_commit"]) < n:
        assert time.monotonic() < deadline, "a escrita lenta não terminou no servidor"
        time.sleep(0.02)


def test_writes_committed_after_the_read_timeout_are_never_sent_twice(sandbox, tmp_path, migrated_db):
    engine = make_engine(migrated_db)
    try:
        with engine.begin() as conn:
            first = seed.add_project(conn, 9500)
            other = seed.add_project(conn, 9510)  # another client: the run goes on with it
        runner = Runner(step_env(sandbox, tmp_path, migrated_db, HTTP_TIMEOUT_LEITURA="1",
                                 FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS=str(SETTLE)), tmp_path)
        before = Remote.of(sandbox)
        sandbox.add_fault(system="fieldcontrol", route="POST /customers", kind="slow_commit", delay=COMMIT_AFTER,
                          times=1)
        result = runner.run("04", ok=None)
        assert result.returncode == EXIT_TEMPFAIL, result.stderr
        assert "1 escrita(s) no FieldControl com resultado incerto" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        committed(sandbox, 1)
        assert posts(sandbox)["POST /customers"] == 2  # once per client: the slow one was not resent
        assert len(Local.read(migrated_db).sent_tickets()) == 1  # the other client went on

        runner.settle("04", wait=SETTLE + 1.5)  # after the period: found, and the rest of its work done
        counts = Counter(document_key(c["documentNumber"]) for c in sandbox.fc_customers())
        assert counts[first["doc"]] == counts[other["doc"]] == 1

        # more work for every other kind of write, each committed after the client gave up
        with engine.begin() as conn:
            seed.add_project(conn, 9501, doc=first["doc"], numero="9")
            conn.execute(t.cliente.update().where(t.cliente.c.id == first["cliente_id"]).values(
                telefone_secundario="11955554444", email="maria.nova@example.com"))
        sandbox.reset_calls()
        for route in WRITES:
            sandbox.add_fault(system="fieldcontrol", route=route, kind="slow_commit", delay=COMMIT_AFTER, times=1)
        results = runner.settle("04", rounds=8, wait=SETTLE + 1.5)
        assert results[0].returncode == EXIT_TEMPFAIL, results[0].stderr
        committed(sandbox, len(WRITES))
        fired = [f"{call['method']} {call['route']}" for call in sandbox.calls("fieldcontrol")
                 if call["fault"] == "slow_commit"]
        assert sorted(fired) == sorted(WRITES), fired
        assert posts(sandbox) == Counter(WRITES), posts(sandbox)  # each write sent exactly once

        after, local = Remote.of(sandbox), Local.read(migrated_db)
        problems = exactly_once(before, after, local) + matches_remote(after, local)
        assert not problems, "\n".join(problems)
        assert not local.open_actions()
        # the old phone and e-mail stay in FieldControl with a "revisar:" item for a person; no action waits
        assert not [key for _step, key in local.pending_keys("04") if key.startswith("acao:")]
        assert len(local.sent_tickets()) == 3
    finally:
        engine.dispose()


def test_a_project_cancelled_while_its_installation_ticket_is_uncertain_gets_its_cancellation(
        sandbox, tmp_path, migrated_db):
    """The installation ticket's POST is held past the read timeout (it lands later), the project is
    cancelled within the settle period: the runs during the period decide nothing about its events
    (they wait, the dry run says the same), and the run after it finds the installation ticket and
    sends the cancellation citing it. Before, the cancellation was dispensed ("nenhuma OS foi enviada
    antes") and never sent: the field team would install a cancelled project."""
    engine = make_engine(migrated_db)
    try:
        with engine.begin() as conn:
            project = seed.add_project(conn, 9600)
        runner = Runner(step_env(sandbox, tmp_path, migrated_db, HTTP_TIMEOUT_LEITURA="1",
                                 FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS="600"), tmp_path)
        before = Remote.of(sandbox)
        gate = sandbox.add_fault(system="fieldcontrol", route="POST /tickets", kind="hold", times=1)
        assert runner.run("04", ok=None).returncode == EXIT_TEMPFAIL
        with engine.begin() as conn:
            cancel = seed.add_event(conn, project["os_id"], "cancelado")

        during = runner.run("04", ok=None)  # within the settle period: the held ticket is not there yet
        assert during.returncode == EXIT_TEMPFAIL, during.stderr
        assert "2 evento(s) aguardam a próxima execução" in during.stderr, during.stderr
        dry = runner.run("04", "--dry-run", ok=None)
        assert "2 evento(s) aguardam a próxima execução" in dry.stderr, dry.stderr
        assert "seria dispensado" not in dry.stdout, dry.stdout
        with engine.connect() as conn:
            assert [row["motivo_dispensa"] for row in seed.history(conn, project["os_id"])] == [None, None]

        sandbox.release_fault(gate)  # the installation ticket lands in FieldControl
        deadline = time.monotonic() + 60
        while not [tk for tk in sandbox.fc_tickets() if (tk["external"]["id"] or "").startswith("isales:9600:instalacao:")]:
            assert time.monotonic() < deadline, "a OS segurada não foi gravada"
            time.sleep(0.02)
        with engine.begin() as conn:  # the settle period has passed (no test waits ten minutes)
            conn.execute(t.acao_field.update().where(t.acao_field.c.estado.in_(("enviando", "incerta"))).values(
                atualizada_em=db_now() - timedelta(seconds=601)))
        runner.settle("04")
        runner.run("04")  # nothing more

        tickets = {tk["external"]["id"]: tk for tk in sandbox.fc_tickets()
                   if (tk["external"]["id"] or "").startswith("isales:9600:")}
        kinds = Counter(external.split(":")[2] for external in tickets)
        assert kinds == Counter({"instalacao": 1, "cancelamento": 1}), sorted(tickets)
        installation = tickets[f"isales:9600:instalacao:{project['events'][0]}"]
        assert installation["identifier"] in tickets[f"isales:9600:cancelamento:{cancel}"]["message"]
        after, local = Remote.of(sandbox), Local.read(migrated_db)
        problems = exactly_once(before, after, local) + matches_remote(after, local)
        assert not problems, "\n".join(problems)
        assert not local.open_actions() and not local.unexplained_events()
    finally:
        engine.dispose()
