"""Concurrency: for each step 01 → 04, a second run started while the first is certainly still
running refuses cleanly (exit 75, pt-BR message, nothing written), and the first one completes
normally. The overlap is made certain, not a race: the test holds the database's write lock, so the
first run, once it holds its step lock, waits at its first write until the second has come and gone.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

import lib.db.schema as t
from lib.db.engine import make_engine
from lib.jsonfiles import FILE_01, FILE_02, read_envelope
from tests.reliability.harness import Runner, backend, fast_sandbox, step_env
from tests.reliability.invariants import Local, Remote, exactly_once, matches_remote

pytestmark = pytest.mark.reliability

OUTPUT = {"01": FILE_01, "02": FILE_02}


@contextlib.contextmanager
def database_write_lock(url: str, table: str = "execucao"):
    """Hold the database's write lock: SQLite's single writer, or a MySQL lock on `table`
    (`execucao` is what every run writes first, right after taking its step lock)."""
    if backend(url) == "sqlite":
        conn = sqlite3.connect(make_url(url).database, isolation_level=None, timeout=60)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"LOCK TABLES {table} WRITE")
            try:
                yield
            finally:
                conn.exec_driver_sql("UNLOCK TABLES")
    finally:
        engine.dispose()


def runs_of(url: str, step: str) -> list[dict]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            query = select(t.execucao).where(t.execucao.c.etapa == step).order_by(t.execucao.c.id)
            return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def wait_for_lock_holder(lock_file, proc, timeout: float = 60) -> str:
    """The lock file's content once it names `proc` (it holds the step's lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = lock_file.read_text(encoding="utf-8") if lock_file.exists() else ""
        if f"processo {proc.pid} " in holder:
            return holder
        assert proc.poll() is None, f"a primeira execução terminou antes de pegar a trava ({proc.returncode})"
        time.sleep(0.01)
    raise AssertionError(f"a primeira execução não pegou a trava em {timeout} s")


def overlap(runner: Runner, url: str, step: str) -> tuple[int, str]:
    """First run held at its first database write; a second run meanwhile; returns the first
    run's exit code and the second run's stderr."""
    before = len(runs_of(url, step))
    output = runner.workdir / "data" / OUTPUT[step] if step in OUTPUT else None
    previous = output.read_bytes() if output is not None and output.exists() else None
    with database_write_lock(url):
        first = runner.spawn(step, tag="primeira")
        wait_for_lock_holder(runner.workdir / "data" / "locks" / f"{step}.lock", first)
        second = runner.run(step, ok=None)
        assert first.poll() is None, f"etapa {step}: a primeira execução não estava mais rodando"
        if output is not None:  # nothing written by either run yet
            assert (output.read_bytes() if output.exists() else None) == previous, step
    code = first.wait(timeout=300)
    err = first.stderr_path.read_text(encoding="utf-8")
    assert code in (0, 3), f"etapa {step}: a primeira execução saiu com {code}:\n{err[-3000:]}"
    assert second.returncode == 75, f"etapa {step}: a segunda execução saiu com {second.returncode}:\n{second.stderr}"
    runs = runs_of(url, step)
    assert len(runs) == before + 1, f"etapa {step}: a execução recusada registrou uma execução"
    assert runs[-1]["pid"] == first.pid and runs[-1]["codigo_saida"] == code, runs[-1]
    if output is not None:
        data = read_envelope(output, step, produced_by=step)
        assert data["execucao_id"] == runs[-1]["id"], f"etapa {step}: o arquivo não é o da primeira execução"
    return code, second.stderr


def test_a_second_run_of_each_step_refuses_while_the_first_runs(db_url, tmp_path):
    with fast_sandbox(projetos=12, seed=31) as sb:
        runner = Runner(step_env(sb, tmp_path, db_url), tmp_path)
        runner.run_here("00")
        before = Remote.of(sb)
        for step in ("01", "02", "03", "04"):
            _code, refused = overlap(runner, db_url, step)
            assert f"outra execução da etapa {step} está em andamento" in refused, refused
            assert "esta execução não fez nada: tente novamente quando ela terminar" in refused, refused
            assert "Traceback" not in refused, refused
        after, local = Remote.of(sb), Local.read(db_url)
        problems = exactly_once(before, after, local) + matches_remote(after, local)
        assert not problems, "\n".join(problems)
        assert local.sent_tickets(), "a primeira execução do 04 não enviou nada"
        pendencias = json.loads((tmp_path / "data" / "pendencias.json").read_text(encoding="utf-8"))
        assert pendencias["execucao_id"] == runs_of(db_url, "04")[-1]["id"]


def test_a_second_04_refuses_in_the_middle_of_the_first(db_url, tmp_path):
    """The first 04 has already created objects in FieldControl when the second one starts."""
    with fast_sandbox(projetos=12, seed=37) as sb:
        runner = Runner(step_env(sb, tmp_path, db_url), tmp_path)
        for step in ("00", "01", "02", "03"):
            runner.run_here(step)
        before = Remote.of(sb)
        first = runner.spawn("04", tag="primeira")
        deadline = time.monotonic() + 60
        while not any(c["method"] == "POST" for c in sb.calls("fieldcontrol")):
            assert first.poll() is None and time.monotonic() < deadline, "o 04 terminou sem enviar nada"
            time.sleep(0.002)
        with database_write_lock(db_url, "acao_field"):  # its next receipt waits for us
            posts = len([c for c in sb.calls("fieldcontrol") if c["method"] == "POST"])
            second = runner.run("04", ok=None)
            assert first.poll() is None, "a primeira execução não estava mais rodando"
        code = first.wait(timeout=300)
        assert code in (0, 3), first.stderr_path.read_text(encoding="utf-8")[-3000:]
        assert second.returncode == 75 and "outra execução da etapa 04 está em andamento" in second.stderr
        after, local = Remote.of(sb), Local.read(db_url)
        assert len([c for c in sb.calls("fieldcontrol") if c["method"] == "POST"]) > posts >= 1
        problems = exactly_once(before, after, local) + matches_remote(after, local)
        assert not problems, "\n".join(problems)
        assert [run["pid"] for run in runs_of(db_url, "04")] == [first.pid]


def test_concurrent_04s_from_separate_working_directories_one_database(db_url, tmp_path):
    """Three 04s from three working directories (three DATA_DIRs: their file locks never meet), as
    three hosts or containers on one database: the database lock lets one in, the others exit 75
    naming it, with no traceback; nothing is created twice."""
    with fast_sandbox(projetos=12, seed=41) as sb:
        setup = Runner(step_env(sb, tmp_path / "preparo", db_url), tmp_path / "preparo")
        for step in ("00", "01", "02", "03"):
            setup.run_here(step)
        before = Remote.of(sb)
        gate = sb.add_fault(system="fieldcontrol", route="GET /services", kind="hold", times=1)
        runners = [Runner(step_env(sb, tmp_path / name, db_url), tmp_path / name) for name in ("a", "b", "c")]
        procs = [runner.spawn("04", tag=name) for runner, name in zip(runners, "abc")]
        deadline = time.monotonic() + 120
        while sum(p.poll() is not None for p in procs) < 2 or not sb.held():
            assert time.monotonic() < deadline, [p.poll() for p in procs]
            time.sleep(0.01)
        sb.release_fault(gate)
        codes = [p.wait(timeout=300) for p in procs]
        errs = [p.stderr_path.read_text(encoding="utf-8") for p in procs]
        assert sorted(codes) in ([0, 75, 75], [3, 75, 75]), (codes, errs)
        winner = procs[[c in (0, 3) for c in codes].index(True)]
        for code, err in zip(codes, errs):
            assert "Traceback" not in err, err
            if code == 75:
                assert "outra execução da etapa 04 está em andamento neste banco de dados" in err, err
                assert f"processo {winner.pid} em " in err, err
        after, local = Remote.of(sb), Local.read(db_url)
        problems = exactly_once(before, after, local) + matches_remote(after, local)
        assert not problems, "\n".join(problems)
        assert local.sent_tickets()
        assert [run["pid"] for run in runs_of(db_url, "04")] == [winner.pid]
