"""Shared fixtures: databases (SQLite always, MariaDB/MySQL when TEST_MYSQL_URL is set), the
sandbox servers, and a runner for the numbered scripts as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "").strip() or None
BACKENDS = ["sqlite"] + (["mysql"] if MYSQL_URL else [])

SCRIPTS = {
    "00": "00_schema_banco.py",
    "01": "01_get_projetos_isales.py",
    "02": "02_tratar_dados_clientes.py",
    "03": "03_sync_dados_local.py",
    "04": "04_sync_field_api.py",
}


# --------------------------------------------------------------------------- databases

def pytest_collection_modifyitems(config, items):
    """Every test that uses MySQL/MariaDB carries the `mysql` mark (`-m "not mysql"` leaves them out)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_mysql = callspec is not None and callspec.params.get("db_url") == "mysql"
        if on_mysql or {"mysql_server", "mysql_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mysql)


@pytest.fixture(scope="session")
def mysql_server():
    """The MySQL/MariaDB server of TEST_MYSQL_URL; a failure (never a skip) when unreachable."""
    if not MYSQL_URL:
        pytest.skip("TEST_MYSQL_URL não definido: testes de MySQL/MariaDB não rodam nesta máquina")
    from sqlalchemy import create_engine, text

    engine = create_engine(MYSQL_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"TEST_MYSQL_URL definido, mas o MySQL/MariaDB não responde: {exc}")
    yield engine
    engine.dispose()


def _mysql_database(server) -> tuple[str, callable]:
    """A database of its own for one test (never assume `test` is empty); returns url and dropper."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"sync_t_{uuid.uuid4().hex[:12]}"
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)

    def drop():
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))

    return url, drop


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sync.db'}"
        return
    server = request.getfixturevalue("mysql_server")
    url, drop = _mysql_database(server)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def mysql_url(mysql_server):
    """An empty MySQL/MariaDB database of its own (for what only needs to run on MySQL)."""
    url, drop = _mysql_database(mysql_server)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def migrated_db(db_url):
    """A database URL at the head migration."""
    from lib.db import migrate
    from lib.db.engine import make_engine

    engine = make_engine(db_url, for_migrations=True)
    migrate.upgrade(engine)
    engine.dispose()
    return db_url


@pytest.fixture
def engine(migrated_db):
    from lib.db.engine import make_engine

    eng = make_engine(migrated_db)
    yield eng
    eng.dispose()


# --------------------------------------------------------------------------- pacing

@pytest.fixture
def pacers(monkeypatch) -> list:
    """Every lib.http.Pacer made during the test, each with the moments it reserved (`slots`): the
    schedule the client keeps, which no load on the machine can shrink (unlike arrival times at a
    server, which is why tests assert on this and not on the simulator's clock)."""
    from lib import http

    made = []

    class Recording(http.Pacer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.slots: list[float] = []
            made.append(self)

        def wait(self) -> float:
            slot = super().wait()
            self.slots.append(slot)
            return slot

    monkeypatch.setattr(http, "Pacer", Recording)
    return made


def gaps(slots: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(slots, slots[1:])]


# --------------------------------------------------------------------------- sandbox

@pytest.fixture
def sandbox():
    """A fresh sandbox (all four systems) with fast rate limits, on a free port."""
    from sandbox import Sandbox

    with Sandbox(projetos=20, seed=7, fc_rps=200.0, isales_rpm=1_000_000, nominatim_rps=500.0) as sb:
        yield sb


def sandbox_env(sb, tmp_path: Path, db_url: str, **overrides) -> dict[str, str]:
    """The environment of the numbered scripts pointed at `sb`, a data dir and a database."""
    env = dict(sb.env())
    env.update({
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path / "data"),
        "GEOCODER_MIN_DELAY_SECONDS": "0.003",
        "HTTP_TIMEOUT_CONEXAO": "3",
        "HTTP_TIMEOUT_LEITURA": "5",
        "HTTP_MAX_TENTATIVAS": "6",
    })
    env.update({key: str(value) for key, value in overrides.items()})
    return env


@pytest.fixture
def pipeline_env(sandbox, tmp_path, migrated_db):
    return sandbox_env(sandbox, tmp_path, migrated_db)


# --------------------------------------------------------------------------- SMTP

class Inbox:
    """What a local SMTP server (aiosmtpd) received: envelopes and logins."""

    def __init__(self):
        self.envelopes = []
        self.logins: list[tuple[str, str]] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append(envelope)
        return "250 OK"

    def env(self, password: str = "senha-smtp-teste") -> dict[str, str]:
        """The SMTP_* / RELATORIO_* variables pointing at this server (STARTTLS off: local)."""
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_STARTTLS": "0",
                "SMTP_USER": "relatorio", "SMTP_PASSWORD": password,
                "RELATORIO_EMAIL_DE": "sync@solar.example",
                "RELATORIO_EMAIL_PARA": "operacao@solar.example, gerencia@solar.example"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free local port, accepting AUTH without TLS (it is local)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    inbox = Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        inbox.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield inbox
    controller.stop()


# --------------------------------------------------------------------------- scripts

def run_script(step: str, *args: str, env: dict[str, str], cwd: Path, timeout: float = 600,
               ) -> subprocess.CompletedProcess:
    """Run a numbered script in a subprocess, as a user does (only `env`, no .env of the repo)."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
            if key in os.environ}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env)
    return subprocess.run(
        [sys.executable, str(ROOT / SCRIPTS[step]), *args],
        cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def run(tmp_path):
    """run(step, *args, env=...) in tmp_path; fails the test with the output if it times out."""
    def _run(step: str, *args: str, env: dict[str, str], timeout: float = 600):
        return run_script(step, *args, env=env, cwd=tmp_path, timeout=timeout)

    return _run


class AliveCounter:
    """Wraps a function so that the objects it returns are counted while alive: `most` is how many
    were alive at once (what a streaming step holds), found with weak references."""

    def __init__(self) -> None:
        self.alive: set[int] = set()
        self.most = 0

    def wrap(self, function):
        import weakref

        def tracked(*args, **kwargs):
            value = function(*args, **kwargs)
            self.alive.add(id(value))
            self.most = max(self.most, len(self.alive))
            weakref.finalize(value, self.alive.discard, id(value))
            return value

        return tracked
