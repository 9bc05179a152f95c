"""04_sync_field_api.py run as a user runs it (subprocess), against the sandbox and a real database:
exit codes, the exactly-once state after random kill -9, faults, the dry run and the run lock."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import lib.db.schema as t
from lib.db import migrate
from lib.db.engine import make_engine
from lib.documents import fold
from lib.fieldcontrol import document_key, email_key, phone_key
from lib.steps.push import qualify
from tests.conftest import ROOT, run_script, sandbox_env
from tests.steps import push_seed as seed

KILL_TRIALS = {"sqlite": int(os.environ.get("PUSH_KILL_TRIALS", "5")), "mysql": int(os.environ.get("PUSH_KILL_TRIALS", "2"))}
STATUS_MIXES = [("instalacao",), ("aumento",), ("instalacao", "cancelado"), ("instalacao", "aumento"),
                ("cancelado",), ("outro", "instalacao"), ("instalacao", "cancelado", "instalacao")]


@pytest.fixture
def db(migrated_db):
    engine = make_engine(migrated_db)
    yield migrated_db, engine
    engine.dispose()


@pytest.fixture
def lite(tmp_path):
    """SQLite only: for what does not depend on the database backend."""
    url = f"sqlite:///{tmp_path / 'lite.db'}"
    setup = make_engine(url, for_migrations=True)
    migrate.upgrade(setup)
    setup.dispose()
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def add_projects(engine, first: int, n: int, rng: random.Random, expected: set[str]) -> list[dict]:
    """n projects with mixed histories, some sharing a client; their qualifying events go in `expected`."""
    made = []
    with engine.begin() as conn:
        for isales_id in range(first, first + n):
            statuses = rng.choice(STATUS_MIXES)
            doc = rng.choice(made)["doc"] if made and rng.random() < 0.3 else None
            project = seed.add_project(conn, isales_id, statuses=statuses, doc=doc, numero=str(isales_id))
            made.append(project)
            for decision in qualify(list(zip(project["events"], statuses)), None):
                if decision.ticket:
                    expected.add(f"isales:{isales_id}:{decision.ticket}:{decision.event_id}")
    return made


def assert_exactly_once(sb, docs: set[str], expected: set[str]) -> None:
    """One customer per document, one location per address, one phone/e-mail each, one ticket per event."""
    customers = [c for c in sb.fc_customers() if document_key(c["documentNumber"]) in docs]
    per_doc = Counter(document_key(c["documentNumber"]) for c in customers)
    assert all(count == 1 for count in per_doc.values()), per_doc
    ours = {c["id"] for c in customers}
    places = Counter((loc["customer"]["id"], loc["address"]["zipCode"], fold(loc["address"]["street"]),
                      loc["address"]["number"]) for loc in sb.fc_locations() if loc["customer"]["id"] in ours)
    assert all(count == 1 for count in places.values()), places
    phones = Counter((p["customer"]["id"], phone_key(p["number"])) for p in sb.fc_phones() if p["customer"]["id"] in ours)
    assert all(count == 1 for count in phones.values()), phones
    emails = Counter((e["customer"]["id"], email_key(e["address"])) for e in sb.fc_emails() if e["customer"]["id"] in ours)
    assert all(count == 1 for count in emails.values()), emails
    tickets = Counter(t["external"]["id"] for t in sb.fc_tickets() if (t["external"]["id"] or "").startswith("isales:"))
    assert set(tickets) == expected and all(count == 1 for count in tickets.values()), tickets


def writes(sb) -> list[dict]:
    return [c for c in sb.calls("fieldcontrol") if c["method"] in ("POST", "PUT")]


def test_help(run, tmp_path):
    result = run("04", "--help", env={})
    assert result.returncode == 0
    assert "--dry-run" in result.stdout and "--reprocessar-pendentes" in result.stdout and "75" in result.stdout


def test_push_end_to_end(run, sandbox, tmp_path, lite):
    url, engine = lite
    env = sandbox_env(sandbox, tmp_path, url)
    hand = next(c for c in sandbox.fc_customers() if c["documentNumber"] and "." in c["documentNumber"])
    expected: set[str] = set()
    with engine.begin() as conn:
        adopted = seed.add_project(conn, 7000, doc=document_key(hand["documentNumber"]), nome=hand["name"])
        expected.add(f"isales:7000:instalacao:{adopted['events'][0]}")
    projects = add_projects(engine, 7001, 6, random.Random(1), expected)
    result = run("04", env=env)
    assert result.returncode == 0, result.stderr
    assert "o FieldControl real permite 1 requisição por segundo" in result.stderr
    assert "resumo da etapa 04" in result.stderr and "ticket_instalacao" in result.stderr
    docs = {p["doc"] for p in projects} | {adopted["doc"]}
    assert_exactly_once(sandbox, docs, expected)
    assert [c for c in sandbox.fc_customers() if document_key(c["documentNumber"]) == adopted["doc"]] == \
        [c for c in sandbox.fc_customers() if c["id"] == hand["id"]]  # adopted, not duplicated
    pendencias = json.loads((tmp_path / "data" / "pendencias.json").read_text(encoding="utf-8"))
    assert pendencias["contagens"]["total"] == 0
    sandbox.reset_calls()
    again = run("04", env=env)
    assert again.returncode == 0
    assert sorted(f"{c['method']} {c['route']}" for c in sandbox.calls()) == ["GET /orders", "GET /services"]
    with engine.begin() as conn:
        cancel = seed.add_event(conn, adopted["os_id"], "cancelado")
    assert run("04", env=env).returncode == 0
    assert [t["subject"] for t in sandbox.fc_tickets() if t["external"]["id"] == f"isales:7000:cancelamento:{cancel}"] \
        == [f"Cancelamento: {hand['name']}"]


def _wait_calls(sb, proc: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 30
    while proc.poll() is None and len(sb.calls("fieldcontrol")) < count and time.monotonic() < deadline:
        time.sleep(0.002)


def rerun_in_process(env: dict[str, str]) -> int:
    """Step 04 once more, in this process (cheaper than a subprocess for the zero-write check)."""
    from argparse import Namespace

    from lib import config, run
    from lib.steps import push

    settings = config.load("fieldcontrol", environ=env)
    engine = make_engine(settings.database_url)
    try:
        from lib.db import runs

        ctx = run.RunContext(step="04", settings=settings, summary=run.Summary(), engine=engine,
                             args=Namespace(dry_run=False, ids=None, reprocessar_pendentes=False),
                             run_id=runs.start(engine, "04"))
        push.run(ctx)
        return ctx.summary.total("pendentes") + ctx.summary.total("falhas")
    finally:
        engine.dispose()


def test_random_kill_9_keeps_exactly_once(run, sandbox, tmp_path, db, request):
    """kill -9 at a random request, then run again: exactly-once state, and a further run writes nothing."""
    url, engine = db
    trials = KILL_TRIALS[engine.dialect.name if engine.dialect.name == "sqlite" else "mysql"]
    # a write cut by the kill is resent only after the settle period (0 s + the clock's grain here:
    # the simulator commits at once) and a look-up that found nothing: the next run may end 75 first
    env = sandbox_env(sandbox, tmp_path, url, FIELDCONTROL_RATE_PER_SECOND="100",
                      FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS="0")
    sandbox.configure(fc_rps=100.0, latency_ms={"fieldcontrol": 3})
    master = int(os.environ.get("PUSH_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(master)
    expected: set[str] = set()
    docs: set[str] = set()
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    killed = 0
    for trial in range(trials):
        docs |= {p["doc"] for p in add_projects(engine, 8000 + 20 * trial, 8, rng, expected)}
        sandbox.reset_calls()
        proc = subprocess.Popen([sys.executable, str(ROOT / "04_sync_field_api.py")], cwd=tmp_path,
                                env={**base, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_calls(sandbox, proc, rng.randint(1, 25))  # a run of 8 projects makes ~35 requests
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
        finish = run("04", env=env)
        for _ in range(3):
            if finish.returncode != 75:
                break
            time.sleep(2.1)  # the settle period of the cut write passes, as between two cron runs
            finish = run("04", env=env)
        assert finish.returncode == 0, f"semente {master}, tentativa {trial}:\n{finish.stderr[-3000:]}"
        assert_exactly_once(sandbox, docs, expected)
        sandbox.reset_calls()
        assert rerun_in_process(env) == 0
        assert writes(sandbox) == [], f"semente {master}, tentativa {trial}: a nova execução escreveu"
    assert killed >= 1, f"semente {master}: nenhum processo chegou a ser morto"


def test_faults_commit_then_drop_and_429_storm(run, sandbox, tmp_path, lite):
    url, engine = lite
    env = sandbox_env(sandbox, tmp_path, url, HTTP_MAX_TENTATIVAS="12")
    expected: set[str] = set()
    made = add_projects(engine, 9000, 6, random.Random(3), expected)
    with engine.begin() as conn:  # a client with two addresses: a location beyond the primary one
        extra = seed.add_project(conn, 9006, doc=made[0]["doc"], numero="9006")
        expected.add(f"isales:9006:instalacao:{extra['events'][0]}")
    docs = {p["doc"] for p in made}
    for route in ("POST /customers", "POST /customers/{id}/locations", "POST /customers/{id}/phones",
                  "POST /customers/{id}/emails", "POST /tickets"):
        sandbox.add_fault(system="fieldcontrol", route=route, kind="commit_then_drop", times=1)
    sandbox.add_fault(system="fieldcontrol", kind="status", status=429, rate=0.3, retry_after=0.01)
    result = run("04", env=env)
    assert result.returncode == 0, result.stderr
    dropped = {c["route"] for c in sandbox.calls("fieldcontrol") if c["fault"] == "commit_then_drop"}
    assert len(dropped) == 5, dropped
    assert any(c["status"] == 429 for c in sandbox.calls("fieldcontrol"))
    assert_exactly_once(sandbox, docs, expected)


def test_rejection_exit_3_and_unreachable_exit_75(run, sandbox, tmp_path, lite):
    url, engine = lite
    env = sandbox_env(sandbox, tmp_path, url)
    with engine.begin() as conn:
        bad = seed.add_project(conn, 9100, estado="São Paulo")
        seed.add_project(conn, 9101)
    result = run("04", env=env)
    assert result.returncode == 3, result.stderr
    pendencias = json.loads((tmp_path / "data" / "pendencias.json").read_text(encoding="utf-8"))["pendencias"]
    item = next(p for p in pendencias if p["chave"] == f"acao:customer:{bad['cliente_id']}")
    assert item["etapa"] == "04" and "projeto 9100" in item["motivo"] and "two-letter state code" in item["motivo"]
    assert any((t["external"]["id"] or "").startswith("isales:9101:") for t in sandbox.fc_tickets())
    down = {**env, "FIELDCONTROL_API_URL": "http://127.0.0.1:9/fieldcontrol", "HTTP_MAX_TENTATIVAS": "2"}
    with engine.begin() as conn:
        seed.add_project(conn, 9102)
    result = run("04", "--reprocessar-pendentes", env=down)
    assert result.returncode == 75, result.stderr
    assert "chave-sandbox" not in result.stderr


def test_dry_run_changes_nothing(run, sandbox, tmp_path, lite):
    url, engine = lite
    add_projects(engine, 9200, 4, random.Random(5), set())
    with engine.connect() as conn:
        before = seed.dump(conn), seed.count(conn, t.execucao)
    state = (sandbox.fc_customers(), sandbox.fc_locations(), sandbox.fc_phones(), sandbox.fc_tickets())
    sandbox.reset_calls()
    result = run("04", "--dry-run", env=sandbox_env(sandbox, tmp_path, url))
    assert result.returncode == 0, result.stderr
    assert "SIMULAÇÃO" in result.stdout and "POST /tickets" in result.stdout and '"external": {' in result.stdout
    assert sandbox.calls() == []
    with engine.connect() as conn:
        assert (seed.dump(conn), seed.count(conn, t.execucao)) == before
    assert (sandbox.fc_customers(), sandbox.fc_locations(), sandbox.fc_phones(), sandbox.fc_tickets()) == state
    assert not (Path(tmp_path) / "data" / "pendencias.json").exists()


def test_two_concurrent_runs_one_refuses(sandbox, tmp_path, lite):
    """Two 04 started together: one holds the lock (FieldControl is slow), the other refuses with 75."""
    url, engine = lite
    add_projects(engine, 9300, 2, random.Random(7), set())
    env = sandbox_env(sandbox, tmp_path, url)
    sandbox.add_fault(system="fieldcontrol", route="GET /services", kind="slow", delay=2, times=1)
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "04_sync_field_api.py")], cwd=tmp_path,
                              env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 75], outputs
    refused = next(err for proc, (_out, err) in zip(procs, outputs) if proc.returncode == 75)
    assert "outra execução da etapa 04 está em andamento" in refused


def test_pipeline_01_to_04_with_a_cancellation(tmp_path, lite):
    """The real chain: a card approved, sent, then cancelled in iSales gets its cancellation ticket."""
    from sandbox import Sandbox

    url, engine = lite
    with Sandbox(projetos=8, seed=11, fc_rps=200.0, isales_rpm=1_000_000, nominatim_rps=500.0) as sb:
        env = sandbox_env(sb, tmp_path, url)
        card = sb.add_projects(1, coluna_id=seed.COLUMNS["instalacao"])[0]
        for step in ("01", "02", "03", "04"):
            assert run_script(step, env=env, cwd=tmp_path).returncode in (0, 3), step
        subjects = Counter(t["subject"].split(":")[0] for t in sb.fc_tickets() if t["external"]["id"])
        assert subjects["Instalação"] >= 1
        sent = [t for t in sb.fc_tickets() if (t["external"]["id"] or "").startswith(f"isales:{card}:instalacao:")]
        assert len(sent) == 1
        sb.move_card(card, seed.COLUMNS["cancelado"])
        for step in ("01", "02", "03", "04"):
            assert run_script(step, env=env, cwd=tmp_path).returncode in (0, 3), step
        cancel = [t for t in sb.fc_tickets() if (t["external"]["id"] or "").startswith(f"isales:{card}:cancelamento:")]
        assert len(cancel) == 1 and cancel[0]["customer"]["id"] == sent[0]["customer"]["id"]
        assert sent[0]["identifier"] in cancel[0]["message"] and sent[0]["id"] not in cancel[0]["message"]
        sb.reset_calls()
        assert run_script("04", env=env, cwd=tmp_path).returncode in (0, 3)
        assert writes(sb) == []
