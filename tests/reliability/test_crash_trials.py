"""Crash trials: steps 04 and 03 killed with SIGKILL at a random moment (seeded), then run to the
end; every other 04 trial also meets a write that FieldControl commits after the client gave up. Each trial starts from the same prepared database (cloned) and FieldControl state (a copy of
the sandbox's state file) and must end exactly where an uninterrupted run ends; a further run of
04 writes nothing.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.reliability.harness import (
    Databases,
    RunCounter,
    Runner,
    copy_file,
    fast_sandbox,
    kill_when,
    sandbox_from,
    snapshot_sandbox,
    step_env,
)
from tests.reliability.invariants import (
    Local,
    Remote,
    exactly_once,
    fc_writes,
    logical_dump,
    matches_remote,
    rule_problems,
)
from tests.reliability.scenario import change_isales, first_sync, second_round

pytestmark = pytest.mark.reliability


@dataclass
class Prepared:
    """What every trial starts from."""

    databases: Databases
    before_03: str  # database after the second 01 → 02 (03 not run yet)
    after_03: str  # the same after an uninterrupted 03 (04 not run yet)
    file_02: Path
    fc_state: Path  # the sandbox state file after the first sync
    changes: list[str]


@pytest.fixture(scope="module", params=BACKENDS)
def prepared(request, tmp_path_factory, projetos, seed):
    """First sync 00 → 04, iSales changes, then 01 → 02 (→ 03): once per backend for all trials."""
    if request.param == "mysql":
        request.getfixturevalue("mysql_server")
    workdir = tmp_path_factory.mktemp(f"queda-{request.param}")
    databases = Databases(request.param, workdir)
    try:
        url = databases.migrated("preparo")
        with fast_sandbox(projetos=projetos, seed=seed % 10_000) as sb:
            runner = Runner(step_env(sb, workdir, url), workdir)
            first_sync(runner)
            fc_state = snapshot_sandbox(sb, workdir / "estado-depois-do-04.json")
            changes = change_isales(sb, Local.read(url), random.Random(seed), projetos)
            second_round(runner, stop_before="03")
            before_03 = databases.clone(url, "antes-03")
            runner.run_here("03")
        yield Prepared(databases, before_03, url, copy_file(workdir / "data" / "02_projetos_tratados.json",
                                                           workdir / "02-preparado.json"), fc_state, changes)
    finally:
        databases.close()


@dataclass
class Outcome04:
    code: int
    calls: int
    sent: set[str]
    pending: set[tuple[str, str]]
    customers: set[str]


READ_TIMEOUT = "1"
SETTLE = 2  # FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS: a write cut by the kill is resent only after it
SETTLE_WAIT = SETTLE + 1.5  # between two runs that ended 75, as cron's interval would be
SLOW_COMMIT = 1.5  # beyond READ_TIMEOUT: the server commits a write the client already gave up on
WRITES = ("POST /customers", "POST /customers/{id}/locations", "POST /customers/{id}/phones",
          "POST /customers/{id}/emails", "POST /tickets")


def run_04(prepared: Prepared, workdir: Path, kills: list[tuple[int, float]], context: str,
           slow_commit: str | None = None) -> tuple[Outcome04, int]:
    """One trial: 04 killed at each (FieldControl call number, jitter) of `kills` — the first write of
    the `slow_commit` route committed only after the client's read timeout — then run to the end
    (again after the settle period while it ends 75) and once more; the invariants are checked;
    returns the outcome and how many kills landed."""
    workdir.mkdir(parents=True)
    url = prepared.databases.clone(prepared.after_03, workdir.name)
    with sandbox_from(prepared.fc_state) as sb:
        runner = Runner(step_env(sb, workdir, url, HTTP_TIMEOUT_LEITURA=READ_TIMEOUT,
                                 FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS=str(SETTLE)), workdir)
        before = Remote.of(sb)
        if slow_commit:
            sb.add_fault(system="fieldcontrol", route=slow_commit, kind="slow_commit", delay=SLOW_COMMIT, times=1)
        landed = 0
        for number, jitter in kills:
            sb.reset_calls()
            proc = runner.spawn("04", tag="morto")
            landed += kill_when(proc, lambda n=number: len(sb.calls("fieldcontrol")) >= n, jitter=jitter)
        sb.reset_calls()
        final = runner.settle("04", rounds=6, wait=SETTLE_WAIT)[-1]
        calls = len(sb.calls("fieldcontrol"))
        after, local = Remote.of(sb), Local.read(url)
        problems = exactly_once(before, after, local) + matches_remote(after, local) + rule_problems(local)
        problems += [f"ação {a['chave']} ficou em {a['estado']}" for a in local.open_actions()]
        pending_04 = local.pending_keys("04")
        problems += [f"evento {e['id']} sem envio, dispensa nem pendência" for e in local.unexplained_events()]
        assert not problems, f"{context}:\n" + "\n".join(problems)
        sb.reset_calls()
        again, _ = runner.run_here("04")
        assert again == final.returncode, f"{context}: a execução seguinte saiu com {again}"
        assert fc_writes(sb) == [], f"{context}: a execução seguinte escreveu no FieldControl: {fc_writes(sb)}"
    outcome = Outcome04(final.returncode, calls, set(local.sent_tickets()), pending_04,
                        {c["doc_pessoal"] for c in local.cliente if c["field_id"]})
    return outcome, landed


def test_04_killed_at_random_ends_like_an_uninterrupted_run(prepared, trials, rng, seed, tmp_path):
    reference, _ = run_04(prepared, tmp_path / "referencia", [], f"semente {seed}, referência")
    assert reference.sent, "a referência não enviou nenhuma OS: o cenário não exercita o passo 04"
    assert reference.calls >= 10
    landed = 0
    for trial in range(1, trials + 1):
        kills = [(rng.randint(1, reference.calls - 1), rng.uniform(0, 0.004))]
        if rng.random() < 0.3:  # the rerun is killed too: recovery of a recovery
            kills.append((rng.randint(1, max(1, reference.calls // 2)), rng.uniform(0, 0.004)))
        slow = rng.choice(WRITES) if trial % 2 == 1 else None  # every other trial: a write committed late
        context = (f"semente {seed}, tentativa {trial}, kill -9 na(s) chamada(s) {kills}, escrita lenta {slow} "
                   f"({prepared.changes})")
        outcome, killed = run_04(prepared, tmp_path / f"tentativa-{trial}", kills, context, slow)
        landed += killed
        assert outcome.sent == reference.sent, (f"{context}: OS diferentes da execução sem queda: "
                                                f"faltam {reference.sent - outcome.sent}, sobram {outcome.sent - reference.sent}")
        assert outcome.pending == reference.pending, f"{context}: pendências {outcome.pending} ≠ {reference.pending}"
        assert outcome.customers == reference.customers, f"{context}: clientes enviados diferentes"
        assert outcome.code == reference.code, f"{context}: código {outcome.code} ≠ {reference.code}"
    assert landed >= 1, f"semente {seed}: nenhuma das {trials} tentativas chegou a matar o passo 04"


def env_03(url: str, workdir: Path) -> dict[str, str]:
    """What step 03 reads: the database, the data folder and the columns (it derives each status)."""
    return {"DATABASE_URL": url, "DATA_DIR": str(workdir / "data"), "ISALES_COLUNA_INSTALACAO": "17840",
            "ISALES_COLUNA_AUMENTO": "20024", "ISALES_COLUNA_CANCELADO": "20363"}


def run_03(prepared: Prepared, workdir: Path, delays: list[float]) -> tuple[str, int, float, int]:
    """03 on a clone, killed `delay` seconds after its run row appears (each delay), then run to the
    end; returns (url, exit code, seconds the uninterrupted work took, kills that landed)."""
    workdir.mkdir(parents=True)
    url = prepared.databases.clone(prepared.before_03, workdir.name)
    copy_file(prepared.file_02, workdir / "data" / "02_projetos_tratados.json")
    runner = Runner(env_03(url, workdir), workdir)
    runs = RunCounter(url)
    try:
        landed = 0
        for delay in delays:
            started = runs("03")
            proc = runner.spawn("03", tag="morto")
            landed += kill_when(proc, lambda s=started: runs("03") > s, jitter=delay)
        started = runs("03")
        proc = runner.spawn("03")
        while proc.poll() is None and runs("03") == started:
            time.sleep(0.002)
        began = time.monotonic()
        code = proc.wait(timeout=300)
        work = time.monotonic() - began
    finally:
        runs.close()
    assert code in (0, 3), Path(proc.stderr_path).read_text(encoding="utf-8")[-4000:]
    return url, code, work, landed


def test_03_killed_at_random_ends_like_an_uninterrupted_run(prepared, trials, rng, seed, tmp_path):
    ref_url, ref_code, work, _ = run_03(prepared, tmp_path / "referencia", [])
    reference = logical_dump(ref_url)
    assert reference["historico"] and reference["alteracao"], "o cenário não gerou histórico nem alterações"
    landed = 0
    for trial in range(1, trials + 1):
        delays = [rng.uniform(0, 0.8 * work)] + ([rng.uniform(0, 0.8 * work)] if rng.random() < 0.3 else [])
        context = f"semente {seed}, tentativa {trial}, kill -9 {[round(d, 3) for d in delays]} s após o início"
        url, code, _, killed = run_03(prepared, tmp_path / f"tentativa-{trial}", delays)
        landed += killed
        assert code == ref_code, f"{context}: código {code} ≠ {ref_code}"
        dump = logical_dump(url)
        for table in reference:
            assert dump[table] == reference[table], f"{context}: tabela {table} difere da execução sem queda"
        again, _ = Runner(env_03(url, tmp_path / f"tentativa-{trial}"), tmp_path / f"tentativa-{trial}").run_here("03")
        assert again == ref_code
        assert logical_dump(url) == reference, f"{context}: a execução seguinte do 03 mudou o banco"
    assert landed >= 1, f"semente {seed}: nenhuma das {trials} tentativas chegou a matar o passo 03"
