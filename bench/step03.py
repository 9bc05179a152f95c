"""Step 03 against the database's own speed: its body (lib/steps/local_sync.py) on a fresh database,
then a SQLAlchemy `executemany` of the very rows it wrote on another fresh database of the same kind,
in the same process, on SQLite and (given a URL) MySQL/MariaDB. `python -m bench.step03 --help`."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lib.db.schema as t  # noqa: E402
from bench.rawinsert import TABLES, build_rows  # noqa: E402
from lib import config  # noqa: E402
from lib.db import migrate, runs  # noqa: E402
from lib.db.engine import make_engine  # noqa: E402
from lib.jsonfiles import stream_envelope, write_envelope  # noqa: E402
from lib.run import RunContext, Summary  # noqa: E402
from lib.steps import local_sync  # noqa: E402
from lib.steps.local_input import File02  # noqa: E402
from sandbox.data import COL_AUMENTO, COL_CANCELADO, COL_INSTALACAO  # noqa: E402
from sandbox.documents import cpf_check_digits  # noqa: E402


@contextmanager
def fresh_database(kind: str, workdir: Path, mysql_url: str | None) -> Iterator[str]:
    """The URL of an empty, migrated database (SQLite file in `workdir`, or a new MySQL database
    on the server of `mysql_url`, dropped at the end)."""
    name = f"bench03_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        url = f"sqlite:///{workdir / (name + '.db')}"
        drop = None
    else:
        assert mysql_url is not None
        server = create_engine(mysql_url)
        with server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        url = make_url(mysql_url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with server.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            server.dispose()
    setup = make_engine(url, for_migrations=True)
    migrate.upgrade(setup)
    setup.dispose()
    try:
        yield url
    finally:
        if drop is not None:
            drop()


def time_step03(file_02: Path, url: str, workdir: Path) -> dict[str, Any]:
    """Step 03's body on `url`: seconds reading the file (every pass, typing included: the step
    reads it in passes between its writes, so this is the time its reads took) and the rest."""
    engine = make_engine(url)
    try:
        settings = config.load(environ={"DATA_DIR": str(workdir / "data")})
        ctx = RunContext(step="03", settings=settings, args=argparse.Namespace(arquivo=None, ids=None),
                         summary=Summary(), engine=engine, run_id=runs.start(engine, "03"))
        started = time.perf_counter()
        envelope = stream_envelope(file_02, "02", produced_by="02_tratar_dados_clientes.py",
                                   arrays=("projetos", "movimentos"))
        source = File02(envelope.data())
        scanned = time.perf_counter()
        local_sync.sync_input(ctx, source)
        done = time.perf_counter()
        read = scanned - started + source.read_s
        written = ctx.summary.counts.get("os", {})
        return {"projetos": written.get("criados", 0) + written.get("atualizados", 0) + written.get("sem_alteracao", 0),
                "leitura_s": round(read, 3), "gravacao_s": round(done - started - read, 3),
                "resumo": ctx.summary.as_dict()}
    finally:
        engine.dispose()


def time_executemany(file_02: Path, url: str) -> dict[str, Any]:
    """The rows 03 writes on a first load, one SQLAlchemy `executemany` per table, one transaction."""
    rows = build_rows(file_02)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            for name in TABLES:
                if rows[name]:
                    conn.execute(t.metadata.tables[name].insert(), rows[name])
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return {"linhas": sum(len(r) for r in rows.values()), "tempo_s": round(seconds, 3)}


def compare(file_02: Path, workdir: Path, kinds: tuple[str, ...] = ("sqlite",),
            mysql_url: str | None = None) -> dict[str, Any]:
    """Per database kind: step 03 (read + write) and the executemany of its rows; the ratio of the
    write time to the executemany time."""
    result: dict[str, Any] = {}
    for kind in kinds:
        with fresh_database(kind, workdir, mysql_url) as url:
            step = time_step03(file_02, url, workdir)
        with fresh_database(kind, workdir, mysql_url) as url:
            many = time_executemany(file_02, url)
        total = step["leitura_s"] + step["gravacao_s"]
        result[kind] = {
            "etapa_03": step, "executemany": many,
            "projetos_por_s": round(step["projetos"] / step["gravacao_s"], 1) if step["gravacao_s"] else None,
            "projetos_por_s_com_leitura": round(step["projetos"] / total, 1) if total else None,
            "razao": round(step["gravacao_s"] / many["tempo_s"], 2) if many["tempo_s"] else None,
        }
    return result


def peak_rss(file_02: Path, workdir: Path) -> dict[str, Any]:
    """Peak RSS of 03_sync_dados_local.py run as a user runs it (a subprocess of its own, after
    00_schema_banco.py) on `file_02` and a fresh SQLite database; wait4 reports it."""
    data = workdir / "rss" / "data"
    data.mkdir(parents=True)
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(DATA_DIR=str(data), DATABASE_URL=f"sqlite:///{data / 'sync.db'}", PYTHONUNBUFFERED="1",
               ISALES_COLUNA_INSTALACAO=str(COL_INSTALACAO), ISALES_COLUNA_AUMENTO=str(COL_AUMENTO),
               ISALES_COLUNA_CANCELADO=str(COL_CANCELADO))  # the sandbox's, as the bench's 02 files have
    result: dict[str, Any] = {}
    orders = "".join(json.dumps({"argv": [sys.executable, str(ROOT / script), *args], "cwd": str(workdir), "env": env,
                                 "log": str(workdir / "rss" / f"{script}.log")}) + "\n"
                     for script, args in (("00_schema_banco.py", []),
                                          ("03_sync_dados_local.py", ["--arquivo", str(file_02)])))
    # from a small process of its own: a child forked from this one (which may hold the executemany's
    # rows) would be charged this process's memory as its own peak
    answers = subprocess.run([sys.executable, "-S", str(ROOT / "bench" / "launcher.py")], input=orders,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    for script, line in zip(("00_schema_banco.py", "03_sync_dados_local.py"), answers):
        answer = json.loads(line)
        if answer["code"] not in (0, 3):
            raise RuntimeError(f"{script} terminou com código {answer['code']}: veja {workdir / 'rss'}")
        result = {"codigo": answer["code"], "pico_rss_mb": round(answer["maxrss_kb"] / 1024, 1),
                  "cpu_s": round(answer["cpu"], 2)}
    return result


def compare_apart(file_02: Path, mysql_url: str | None = None) -> dict[str, Any]:
    """compare() in a process of its own: the benchmark's process holds the sandbox (up to 50,000
    projects), whose objects would slow the garbage collector of step 03's body, not of executemany."""
    argv = [sys.executable, "-m", "bench.step03", "--arquivo", str(file_02)] + (["--mysql", mysql_url] if mysql_url else [])
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.step03 terminou com código {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def cpf(n: int) -> str:
    """A valid CPF built from a number (distinct numbers → distinct CPFs)."""
    base = f"{(n * 7919 + 100_000_003) % 1_000_000_000:09d}"
    return base + cpf_check_digits(base)


def _client_of(n: int) -> int:
    return n - 1 if n % 10 == 9 else n


def synthetic_documents(projects: int) -> list[str]:
    """The clients' documents of synthetic_02(…, projects), in order."""
    return list(dict.fromkeys(cpf(_client_of(n)) for n in range(projects)))


def synthetic_02(path: Path, projects: int) -> Path:
    """An 02 file of `projects` projects (one client in ten has two projects), as step 02 writes it."""
    items = []
    for n in range(projects):
        client = _client_of(n)
        items.append({
            "isales_id": str(100000 + n), "coluna_id": 17840, "status": "instalacao",
            "obtido_em": "2026-11-29T13:00:01Z",
            "cliente": {"nome": f"Cliente {client} da Silva", "doc_pessoal": cpf(client), "tipo_documento": "cpf",
                        "email": f"cliente{client}@example.com", "telefone": "11987654321",
                        "telefone_secundario": None},
            "endereco": {"cep": f"{1000000 + client:08d}", "logradouro": "Avenida Paulista", "numero": str(n),
                         "complemento": None, "bairro": "Bela Vista", "cidade": "São Paulo", "estado": "SP",
                         "link_localizacao": None, "latitude": "-23.5614000", "longitude": "-46.6559000",
                         "fonte_coordenadas": "endereco"},
            "os": {"vendedor": "João Souza", "data_fechamento": "2025-03-14T10:22:00", "modulos": "12x Módulo 550W",
                   "inversor1": "Inversor 5kW", "inversor2": None, "inversor3": None, "valor": "45900.00",
                   "observacoes": "Telhado cerâmico", "acesso": ["Escada necessária"]},
            "pagamento": {"forma_pgto": "FINANCIAMENTO", "responsavel_financiamento": None,
                          "valor_seguro": "890.00", "observacoes": None},
            "avisos": [], "bruto": {}})
    write_envelope(path, "02", 1, {"origem": {"execucao_id_01": 1, "gerado_em_01": "2026-11-29T13:00:00Z"},
                                   "contagens": {"tratados": projects}, "projetos": items, "movimentos": [],
                                   "pendencias": []})
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.step03",
                                description="Mede o 03 contra um executemany do SQLAlchemy com as mesmas linhas.")
    p.add_argument("--arquivo", type=Path, help="um arquivo 02 (padrão: um sintético com --projetos)")
    p.add_argument("--projetos", type=int, default=5000, help="projetos do arquivo sintético (padrão: %(default)s)")
    p.add_argument("--mysql", metavar="URL", help="servidor MySQL/MariaDB: mede também nele (cria e apaga um banco)")
    p.add_argument("--memoria", action="store_true",
                   help="mede também o pico de RSS do 03_sync_dados_local.py rodado como processo próprio (SQLite)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench03-") as folder:
        workdir = Path(folder)
        file_02 = args.arquivo or synthetic_02(workdir / "02.json", args.projetos)
        kinds = ("sqlite", "mysql") if args.mysql else ("sqlite",)
        result = compare(file_02, workdir, kinds, args.mysql)
        if args.memoria:
            result["memoria"] = peak_rss(file_02, workdir)
        print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
