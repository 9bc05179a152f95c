"""The run of a step: settings, logging, the lock, the run row, the body, the pending export and the exit code.

`run_step` loads the settings a step needs (exit 2 before any network or database call when one
is missing), sets up logging, takes the step's lock, records the run in `execucao`, calls the
step's body, regenerates data/pendencias.json, sends the e-mail report, rewrites data/relatorio.html
(lib/panel.py) and maps the outcome to the exit code. The doors call it; the bodies receive a `RunContext`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy.engine import Engine

from lib import config, panel, report
from lib.config import S, Settings
from lib.db import migrate, pending, runs
from lib.db.engine import make_engine
from lib.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_TERMINATED,
    ConfigError,
    SyncError,
)
from lib.locks import DatabaseLock, RunLock
from lib.logs import install_excepthook, redact, setup_logging

log = logging.getLogger("sync")

OUTCOMES = ("criados", "adotados", "atualizados", "sem_alteracao", "ignorados", "pendentes", "falhas")
REPORTING_STEPS = ("01", "02", "03", "04")


@dataclass
class Summary:
    """Counts of a run per kind of record and outcome, plus warnings for the operator."""

    counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, kind: str, outcome: str, n: int = 1) -> None:
        self.counts[kind][outcome] += n

    def total(self, outcome: str) -> int:
        return sum(outcomes.get(outcome, 0) for outcomes in self.counts.values())

    def warn(self, message: str) -> None:
        self.warnings.append(redact(message))
        log.warning("%s", message)

    def as_dict(self) -> dict:
        data: dict[str, object] = {kind: dict(outcomes) for kind, outcomes in self.counts.items()}
        if self.warnings:
            data["avisos"] = list(self.warnings)
        data.update(self.extra)
        return data

    def render(self) -> str:
        columns = [name for name in OUTCOMES if self.total(name)] + sorted(
            {o for outcomes in self.counts.values() for o in outcomes} - set(OUTCOMES))
        if not self.counts:
            return "  (nada a processar)"
        width = max(len(kind) for kind in self.counts) + 2
        head = "  " + "tipo".ljust(width) + "".join(name.replace("_", " ").rjust(15) for name in columns)
        lines = [head]
        for kind in sorted(self.counts):
            lines.append("  " + kind.ljust(width) + "".join(str(self.counts[kind].get(name, 0)).rjust(15)
                                                         for name in columns))
        return "\n".join(lines)


# covariant: a RunContext[FetchSettings] is a RunContext[Settings] for the code shared by every step
Settings_co = TypeVar("Settings_co", bound=Settings, covariant=True)


class RunContext(Generic[Settings_co]):
    """What a step's body receives.

    `settings` has the type the door asked for (`RunContext[FetchSettings]`: `settings.isales` is
    there). `engine` is the database of the run; a step run without one (`needs_db=False`: 00, the
    dry run of 04) asks `has_database` first, every other step just uses `ctx.engine`.
    """

    def __init__(self, step: str, settings: Settings_co, args: argparse.Namespace, summary: Summary, *,
                 engine: Engine | None = None, run_id: int | None = None) -> None:
        self.step = step
        self.settings = settings
        self.args = args
        self.summary = summary
        self._engine = engine
        self.run_id = run_id

    @property
    def has_database(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError(f"a etapa {self.step} foi executada sem banco de dados (needs_db=False)")
        return self._engine

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


Body = Callable[[RunContext[S]], None]


class Terminated(KeyboardInterrupt):
    """SIGTERM (cron's timeout, systemd, a container platform) stops the run as Ctrl-C does."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[dict[str, bool]]:
    """While the body runs (`state["body"]`), SIGTERM raises Terminated; afterwards (summary, run
    row, lock release) it is only noted, so the closing work is never cut short."""
    state = {"body": False, "received": False}

    def handler(signum: int, frame: object) -> None:
        state["received"] = True
        if state["body"]:
            state["body"] = False  # a second SIGTERM during the closing work does not interrupt it
            raise Terminated()
        log.warning("sinal de término (SIGTERM) recebido: a execução termina o registro e sai")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield state
        return
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_step(step: str, args: argparse.Namespace, body: Body[S], settings: type[S], *, needs_db: bool = True) -> int:
    """Run one step with the settings of type `settings` and return its exit code (see lib.cli.EXIT_CODES_HELP).

    After the body: the exit code (3 when the step has open pending items), data/pendencias.json,
    the e-mail report (lib/report.py; its failure is only a warning), then the run row.
    """
    install_excepthook()
    verbose = getattr(args, "verbose", False)
    setup_logging(step, None, verbose=verbose)
    try:
        loaded = config.load_for(settings)
    except ConfigError as exc:
        log.error("%s", exc.message)
        return exc.exit_code
    setup_logging(step, loaded.data_dir, verbose=verbose)
    try:
        with sigterm_as_interrupt() as signals, RunLock(loaded.data_dir, step):
            return _run_locked(step, loaded, args, body, needs_db, signals)
    except SyncError as exc:  # the lock is held by another run
        log.error("%s", exc.message)
        return exc.exit_code
    except OSError as exc:  # DATA_DIR is a file, read-only, full…: no traceback, the reason in pt-BR
        log.error("não foi possível usar a pasta de dados: %s: %s; confira se DATA_DIR=%s é uma pasta "
                  "gravável com espaço livre", exc.filename or loaded.data_dir, exc.strerror or exc,
                  loaded.data_dir)
        return EXIT_CONFIG


def _run_locked(step: str, settings: S, args: argparse.Namespace, body: Body[S], needs_db: bool,
                signals: dict[str, bool]) -> int:
    engine: Engine | None = None
    run_id: int | None = None
    db_lock: DatabaseLock | None = None
    if needs_db:
        try:
            engine = make_engine(settings.database_url)
            migrate.require_current(engine)
            db_lock = DatabaseLock(engine, step)
            _take(db_lock)
            run_id = runs.start(engine, step)
        except SyncError as exc:
            if db_lock is not None:
                db_lock.release()
            log.error("%s", exc.message)
            return exc.exit_code
    try:
        return _run(step, settings, args, body, engine, run_id, signals)
    finally:
        if db_lock is not None:
            db_lock.release()


def _take(db_lock: DatabaseLock) -> None:
    """The database lock of the step; a database that cannot be reached is an exit 75/2, not a traceback."""
    try:
        db_lock.acquire()
    except (SyncError, OSError):
        raise
    except Exception as exc:
        raise migrate.database_unavailable(exc) from None


def _run(step: str, settings: S, args: argparse.Namespace, body: Body[S], engine: Engine | None,
         run_id: int | None, signals: dict[str, bool]) -> int:
    ctx = RunContext(step, settings, args, Summary(), engine=engine, run_id=run_id)
    log.info("etapa %s iniciada%s", step, f" (execução #{ctx.run_id})" if ctx.run_id else "")
    message = None
    try:
        signals["body"] = True
        if signals["received"]:  # stopped before the body began: nothing to do, close as stopped
            raise Terminated()
        body(ctx)
        code = EXIT_OK
    except SyncError as exc:
        message = exc.message
        log.error("%s", message)
        code = exc.exit_code
    except Terminated:
        message = "interrompido pelo sistema (SIGTERM): o que foi feito fica feito"
        log.error("%s", message)
        code = EXIT_TERMINATED
    except KeyboardInterrupt:
        message = "interrompido pelo usuário"
        log.error("%s", message)
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug: keep the traceback in the log, redacted
        message = f"erro inesperado: {type(exc).__name__}: {exc}"
        log.exception("erro inesperado na etapa %s", step)
        code = EXIT_FAILED
    finally:
        signals["body"] = False
    if engine is not None and run_id is not None:
        code = _settle(ctx, code)
        _report(ctx, code)
        code = _record(ctx, run_id, code, message)
        _panel(ctx)
    if ctx.summary.counts:
        log.info("resumo da etapa %s:\n%s", step, ctx.summary.render())
    for warning in ctx.summary.warnings:
        log.info("aviso: %s", warning)
    log.info("etapa %s terminou com código %s", step, code)
    return code


def _settle(ctx: RunContext[Settings], code: int) -> int:
    """The final exit code (3 with open pending items) and data/pendencias.json."""
    try:
        with ctx.engine.connect() as conn:
            open_items = pending.count_open(conn, ctx.step)
            this_run = pending.count_open(conn, ctx.step, run_id=ctx.run_id) if ctx.run_id else open_items
        ctx.summary.extra["pendencias_abertas"] = open_items
        if code == EXIT_OK and (open_items or ctx.summary.total("pendentes") or ctx.summary.total("falhas")):
            code = EXIT_PENDING
        path = pending.export(ctx.engine, ctx.data_dir, ctx.run_id)
        if open_items:
            log.warning("etapa %s: %s; lista em %s", ctx.step, describe_open(open_items, this_run), path)
    except SyncError as exc:
        log.error("%s", exc.message)
        code = code if code != EXIT_OK else exc.exit_code
    return code


def describe_open(open_items: int, this_run: int) -> str:
    """'2 pendência(s) abertas: 1 desta execução, 1 ainda aberta de execuções anteriores (não tentada agora)'."""
    parts = []
    if this_run:
        parts.append(f"{this_run} desta execução")
    if open_items - this_run:
        parts.append(f"{open_items - this_run} ainda aberta(s) de execuções anteriores (não tentada(s) agora)")
    return f"{open_items} pendência(s) abertas: " + ", ".join(parts)


def _report(ctx: RunContext[Settings], code: int) -> None:
    """Send the e-mail report; whatever happens, the run's outcome stays as it is."""
    if ctx.step not in REPORTING_STEPS:
        return
    try:
        report.after_run(ctx, code)
    except Exception as exc:
        ctx.summary.warn(f"falha ao gerar o relatório por e-mail: {type(exc).__name__}: {exc}")


def _panel(ctx: RunContext[Settings]) -> None:
    """Rewrite data/relatorio.html (after the run row is closed, so it shows this run); a failure is
    only a warning: the page is a view, never part of the run's outcome."""
    if ctx.step in REPORTING_STEPS:
        panel.refresh(ctx.engine, ctx.data_dir)


def _record(ctx: RunContext[Settings], run_id: int, code: int, message: str | None) -> int:
    """Close the run row with its exit code and counts."""
    try:
        runs.finish(ctx.engine, run_id, code, ctx.summary.as_dict(), message)
    except Exception as exc:
        log.error("não foi possível registrar o fim da execução: %s: %s", type(exc).__name__, redact(exc))
        code = code if code != EXIT_OK else EXIT_FAILED
    return code
