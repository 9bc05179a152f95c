"""DATABASE_URL (lib/db/engine.parse_database_url): a password with '@' or other special characters
is read whole and never shown; a URL that cannot be used is a configuration error (exit 2) naming
the variable, in every step that opens the database, with no traceback."""

from __future__ import annotations

import socket
import uuid

import pytest
from sqlalchemy import text

from lib import config
from lib.db.engine import make_engine, parse_database_url
from lib.errors import EXIT_CONFIG, ConfigError
from lib.logs import redact
from tests.conftest import MYSQL_URL, SCRIPTS, sandbox_env

PASSWORD = "s3gr3do@Parte:Dois/Tres%x"
PIECES = ("s3gr3do", "Parte", "Dois", "Tres%x")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_password_with_at_sign_is_read_up_to_the_last_at():
    url = parse_database_url(f"mysql+pymysql://app:{PASSWORD}@db.example:3307/sync?charset=utf8mb4")
    assert (url.username, url.password, url.host, url.port, url.database) == ("app", PASSWORD, "db.example", 3307,
                                                                             "sync")
    # the percent-encoded form means the same password
    encoded = parse_database_url("mysql+pymysql://app:s3gr3do%40Parte%3ADois%2FTres%25x@db.example/sync")
    assert encoded.password == PASSWORD and encoded.host == "db.example"


def test_the_password_and_its_pieces_are_secrets():
    parse_database_url(f"mysql+pymysql://app:{PASSWORD}@db.example/sync")
    # what a parser cutting at the first '@' shows: "Can't connect to MySQL server on 'Parte:Dois…'"
    shown = f"Can't connect to MySQL server on 'Parte:Dois/Tres%x@db.example' / {PASSWORD}"
    cleaned = redact(shown)
    assert not any(piece in cleaned for piece in PIECES), cleaned


@pytest.mark.parametrize(("url", "reason"), [
    ("mysql+pymsql://app:x@db/sync", "driver desconhecido 'mysql+pymsql'"),
    ("mysql+mysqldb://app:x@db/sync", "driver 'mysqldb', que não está instalado"),
    ("mysql://app:x@db/sync", "driver 'mysqldb' (o padrão quando a URL não diz o driver), que não está instalado"),
    ("postgresql://app:x@db/sync", "usa o banco 'postgresql'"),
    ("banco de produção", "não é uma URL SQLAlchemy válida"),
    ("mysql+pymysql://app:x@db:porta/sync", "não é uma URL SQLAlchemy válida"),
    ("mysql+pymysql://app:x@db/information_schema", "que é do próprio MySQL/MariaDB"),
])
def test_unusable_urls_are_configuration_errors(url, reason):
    with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
        parse_database_url(url)
    assert reason in caught.value.message and caught.value.exit_code == EXIT_CONFIG
    with pytest.raises(ConfigError) as loading:
        config.load(environ={"DATABASE_URL": url, "DATA_DIR": "data"})
    assert reason in loading.value.message


def test_make_engine_no_longer_guesses_pymysql():
    with pytest.raises(ConfigError, match="mysql\\+pymysql"):
        make_engine("mysql://root@127.0.0.1/test")


BAD_URLS = {"mysql+pymsql": "mysql+pymsql://root:{pw}@127.0.0.1/sync", "mysql://": "mysql://root:{pw}@127.0.0.1/sync"}


@pytest.mark.parametrize("step", sorted(SCRIPTS))
@pytest.mark.parametrize("kind", sorted(BAD_URLS))
def test_every_step_exits_2_naming_the_variable(step, kind, run, tmp_path, sandbox):
    env = sandbox_env(sandbox, tmp_path, BAD_URLS[kind].format(pw=PASSWORD))
    sandbox.reset_calls()
    result = run(step, env=env)
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not any(piece in result.stderr + result.stdout for piece in PIECES), result.stderr
    assert sandbox.calls() == []


@pytest.mark.parametrize("step", sorted(SCRIPTS))
def test_an_unreachable_server_never_shows_the_password(step, run, tmp_path, sandbox):
    env = sandbox_env(sandbox, tmp_path, f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:{_closed_port()}/sync")
    result = run(step, env=env)
    assert result.returncode == 75, result.stderr  # the server is down: try later
    assert "Can't connect to MySQL server on '127.0.0.1'" in result.stderr, result.stderr
    written = result.stderr + result.stdout + "".join(
        path.read_text(encoding="utf-8") for path in (tmp_path / "data").rglob("*") if path.is_file()
        and path.suffix in (".log", ".json"))
    assert not any(piece in written for piece in PIECES), written


@pytest.mark.skipif(not MYSQL_URL, reason="TEST_MYSQL_URL não definido")
def test_mysql_accepts_a_password_with_at_sign_written_raw(mysql_url, run, tmp_path):
    from sqlalchemy.engine import make_url

    admin = make_engine(mysql_url)
    user = f"h12_{uuid.uuid4().hex[:8]}"
    database = make_url(mysql_url).database
    with admin.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": PASSWORD})
        conn.execute(text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
    try:
        base = make_url(mysql_url)
        raw = f"mysql+pymysql://{user}:{PASSWORD}@{base.host}:{base.port or 3306}/{database}"
        result = run("00", env={"DATABASE_URL": raw, "DATA_DIR": str(tmp_path / "data")})
        assert result.returncode == 0, result.stderr
        assert not any(piece in result.stderr + result.stdout for piece in PIECES), result.stdout
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


@pytest.mark.parametrize("password", ["p@ss?w#rd", "a/b@c:d", "x%y@z", "sen ha@1", "abc#def", "q?r", "a?b@c/d#e:f"])
def test_any_special_character_in_a_raw_password(password):
    url = parse_database_url(f"mysql+pymysql://app:{password}@db.example:3307/sync?charset=utf8mb4")
    assert (url.username, url.password, url.host, url.port, url.database, dict(url.query)) == \
        ("app", password, "db.example", 3307, "sync", {"charset": "utf8mb4"})
