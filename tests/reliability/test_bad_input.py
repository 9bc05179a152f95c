"""Bad-input corpus, table-driven (bad_input_cases.py). Records with bad data enter from the
sandbox's iSales and go through 01 → 04 together: each one becomes a pending item naming it and the
reason, or goes on with its bad value dropped and a warning; nothing is lost, nothing is created
twice, and the pending ones are tried again. Damaged data/ files are refused (or their bad record
kept as pending) with a pt-BR message, the previous output kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

import lib.db.schema as t
from lib.db.engine import make_engine
from lib.jsonfiles import FILE_01, FILE_02
from tests.conftest import BACKENDS
from tests.reliability.bad_input_cases import (
    CANCELADO,
    DESCONHECIDA,
    FILE_CASES,
    RECORDS,
    REJECTED_BY_FIELDCONTROL,
    FileCase,
    Record,
)
from tests.reliability.harness import PIPELINE, Databases, Runner, fast_sandbox, step_env
from tests.reliability.invariants import Local, Remote, exactly_once, fc_writes, matches_remote

pytestmark = pytest.mark.reliability

ALL_RECORDS = [*RECORDS, REJECTED_BY_FIELDCONTROL]


@dataclass
class Corpus:
    """What two passes of the pipeline over the bad records left behind."""

    ids: dict[str, str]
    codes: list[dict[str, int]]
    logs: dict[str, str]
    items: list[dict]  # data/pendencias.json after the first pass
    items_after: list[dict]  # … and after the second
    before: Remote
    remote: Remote
    local: Local
    final: tuple[Remote, Local]
    writes_after: list[dict]
    file_02: dict

    @property
    def counts(self) -> dict[str, int]:
        return {"cliente": len(self.local.cliente), "os": len(self.local.os)}

    def os(self, isales_id: str) -> dict | None:
        return next((row for row in self.local.os if row["isales_id"] == isales_id), None)

    def row(self, table: str, isales_id: str) -> dict:
        project = self.os(isales_id)
        assert project is not None, f"projeto {isales_id} não foi gravado"
        if table == "os":
            return project
        if table == "pagamento":  # no payment data at all: no row
            return next((r for r in self.local.pagamento if r["os_id"] == project["id"]), {"forma_pgto": None})
        key, rows = ("cliente_id", self.local.cliente) if table == "cliente" else ("endereco_id", self.local.endereco)
        return next(row for row in rows if row["id"] == project[key])

    def customer(self, isales_id: str) -> dict:
        field_id = self.row("cliente", isales_id)["field_id"]
        return next(c for c in self.remote.customers if c["id"] == field_id)

    def tickets(self, isales_id: str) -> list[dict]:
        return [tk for tk in self.remote.tickets if (tk["external"]["id"] or "").startswith(f"isales:{isales_id}:")]

    def pending_of(self, isales_id: str, items: list[dict] | None = None) -> list[dict]:
        return [item for item in (self.items if items is None else items) if str(item["isales_id"]) == isales_id]


def _items(workdir: Path) -> list[dict]:
    return json.loads((workdir / "data" / "pendencias.json").read_text(encoding="utf-8"))["pendencias"]


def _spell_out_state(url: str, endereco_id: int) -> None:
    """What a legacy tool left in a row: the state spelled out (FieldControl wants the UF)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(update(t.endereco).where(t.endereco.c.id == endereco_id).values(estado="São Paulo"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(request, tmp_path_factory):
    if request.param == "mysql":
        request.getfixturevalue("mysql_server")
    workdir = tmp_path_factory.mktemp(f"corpus-{request.param}")
    databases = Databases(request.param, workdir)
    try:
        url = databases.migrated("corpus")
        with fast_sandbox(projetos=6, seed=41) as sb:
            ids = {case.name: str(sb.add_projects(1, **case.sandbox_overrides(n))[0])
                   for n, case in enumerate(ALL_RECORDS)}
            runner = Runner(step_env(sb, workdir, url), workdir)
            runner.run_here("00")
            codes, logs = {}, {}
            for step in PIPELINE:
                if step == "04":
                    rejected = ids[REJECTED_BY_FIELDCONTROL.name]
                    _spell_out_state(url, next(r["endereco_id"] for r in Local.read(url).os if r["isales_id"] == rejected))
                    before = Remote.of(sb)
                codes[step], logs[step] = runner.run_here(step, ok=None)
            items, remote, local = _items(workdir), Remote.of(sb), Local.read(url)
            file_02 = json.loads((workdir / "data" / FILE_02).read_text(encoding="utf-8"))
            again = {step: runner.run_here(step, ok=None)[0] for step in PIPELINE}
            items_after = _items(workdir)
            sb.reset_calls()
            runner.run_here("04", ok=None)
            yield Corpus(ids, [codes, again], logs, items, items_after, before, remote, local,
                         (Remote.of(sb), Local.read(url)), fc_writes(sb), file_02)
    finally:
        databases.close()


@pytest.mark.parametrize("case", ALL_RECORDS, ids=lambda case: case.name)
def test_each_bad_record_has_its_outcome(corpus, case: Record):
    isales_id = corpus.ids[case.name]
    if case.pending:
        items = [item for item in corpus.pending_of(isales_id) if item["etapa"] == case.pending]
        assert items, f"projeto {isales_id}: nenhuma pendência da etapa {case.pending} ({corpus.pending_of(isales_id)})"
        reason = items[0]["motivo"]
        assert f"projeto {isales_id}" in reason, reason
        assert all(fragment in reason for fragment in case.reason), reason
        assert not corpus.tickets(isales_id), "um projeto pendente chegou ao FieldControl"
    elif case.column not in (DESCONHECIDA, CANCELADO):
        assert not corpus.pending_of(isales_id), corpus.pending_of(isales_id)
        assert [tk["subject"].split(":")[0] for tk in corpus.tickets(isales_id)] == ["Instalação"], \
            f"projeto {isales_id} não chegou ao FieldControl"
    if case.warning:
        lines = [line for line in corpus.logs["02"].splitlines() if f"projeto {isales_id}" in line]
        assert any(all(fragment in line for fragment in case.warning) for line in lines), lines
    if case.check:
        case.check(corpus, isales_id)


def test_corpus_loses_nothing_duplicates_nothing_and_retries_the_pending(corpus):
    assert len(ALL_RECORDS) + len(FILE_CASES) >= 30, "o corpus precisa de pelo menos 30 tipos de entrada ruim"
    assert corpus.codes[0] == {"01": 3, "02": 3, "03": 3, "04": 3}, corpus.codes[0]
    for case in ALL_RECORDS:  # every bad record is in FieldControl, pending with a reason, or not of interest
        isales_id = corpus.ids[case.name]
        assert corpus.tickets(isales_id) or corpus.pending_of(isales_id) or case.column in (DESCONHECIDA, CANCELADO), case.name
    for remote, local in ((corpus.remote, corpus.local), corpus.final):
        problems = exactly_once(corpus.before, remote, local) + matches_remote(remote, local)
        assert not problems, "\n".join(problems)
    for case in RECORDS:  # bad data stays pending, tried once more
        if case.pending:
            again = corpus.pending_of(corpus.ids[case.name], corpus.items_after)
            assert [item["tentativas"] for item in again if item["etapa"] == case.pending] == [2], (case.name, again)
    # the legacy value was refreshed from iSales by 03: the rejected customer went through
    fixed = corpus.ids[REJECTED_BY_FIELDCONTROL.name]
    assert not corpus.pending_of(fixed, corpus.items_after)
    assert any((tk["external"]["id"] or "").startswith(f"isales:{fixed}:") for tk in corpus.final[0].tickets)
    assert corpus.writes_after == [], "uma terceira execução do 04 escreveu no FieldControl"


# --------------------------------------------------------------------------- damaged data/ files


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    """A running sandbox and the 01/02 files it gives (the material the file cases damage)."""
    workdir = tmp_path_factory.mktemp("arquivos-bons")
    with fast_sandbox(projetos=8, seed=43) as sb:
        runner = Runner(step_env(sb, workdir, f"sqlite:///{workdir / 'bons.db'}"), workdir)
        for step in ("00", "01", "02"):
            runner.run_here(step)
        data = workdir / "data"
        yield sb, {name: json.loads((data / name).read_text(encoding="utf-8")) for name in (FILE_01, FILE_02)}


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.name)
def test_each_damaged_file_is_refused_or_its_record_kept(good_files, case: FileCase, migrated_db, tmp_path):
    sb, files = good_files
    source, output = (FILE_01, FILE_02) if case.step == "02" else (FILE_02, None)
    data = tmp_path / "data"
    data.mkdir()
    if output:  # the output of an earlier good run, which a refused input must leave alone
        (data / output).write_text(json.dumps(files[output]), encoding="utf-8")
    damaged = case.damage(data / source, files[source])
    kept = (data / output).read_bytes() if output else None
    code, err = Runner(step_env(sb, tmp_path, migrated_db), tmp_path).run_here(case.step, ok=None)
    assert code == case.code, f"{case.name}: código {code}\n{err[-3000:]}"
    assert all(fragment in err for fragment in case.message), err[-3000:]
    assert "Traceback" not in err, err
    total = len(files[source]["projetos"])
    local = Local.read(migrated_db)
    if case.refused:
        if output:
            assert (data / output).read_bytes() == kept, "a saída anterior foi alterada"
        assert str(data / source) in err or f"arquivo {source[:2]} " in err, "a mensagem não diz qual arquivo"
        assert not local.os
        return
    went_on = total if case.all_go_on else total - 1
    if output:
        written = json.loads((data / output).read_text(encoding="utf-8"))
        assert len(written["projetos"]) == went_on, f"{case.name}: {len(written['projetos'])} de {total} tratados"
    else:
        assert len(local.os) == went_on, f"{case.name}: {len(local.os)} de {total} gravados"
    if case.pending:
        items = [p for p in local.pendencias if p["etapa"] == case.pending and p["chave"] == f"isales:{damaged}"]
        assert items and f"projeto {damaged}" in items[0]["motivo"], local.pendencias
        assert all(fragment in items[0]["motivo"] for fragment in case.message)
