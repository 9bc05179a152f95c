"""Fault matrix: about 10 % of the requests to every API at once answer 429, 503, have their
connection dropped (before or after the server recorded the write), answer slowly (also beyond
the read timeout) or commit the write only after the client gave up (slow_commit). The pipeline
01 → 04, rerunning what ends with 75 (04 after the settle period of its ambiguous writes), must
finish with nothing created twice and nothing lost; once the faults stop, one more pass must reach
exactly what a pipeline that never saw a fault reaches.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from tests.reliability.harness import PIPELINE, Databases, Runner, fast_sandbox, step_env
from tests.reliability.invariants import Local, Remote, exactly_once, fc_writes, matches_remote, rule_problems

pytestmark = pytest.mark.reliability

FAULT_SHARE = 0.10
FAULTS = [  # each gets an equal share of FAULT_SHARE, on every system
    {"kind": "status", "status": 429, "retry_after": 0.05},
    {"kind": "status", "status": 503},
    {"kind": "drop"},
    {"kind": "commit_then_drop"},
    {"kind": "slow", "delay": 0.2},
    {"kind": "slow", "delay": 1.3},  # beyond HTTP_TIMEOUT_LEITURA below: a read timeout
    {"kind": "slow_commit", "delay": 1.6},  # the write is committed only after the client gave up
]
READ_TIMEOUT = "1"
SETTLE = 2  # FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS: an ambiguous write is looked up again after it
SETTLE_WAIT = SETTLE + 1.5  # between two runs of 04 that ended 75, as cron's interval would be
ATTEMPTS = 3  # HTTP_MAX_TENTATIVAS
BURSTS = [  # an outage as long as the retries at the start of 01 and 04: they end with 75, and are run again
    {"system": "isales", "route": "GET /funil-clientes", "status": 503, "times": ATTEMPTS},
    {"system": "fieldcontrol", "route": "GET /services", "status": 503, "times": ATTEMPTS},
]
ROUNDS = 5  # runs of one step while it ends with 75
ROUNDS_04 = 10  # 04 also ends 75 while ambiguous writes wait for their settle period
INTERESSE = {17840: "instalacao", 20024: "aumento", 20363: "cancelado"}
KIND = {"instalacao": "instalacao", "aumento": "aumento"}


def tickets_by_project(remote: Remote) -> set[tuple[str, str]]:
    """(isales_id, kind) of every ticket this integration created."""
    return {tuple(ext.split(":")[1:3]) for ext in remote.sync_tickets()}


def open_items(data_dir) -> list[dict]:
    return json.loads((data_dir / "pendencias.json").read_text(encoding="utf-8"))["pendencias"]


def unaccounted(sb, remote: Remote, items: list[dict]) -> list[str]:
    """Projects of interest neither in FieldControl (a ticket of their column's kind) nor a pending
    item with a reason; a project first seen cancelled must have no ticket at all."""
    sent = tickets_by_project(remote)
    problems = []
    for project in sb.projects():
        isales_id, status = str(project["card"]["cliente_id"]), INTERESSE.get(project["card"]["coluna_id"])
        if status is None:
            continue
        if status == "cancelado":
            if any(sid == isales_id for sid, _ in sent):
                problems.append(f"projeto {isales_id}: cancelado antes de qualquer envio, mas tem OS no FieldControl")
            continue
        if (isales_id, KIND[status]) in sent:
            continue
        reasons = [item["motivo"] for item in items if str(item.get("isales_id")) == isales_id
                   or re.search(rf"\b{isales_id}\b", item["motivo"] or "")]
        if not any(reason and reason.strip() for reason in reasons):
            problems.append(f"projeto {isales_id} ({status}) perdido: nem OS no FieldControl nem pendência com motivo")
    return problems


def pending_projects(items: list[dict]) -> set[tuple[str, str | None]]:
    return {(item["etapa"], item.get("isales_id")) for item in items}


def reference(workdir, projetos: int, seed: int) -> tuple[set, set]:
    """Tickets and pending items of the same sandbox through a pipeline that never saw a fault."""
    databases = Databases("sqlite", workdir)
    url = databases.migrated("referencia")
    with fast_sandbox(projetos=projetos, seed=seed) as sb:
        runner = Runner(step_env(sb, workdir, url), workdir)
        for step in PIPELINE:
            runner.run_here(step)
        return tickets_by_project(Remote.of(sb)), pending_projects(open_items(workdir / "data"))


def test_pipeline_under_ten_percent_faults_loses_nothing_and_duplicates_nothing(
        databases, projetos, seed, tmp_path):
    expected_tickets, expected_pending = reference(tmp_path / "referencia", projetos, seed % 10_000)
    assert expected_tickets, "a referência não criou nenhuma OS"
    workdir = tmp_path / "falhas"
    url = databases.migrated("falhas")
    with fast_sandbox(projetos=projetos, seed=seed % 10_000) as sb:
        runner = Runner(step_env(sb, workdir, url, HTTP_TIMEOUT_LEITURA=READ_TIMEOUT,
                                 HTTP_MAX_TENTATIVAS=str(ATTEMPTS),
                                 FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS=str(SETTLE)), workdir)
        before = Remote.of(sb)
        for fault in BURSTS:
            sb.add_fault(**fault)
        for fault in FAULTS:
            sb.add_fault(rate=FAULT_SHARE / len(FAULTS), **fault)
        codes = {step: [r.returncode for r in (runner.settle("04", rounds=ROUNDS_04, wait=SETTLE_WAIT)
                                               if step == "04" else runner.settle(step, rounds=ROUNDS))]
                 for step in PIPELINE}
        fired = Counter((call["system"], call["fault"]) for call in sb.calls() if call["fault"])
        context = f"semente {seed}, códigos {codes}, falhas injetadas {dict(fired)}"
        print(context)
        assert {system for system, _ in fired} >= {"isales", "fieldcontrol"}, context
        assert len({kind for _, kind in fired}) >= 3, context
        assert codes["01"][0] == codes["04"][0] == 75, context  # the outages were met and outlived

        after, local = Remote.of(sb), Local.read(url)
        problems = exactly_once(before, after, local) + matches_remote(after, local) + rule_problems(local)
        problems += unaccounted(sb, after, open_items(workdir / "data"))
        assert not problems, f"{context}:\n" + "\n".join(problems)

        sb.clear_faults()  # the storm is over: one more pass reaches the fault-free result
        for step in PIPELINE[:-1]:
            runner.run_here(step)
        runner.settle("04", wait=SETTLE_WAIT)  # writes left uncertain by the storm settle first
        after, local = Remote.of(sb), Local.read(url)
        problems = exactly_once(before, after, local) + matches_remote(after, local) + rule_problems(local)
        assert not problems, f"{context}, depois das falhas:\n" + "\n".join(problems)
        assert tickets_by_project(after) == expected_tickets, (
            f"{context}: faltam {expected_tickets - tickets_by_project(after)}, "
            f"sobram {tickets_by_project(after) - expected_tickets}")
        assert pending_projects(open_items(workdir / "data")) == expected_pending, context
        assert not local.open_actions(), context
        sb.reset_calls()
        runner.run_here("04")
        assert fc_writes(sb) == [], f"{context}: a execução seguinte escreveu no FieldControl"
