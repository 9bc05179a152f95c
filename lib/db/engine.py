"""Engines for SQLite (default) and MySQL/MariaDB through PyMySQL, configured the same way.

SQLite: WAL, foreign keys on, a busy timeout, and `BEGIN IMMEDIATE` so that two processes never
deadlock upgrading a read lock. MySQL: utf8mb4 forced, pre-ping, strict mode for the session.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from lib.errors import ConfigError
from lib.logs import register_secret

# SQLite stores Numeric as REAL; SQLAlchemy converts back to Decimal at the column's scale, which
# is exact for our 2- and 7-decimal columns. Its warning about it is noise for us.
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*",
                        category=sa_exc.SAWarning)


EXAMPLES = "ex.: sqlite:///data/sync.db ou mysql+pymysql://usuario:senha@host/banco?charset=utf8mb4"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+._-]*)://(.*)", re.DOTALL)


def parse_database_url(text: str | URL) -> URL:
    """DATABASE_URL as a SQLAlchemy URL, or ConfigError (exit 2) naming the variable, never the password.

    The password is registered as a secret first, with its URL-decoded form and the pieces a parser
    could cut it into at '@', ':' or '/'. A password with a raw '@' is read up to the LAST '@' of the
    address (SQLAlchemy alone stops at the first, and the rest becomes the host name, shown in every
    connection error). Refused: a text that is not such a URL, a driver SQLAlchemy does not know
    ('mysql+pymsql'), a driver whose module is not installed ('mysql+mysqldb', and 'mysql://',
    whose default driver is mysqldb), a database other than SQLite and MySQL/MariaDB, and the
    MySQL system databases.
    """
    if isinstance(text, URL):
        parsed = text
    else:
        parsed = _parse(text)
    try:
        dialect = parsed.get_dialect()
    except Exception:  # NoSuchModuleError: 'mysql+pymsql'
        raise ConfigError(f"configuração inválida: DATABASE_URL usa o driver desconhecido {parsed.drivername!r}; "
                          f"use sqlite ou mysql+pymysql ({EXAMPLES})") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "mysql", "mariadb"):
        raise ConfigError(f"configuração inválida: DATABASE_URL usa o banco {backend!r}; use sqlite ou mysql+pymysql")
    try:
        dialect.import_dbapi()
    except ImportError:
        named = "+" in parsed.drivername
        raise ConfigError(
            f"configuração inválida: DATABASE_URL usa o driver {parsed.get_driver_name()!r}"
            f"{'' if named else ' (o padrão quando a URL não diz o driver)'}, que não está instalado; "
            f"use {backend}+pymysql://…" if backend != "sqlite" else
            f"configuração inválida: DATABASE_URL usa o driver {parsed.get_driver_name()!r}, que não está "
            "instalado; use sqlite:///caminho/do/arquivo.db") from None
    refuse_system_schema(backend, parsed.database)
    return parsed


def _parse(text: str) -> URL:
    invalid = ConfigError(f"configuração inválida: DATABASE_URL não é uma URL SQLAlchemy válida ({EXAMPLES})")
    match = _SCHEME.fullmatch(text.strip())
    if match is None:
        raise invalid
    scheme, rest = match.groups()
    at = rest.rfind("@")  # the host, port, database and options never hold an "@"; a password may
    if scheme.split("+")[0].lower() == "sqlite" or at < 0:
        user = password = None
        address = rest
    else:
        user, _, password = rest[:at].partition(":")
        address = rest[at + 1:]
        _register_password(password)
    try:
        parsed = make_url(f"{scheme}://{address}")
    except Exception:
        raise invalid from None
    if user is not None:
        parsed = parsed.set(username=unquote(user) or None, password=unquote(password) if password else None)
    return parsed


def _register_password(password: str) -> None:
    for form in {password, unquote(password)}:
        register_secret(form)
        for piece in re.split(r"[@:/]", form):
            register_secret(piece)


def make_engine(url: str | URL, *, for_migrations: bool = False) -> Engine:
    """An Engine for `url` (see parse_database_url). `for_migrations` turns SQLite foreign keys off
    (Alembic batch mode)."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, for_migrations)
    return _mysql_engine(parsed)


SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


def refuse_system_schema(backend: str, database: str | None) -> None:
    """MySQL/MariaDB's own databases never receive the project's tables (exit 2)."""
    if backend in ("mysql", "mariadb") and (database or "").lower() in SYSTEM_SCHEMAS:
        raise ConfigError(
            f"configuração inválida: DATABASE_URL aponta para o banco {database!r}, que é do próprio "
            "MySQL/MariaDB; crie um banco para o projeto (ex.: CREATE DATABASE sync_isales_field "
            "CHARACTER SET utf8mb4) e use-o na URL")


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for another backend or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def require_existing_sqlite(url: str | URL) -> None:
    """A step other than 00 never creates the SQLite file: a mistyped path or a step run before
    00 would otherwise leave an empty .db (and its folder) behind. ConfigError (exit 2)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise ConfigError(f"o banco de dados {path} não existe: confira DATABASE_URL (e DATA_DIR) "
                          "ou rode python 00_schema_banco.py antes")


def _sqlite_engine(parsed, for_migrations: bool) -> Engine:
    if for_migrations and parsed.database and parsed.database != ":memory:":
        # only 00 (and tests) create the database; see require_existing_sqlite
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute(f"PRAGMA foreign_keys={'OFF' if for_migrations else 'ON'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN" if for_migrations else "BEGIN IMMEDIATE")

    return engine


def _mysql_engine(parsed) -> Engine:
    query = dict(parsed.query)
    query["charset"] = "utf8mb4"
    parsed = parsed.set(query=query)
    engine = create_engine(parsed, pool_pre_ping=True, pool_recycle=3600)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        # strict mode: an overlong value is an error, never a silent truncation
        cursor.execute("SET SESSION sql_mode = IF(@@sql_mode = '', 'STRICT_TRANS_TABLES', "
                       "CONCAT(@@sql_mode, ',STRICT_TRANS_TABLES'))")
        cursor.execute("SET time_zone = '+00:00'")
        cursor.close()

    return engine

