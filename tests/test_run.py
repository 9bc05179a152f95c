"""lib/run: the run of a step — the context a body receives and the exit code of the run."""

from __future__ import annotations

import argparse

import pytest

from lib import config
from lib.config import Settings
from lib.errors import EXIT_FAILED, EXIT_OK
from lib.run import RunContext, Summary, run_step


def _context(tmp_path, **kwargs) -> RunContext:
    settings = config.load(environ={"DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    return RunContext("00", settings, argparse.Namespace(), Summary(), **kwargs)


def test_a_context_without_database_says_so_instead_of_handing_out_none(tmp_path):
    ctx = _context(tmp_path)
    assert not ctx.has_database
    with pytest.raises(RuntimeError, match="etapa 00 foi executada sem banco de dados"):
        ctx.engine  # noqa: B018


def test_a_context_with_database_hands_out_its_engine(tmp_path, engine):
    ctx = _context(tmp_path, engine=engine, run_id=7)
    assert ctx.has_database and ctx.engine is engine and ctx.run_id == 7


def test_a_step_without_database_runs_its_body_and_never_creates_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    seen: list[RunContext] = []
    assert run_step("00", argparse.Namespace(verbose=False), seen.append, Settings, needs_db=False) == EXIT_OK
    assert len(seen) == 1 and not seen[0].has_database
    assert not (tmp_path / "x.db").exists()


def test_a_bug_in_the_body_is_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))

    def body(ctx: RunContext) -> None:
        raise ZeroDivisionError

    assert run_step("00", argparse.Namespace(verbose=False), body, Settings, needs_db=False) == EXIT_FAILED
