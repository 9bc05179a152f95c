"""SIGTERM (cron's timeout, systemd, a container platform) stops a run as Ctrl-C does: what is done
stays done, the summary is printed, the run row is closed with 143 and the locks are released."""

from __future__ import annotations

import signal
import time

from sqlalchemy import select

import lib.db.schema as t
from lib.db.engine import make_engine
from lib.errors import EXIT_TERMINATED
from tests.conftest import sandbox_env
from tests.reliability.harness import Runner
from tests.steps import push_seed as seed


def wait_for(condition, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"esperando {what}"
        time.sleep(0.01)


def test_sigterm_closes_the_run_with_143_and_releases_the_lock(sandbox, tmp_path, migrated_db):
    engine = make_engine(migrated_db)
    try:
        with engine.begin() as conn:
            made = [seed.add_project(conn, isales_id) for isales_id in (9400, 9401, 9402)]
        runner = Runner(sandbox_env(sandbox, tmp_path, migrated_db, HTTP_TIMEOUT_LEITURA="60"), tmp_path)
        # the second customer's POST waits at the sandbox: the run is certainly in the middle of its work
        sandbox.add_fault(system="fieldcontrol", route="POST /customers", kind="hold", times=1)
        proc = runner.spawn("04", tag="sigterm")
        wait_for(lambda: sandbox.held() or proc.poll() is not None, "o 04 chegar ao POST segurado")
        assert proc.poll() is None, proc.stderr_path.read_text(encoding="utf-8")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        err = proc.stderr_path.read_text(encoding="utf-8")
        assert code == EXIT_TERMINATED, err
        assert "interrompido pelo sistema (SIGTERM)" in err and "terminou com código 143" in err, err
        assert "Traceback" not in err, err
        with engine.connect() as conn:
            [run] = conn.execute(select(t.execucao).where(t.execucao.c.etapa == "04")).mappings().all()
            actions = seed.actions(conn)
        assert run["codigo_saida"] == EXIT_TERMINATED and run["terminada_em"] is not None, dict(run)
        assert "SIGTERM" in (run["mensagem"] or "")
        assert any(a["estado"] == "enviando" for a in actions.values()), actions  # the cut write is traced
        sandbox.clear_faults()  # the held POST goes on and is committed
        wait_for(lambda: not sandbox.held(), "a requisição segurada terminar")
        again = runner.run("04", ok=None)  # the locks were released: it runs, and settles the cut write
        assert "em andamento" not in again.stderr, again.stderr
        with engine.connect() as conn:
            assert all(a["estado"] != "enviando" for a in seed.actions(conn).values())
        ours = [c["documentNumber"] for c in sandbox.fc_customers() if c["documentNumber"] in {p["doc"] for p in made}]
        assert sorted(ours) == sorted({p["doc"] for p in made})  # each customer once, none twice
    finally:
        engine.dispose()
