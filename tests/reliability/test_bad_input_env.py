"""Bad input that is not a record: answers of the remote APIs (HTML, truncated JSON, 500 storms,
refused credentials) and a broken environment (DATA_DIR that is a file, a full disk, an output path
taken by a folder, a database missing or unreachable, a malformed setting). Each ends with the
documented exit code and a pt-BR message naming the reason, and loses nothing already written.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lib.jsonfiles import FILE_01, FILE_02
from tests.conftest import ROOT, SCRIPTS
from tests.reliability.harness import Runner, fast_sandbox, process_env, step_env
from tests.reliability.invariants import Local, Remote, exactly_once, matches_remote
from tests.steps.test_local_sync import COLUMNS_ENV

pytestmark = pytest.mark.reliability


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Answer:
    """Step `step` (after the steps before it ran cleanly) meets `faults` or settings `env`."""

    name: str
    step: str
    code: int
    message: tuple[str, ...]
    faults: tuple[dict, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    pending: int = 0  # pending items of this step that must name a project


CLOSED = _closed_port()
ANSWERS = [
    Answer("HTML no lugar da listagem do iSales", "01", 2, ("respondeu uma página HTML em vez de JSON",),
           ({"system": "isales", "route": "GET /funil-clientes", "kind": "html"},)),
    Answer("HTML no lugar de um cliente do iSales", "01", 3, ("uma página HTML",),
           ({"system": "isales", "route": "GET /clientes", "kind": "html", "times": 1},), pending=1),
    Answer("JSON truncado do iSales", "01", 3, ("não é JSON válido",),
           ({"system": "isales", "route": "GET /propostas", "kind": "malformed", "times": 1},), pending=1),
    Answer("tempestade de 500 no iSales", "01", 75, ("o servidor respondeu 500", "após 2 tentativas"),
           ({"system": "isales", "status": 500},), env={"HTTP_MAX_TENTATIVAS": "2"}),
    Answer("token do iSales recusado", "01", 2, ("recusou o token", "ISALES_API_TOKEN"),
           env={"ISALES_API_TOKEN": "token-errado"}),
    Answer("HTML do geocodificador", "02", 3, ("coordenadas não obtidas", "página HTML"),
           ({"system": "nominatim", "kind": "html"},), pending=1),
    Answer("chave do FieldControl recusada", "04", 2, ("recusou a chave de API", "FIELDCONTROL_API_KEY"),
           env={"FIELDCONTROL_API_KEY": "chave-errada"}),
    # an HTML answer to a POST is ambiguous: the OS may exist; README "Regras de negócio": not resent within
    # FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS, a pending item names it, the others go on, and 04 ends with 75
    Answer("HTML do FieldControl ao criar uma OS", "04", 75, ("página HTML", "resultado incerto"),
           ({"system": "fieldcontrol", "route": "POST /tickets", "kind": "html", "times": 1},), pending=1),
    Answer("FieldControl fora do ar", "04", 75, ("conexão recusada",),
           env={"FIELDCONTROL_API_URL": f"http://127.0.0.1:{CLOSED}/fieldcontrol", "HTTP_MAX_TENTATIVAS": "2"}),
    Answer("configuração malformada", "04", 2, ("FIELDCONTROL_RATE_PER_SECOND='depressa' não é um número",),
           env={"FIELDCONTROL_RATE_PER_SECOND": "depressa"}),
]


@pytest.mark.parametrize("case", ANSWERS, ids=lambda case: case.name)
def test_each_bad_answer_has_its_outcome(case: Answer, tmp_path):
    """On SQLite only: what is under test is the reading of the answers, not the database."""
    url = f"sqlite:///{tmp_path / 'respostas.db'}"
    with fast_sandbox(projetos=8, seed=47) as sb:
        runner = Runner(step_env(sb, tmp_path, url), tmp_path)
        for step in ("00", "01", "02", "03", "04"):
            if step == case.step:
                break
            runner.run_here(step)
        output = tmp_path / "data" / FILE_01
        if case.step == "01":
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text('{"etapa": "01", "anterior": true}\n', encoding="utf-8")
        before = Remote.of(sb)
        for fault in case.faults:
            sb.add_fault(**fault)
        code, err = Runner({**runner.env, **case.env}, tmp_path).run_here(case.step, ok=None)
        assert code == case.code, f"{case.name}: código {code}\n{err[-3000:]}"
        assert all(fragment in err for fragment in case.message), err[-3000:]
        assert "Traceback" not in err, err
        if case.step == "01" and case.code not in (0, 3):
            assert output.read_text(encoding="utf-8") == '{"etapa": "01", "anterior": true}\n'
        local = Local.read(url)
        named = [p for p in local.pendencias if p["etapa"] == case.step and f"projeto {p['isales_id']}" in p["motivo"]
                 and all(fragment in p["motivo"] for fragment in case.message)]
        assert len(named) >= case.pending, local.pendencias
        if case.step == "04":
            after = Remote.of(sb)
            problems = exactly_once(before, after, local) + matches_remote(after, local)
            assert not problems, "\n".join(problems)
            if case.code == 0 or case.pending:  # only the write in doubt waits: the others went through
                assert local.sent_tickets(), "nada chegou ao FieldControl"


# --------------------------------------------------------------------------- the environment


def _run(step: str, env: dict[str, str], cwd: Path, preexec: Callable[[], None] | None = None):
    return subprocess.run([sys.executable, str(ROOT / SCRIPTS[step])], cwd=cwd, env=process_env(env),
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec)


def _file_size_limit(size: int) -> Callable[[], None]:
    """A disk that is full past `size` bytes per file: writes beyond it fail (EFBIG; Python
    ignores SIGXFSZ), like ENOSPC on a full disk, for the step and nothing else."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_data_dir_that_is_a_file_is_refused_with_its_reason(tmp_path):
    not_a_dir = tmp_path / "dados"
    not_a_dir.write_text("sou um arquivo", encoding="utf-8")
    result = _run("03", {"DATA_DIR": str(not_a_dir), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                         **COLUMNS_ENV}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "não foi possível usar a pasta de dados" in result.stderr and "DATA_DIR" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not_a_dir.read_text(encoding="utf-8") == "sou um arquivo"


def test_full_disk_keeps_the_previous_file_and_the_next_run_catches_up(migrated_db, tmp_path):
    with fast_sandbox(projetos=6, seed=53) as sb:
        env = step_env(sb, tmp_path, migrated_db)
        runner = Runner(env, tmp_path)
        runner.run_here("01")
        previous = (tmp_path / "data" / FILE_01).read_bytes()
        big = sb.add_projects(1, coluna_id=17840, campos={"OBSERVAÇÕES": "relato " * 300_000})[0]
        result = _run("01", env, tmp_path, _file_size_limit(1_000_000))
        assert result.returncode == 1, result.stderr[-3000:]
        assert "não foi possível gravar" in result.stderr and "o arquivo anterior foi mantido" in result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert (tmp_path / "data" / FILE_01).read_bytes() == previous
        assert not list((tmp_path / "data").glob(".*.tmp")), "um arquivo temporário ficou para trás"
        again = _run("01", env, tmp_path)  # space again: the project comes in
        assert again.returncode in (0, 3), again.stderr[-3000:]
        written = json.loads((tmp_path / "data" / FILE_01).read_text(encoding="utf-8"))
        assert big in [p["isales_id"] for p in written["projetos"]]


def test_output_path_taken_by_a_folder_is_refused_and_the_input_kept(migrated_db, tmp_path):
    with fast_sandbox(projetos=6, seed=59) as sb:
        env = step_env(sb, tmp_path, migrated_db)
        Runner(env, tmp_path).run_here("01")
        (tmp_path / "data" / FILE_02).mkdir()
        source = (tmp_path / "data" / FILE_01).read_bytes()
        result = _run("02", env, tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"não foi possível gravar {tmp_path / 'data' / FILE_02}" in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert (tmp_path / "data" / FILE_01).read_bytes() == source


def test_database_not_created_or_unreachable(tmp_path):
    data = {"DATA_DIR": str(tmp_path / "data"), **COLUMNS_ENV}
    missing = _run("03", {**data, "DATABASE_URL": f"sqlite:///{tmp_path / 'vazio.db'}"}, tmp_path)
    assert missing.returncode == 2 and "rode python 00_schema_banco.py antes" in missing.stderr, missing.stderr
    down = _run("03", {**data, "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:{_closed_port()}/sync"}, tmp_path)
    assert down.returncode == 75, down.stderr
    assert "não foi possível abrir o banco de dados" in down.stderr and "Traceback" not in down.stderr, down.stderr
