"""Driving the pipeline for the reliability suites: the numbered scripts as subprocesses (also
killed with SIGKILL mid-run), reruns of exit 75, and databases cloned per trial (SQLite or MySQL)."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import lib.db.schema as t
from lib.db import migrate
from lib.db.engine import make_engine
from tests.conftest import MYSQL_URL, ROOT, SCRIPTS, run_script, sandbox_env

PIPELINE = ("01", "02", "03", "04")
SETTLED = (0, 3)  # exit codes of a run that finished (with or without pending items)
TEMPFAIL = 75


def fast_sandbox(**options):
    """A sandbox with rates far out of the way (FieldControl 200/s, paced by us at the same rate)."""
    from sandbox import Sandbox

    options.setdefault("fc_rps", 200.0)
    options.setdefault("isales_rpm", 1_000_000)
    options.setdefault("nominatim_rps", 500.0)
    return Sandbox(**options)


def step_env(sb, workdir: Path, db_url: str, **overrides) -> dict[str, str]:
    """The environment of a step against `sb`, with FIELDCONTROL_RATE_PER_SECOND = the sandbox's rate."""
    rate = sb.settings.fc_rps
    return sandbox_env(sb, workdir, db_url, FIELDCONTROL_RATE_PER_SECOND=f"{rate:g}", **overrides)


def process_env(env: dict[str, str]) -> dict[str, str]:
    """What run_script gives a script: a few variables of this process, then only `env`."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env)
    return base


@functools.cache
def door(step: str):
    """The numbered script of `step` as a module (its `main(argv)` is what the command line runs)."""
    spec = importlib.util.spec_from_file_location(f"porta_{step}", ROOT / SCRIPTS[step])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def environment(env: dict[str, str], cwd: Path):
    """os.environ is exactly what a subprocess of run_script would get, and cwd is `cwd`."""
    saved, previous = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(process_env(env))
    os.chdir(cwd)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(previous)


@dataclass
class Runner:
    """Runs the steps in `workdir` with `env`, as a user does (subprocess) or in this process."""

    env: dict[str, str]
    workdir: Path

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def run(self, step: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
            ok: tuple[int, ...] | None = SETTLED) -> subprocess.CompletedProcess:
        result = run_script(step, *args, env=env or self.env, cwd=self.workdir, timeout=timeout)
        if ok is not None:
            assert result.returncode in ok, f"etapa {step} saiu com {result.returncode}:\n{result.stderr[-4000:]}"
        return result

    def run_here(self, step: str, *args: str, ok: tuple[int, ...] | None = SETTLED) -> tuple[int, str]:
        """The door's main() in this process (no interpreter start-up: for set-up runs and the
        "next run writes nothing" checks); returns (exit code, what it wrote to stderr)."""
        err = io.StringIO()
        root = logging.getLogger()
        handlers = list(root.handlers)
        try:
            with environment(self.env, self.workdir), contextlib.redirect_stderr(err), \
                    contextlib.redirect_stdout(io.StringIO()):
                code = door(step).main(list(args))
        finally:
            for handler in set(root.handlers) - set(handlers):  # the step's log set-up
                root.removeHandler(handler)
                handler.close()
        if ok is not None:
            assert code in ok, f"etapa {step} saiu com {code}:\n{err.getvalue()[-4000:]}"
        return code, err.getvalue()

    def settle(self, step: str, *args: str, rounds: int = 6, wait: float = 0.0) -> list[subprocess.CompletedProcess]:
        """Run `step`, again while it ends with 75 (try later), at most `rounds` times, `wait` seconds
        before each new try (as cron does: e.g. an ambiguous write's settle period must pass); the
        last run must have finished (0 or 3)."""
        results = []
        for _ in range(rounds):
            if results and wait:
                time.sleep(wait)
            results.append(self.run(step, *args, ok=None))
            if results[-1].returncode != TEMPFAIL:
                break
        last = results[-1]
        assert last.returncode in SETTLED, (f"etapa {step} não terminou em {rounds} rodadas (códigos "
                                            f"{[r.returncode for r in results]}):\n{last.stderr[-4000:]}")
        return results

    def spawn(self, step: str, *args: str, env: dict[str, str] | None = None, tag: str = "") -> subprocess.Popen:
        """Start a step without waiting; its output goes to files in workdir (never a full pipe)."""
        name = f"saida-{step}{'-' + tag if tag else ''}-{uuid.uuid4().hex[:6]}"
        out = open(self.workdir / f"{name}.out", "w", encoding="utf-8")
        err = open(self.workdir / f"{name}.err", "w", encoding="utf-8")
        proc = subprocess.Popen([sys.executable, str(ROOT / SCRIPTS[step]), *args], cwd=self.workdir,
                                env=process_env(env or self.env), stdout=out, stderr=err)
        out.close()
        err.close()
        proc.stderr_path = self.workdir / f"{name}.err"  # type: ignore[attr-defined]
        return proc


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], *, jitter: float = 0.0,
              deadline: float = 60.0) -> bool:
    """SIGKILL `proc` as soon as `ready()` (checked every millisecond) plus `jitter` seconds;
    False when the process ended by itself first."""
    limit = time.monotonic() + deadline
    while proc.poll() is None and not ready():
        if time.monotonic() > limit:
            break
        time.sleep(0.001)
    if jitter:
        time.sleep(jitter)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


# --------------------------------------------------------------------------- databases


def backend(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "mysql"


class Databases:
    """Empty or cloned databases of one backend ("sqlite" or "mysql"); dropped at close()."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.workdir = workdir
        self.dropped: list[str] = []
        self.server = create_engine(MYSQL_URL) if self.kind == "mysql" else None

    def empty(self, label: str) -> str:
        if self.kind == "sqlite":
            path = self.workdir / f"{label}-{uuid.uuid4().hex[:6]}.db"
            return f"sqlite:///{path}"
        name = f"sync_t_{uuid.uuid4().hex[:12]}"
        with self.server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        self.dropped.append(name)
        return make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)

    def migrated(self, label: str) -> str:
        url = self.empty(label)
        engine = make_engine(url, for_migrations=True)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        return url

    def clone(self, source_url: str, label: str) -> str:
        """A copy of `source_url` (no process may be writing to it)."""
        if self.kind == "sqlite":
            url = self.empty(label)
            source = sqlite3.connect(make_url(source_url).database)
            target = sqlite3.connect(make_url(url).database)
            try:
                source.backup(target)  # consistent even with a WAL file next to the database
            finally:
                source.close()
                target.close()
            return url
        url = self.empty(label)
        src, dst = make_url(source_url).database, make_url(url).database
        with self.server.begin() as conn:  # the same DDL (keys and foreign keys), then the rows
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for name in ["alembic_version", *(table.name for table in t.metadata.sorted_tables)]:
                ddl = conn.execute(text(f"SHOW CREATE TABLE `{src}`.`{name}`")).one()[1]
                conn.execute(text(f"USE `{dst}`"))
                conn.execute(text(ddl))
                conn.execute(text(f"INSERT INTO `{dst}`.`{name}` SELECT * FROM `{src}`.`{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        return url

    def close(self) -> None:
        if self.server is None:
            return
        with self.server.begin() as conn:
            for name in self.dropped:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.server.dispose()


class RunCounter:
    """Counts the `execucao` rows of a step without taking any lock (the engines of lib/db begin
    every transaction with BEGIN IMMEDIATE on SQLite, which would stall the step being watched)."""

    def __init__(self, url: str):
        parsed = make_url(url)
        self.sqlite = sqlite3.connect(parsed.database, isolation_level=None) if backend(url) == "sqlite" else None
        self.engine = None if self.sqlite else create_engine(url, isolation_level="AUTOCOMMIT")

    def __call__(self, step: str) -> int:
        if self.sqlite is not None:
            return int(self.sqlite.execute("SELECT COUNT(*) FROM execucao WHERE etapa = ?", (step,)).fetchone()[0])
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM execucao WHERE etapa = :step"),
                                    {"step": step}).scalar_one())

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        else:
            self.engine.dispose()


def snapshot_sandbox(sb, path: Path) -> Path:
    """The sandbox's whole state in its own state-file format (`Sandbox(estado=path)` loads it)."""
    return sb.snapshot(path)


def sandbox_from(path: Path, **options):
    """A sandbox that starts from a state file and does not write it back (trials share the file)."""
    # persistence costs an fsync per write, and a trial's state is thrown away
    return fast_sandbox(estado=path, persistir=False, **options)


def copy_file(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
