"""Run locks: one run of a step at a time — per working directory AND per database — and a lock
left by a dead process is taken over.

`RunLock` is an flock(2) on DATA_DIR/locks/<step>.lock (the files of data/ are per working
directory). `DatabaseLock` makes the rule hold across working directories, containers and hosts
sharing one database: on MySQL/MariaDB a named server lock (GET_LOCK) held by a dedicated
connection for the whole run — the server releases it when that connection goes (a killed process,
a host that vanished); on SQLite an flock on a file beside the database file. The kernel releases
an flock when its process dies (even by kill -9), so a stale lock never blocks the next cron run.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from lib.clock import utcnow
from lib.errors import LockHeld

log = logging.getLogger(__name__)

MYSQL_LOCK_NAME_MAX = 64  # MySQL's limit on GET_LOCK names
HOLDER_ROW_WAITS = 30  # × 0.1 s: the holder's run row follows its lock at once


def holder_description() -> str:
    """Who holds a lock: process, host and since when (UTC), as shown to a run that is refused."""
    since = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    return f"processo {os.getpid()} em {socket.gethostname()}, desde {since} UTC"


def refused(step: str, holder: str, where: str = "") -> LockHeld:
    return LockHeld(f"outra execução da etapa {step} está em andamento{where} ({holder}); "
                    "esta execução não fez nada: tente novamente quando ela terminar")


class FileLock:
    """An flock on `path` for the duration of a run; the file carries who holds it."""

    def __init__(self, path: Path, step: str, where: str = ""):
        self.path = Path(path)
        self.name = step
        self.where = where
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "processo desconhecido"
            handle.close()
            raise refused(self.name, holder, self.where) from None
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            log.warning("trava da etapa %s deixada por uma execução interrompida (%s): assumida", self.name, previous)
        handle.seek(0)
        handle.truncate()
        handle.write(holder_description() + "\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        finally:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class RunLock(FileLock):
    """DATA_DIR/locks/<step>.lock: one run of a step per working directory."""

    def __init__(self, data_dir: Path, name: str):
        super().__init__(Path(data_dir) / "locks" / f"{name}.lock", name)


def mysql_lock_name(database: str, step: str) -> str:
    """The GET_LOCK name of a step on a database (named locks are server-wide: the database is in it)."""
    name = f"isales-sync:{database}:{step}"
    if len(name) > MYSQL_LOCK_NAME_MAX:
        name = f"isales-sync:{hashlib.sha1(database.encode('utf-8')).hexdigest()[:24]}:{step}"
    return name


def sqlite_lock_path(database: str, step: str) -> Path:
    """The lock file beside an SQLite database file: data/sync.db → data/sync.db.etapa-04.lock."""
    path = Path(database)
    return path.with_name(f"{path.name}.etapa-{step}.lock")


class DatabaseLock:
    """One run of a step per database, wherever it runs from (see the module docstring).

    Take it after the schema check and before the run row: the refused run writes nothing.
    A MySQL holder is described by its run row (`execucao`: process, host, start), which the other
    host reads from the database.
    """

    def __init__(self, engine: Engine, step: str):
        self.engine, self.step = engine, step
        self._conn: Connection | None = None
        self._file: FileLock | None = None
        self.name: str | None = None

    def acquire(self) -> None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                self._file = FileLock(sqlite_lock_path(url.database, self.step), self.step, " neste banco de dados")
                self._file.acquire()
            return
        self.name = mysql_lock_name(str(url.database or ""), self.step)
        conn = self.engine.connect()
        try:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.name}).scalar()
            if got != 1:
                holder = self._describe_holder(conn)
                raise refused(self.step, holder, " neste banco de dados")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _describe_holder(self, conn: Connection) -> str:
        """The newest unfinished run row of the step: its process, host and start. The holder writes
        it right after taking the lock, so a refused run that came in between waits a moment for it."""
        import lib.db.schema as t

        run = t.execucao
        query = (select(run.c.id, run.c.pid, run.c.maquina, run.c.iniciada_em)
                 .where(run.c.etapa == self.step, run.c.terminada_em.is_(None)).order_by(run.c.id.desc()).limit(1))
        try:
            row = conn.execute(query).first()
            for _ in range(HOLDER_ROW_WAITS):
                if row is not None:
                    break
                time.sleep(0.1)
                row = conn.execute(query).first()
            holder_connection = conn.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": self.name}).scalar()
        except Exception:  # the description is a courtesy: never let it hide the refusal
            return "processo desconhecido"
        if row is None:
            return f"conexão {holder_connection} do servidor de banco de dados"
        return (f"execução #{row.id}, processo {row.pid} em {row.maquina}, "
                f"desde {row.iniciada_em:%Y-%m-%d %H:%M:%S} UTC")

    def release(self) -> None:
        if self._file is not None:
            self._file.release()
            self._file = None
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
        except Exception as exc:  # the connection is gone: the server released the lock with it
            log.debug("trava do banco liberada com a conexão: %s", type(exc).__name__)
        finally:
            conn.close()

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()
