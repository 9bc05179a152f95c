"""lib/locks: one run of a step at a time; a lock left by a killed process is taken over."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from lib.errors import EXIT_TEMPFAIL, LockHeld
from lib.locks import RunLock

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from lib.locks import RunLock
lock = RunLock({data!r}, "04")
lock.acquire()
print("pronto", flush=True)
time.sleep(60)
"""


def test_second_run_refuses_while_first_holds(tmp_path):
    with RunLock(tmp_path, "04"):
        with pytest.raises(LockHeld, match="em andamento") as info:
            RunLock(tmp_path, "04").acquire()
        assert info.value.exit_code == EXIT_TEMPFAIL
        RunLock(tmp_path, "03").acquire()  # other steps have their own lock


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    from tests.conftest import ROOT

    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), data=str(tmp_path))],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "pronto"
    with pytest.raises(LockHeld, match=f"processo {child.pid}"):
        RunLock(tmp_path, "04").acquire()
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.05)
    lock = RunLock(tmp_path, "04")
    lock.acquire()
    lock.release()


# --------------------------------------------------------------------------- per database

DB_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from lib.db import runs
from lib.db.engine import make_engine
from lib.locks import DatabaseLock
engine = make_engine({url!r})
lock = DatabaseLock(engine, "04")
lock.acquire()
runs.start(engine, "04")
print("pronto", flush=True)
time.sleep(120)
"""


def _acquire_eventually(engine, step: str = "04", limit: float = 30.0):
    """The lock once its dead holder's connection is gone (the server notices a closed socket soon)."""
    from lib.locks import DatabaseLock

    deadline = time.monotonic() + limit
    while True:
        lock = DatabaseLock(engine, step)
        try:
            lock.acquire()
            return lock
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_database_lock_is_one_per_database_and_step_across_working_directories(migrated_db, tmp_path):
    """Two runs with different DATA_DIRs (their file locks do not meet) on one database: the second
    is refused by the database lock; another step is not."""
    from lib.db.engine import make_engine
    from lib.locks import DatabaseLock

    first_engine, second_engine = make_engine(migrated_db), make_engine(migrated_db)
    try:
        with RunLock(tmp_path / "a", "04"), RunLock(tmp_path / "b", "04"), DatabaseLock(first_engine, "04"):
            with pytest.raises(LockHeld, match="outra execução da etapa 04 está em andamento neste banco de dados"):
                DatabaseLock(second_engine, "04").acquire()
            with DatabaseLock(second_engine, "03"):
                pass
        with DatabaseLock(second_engine, "04"):  # released: taken at once
            pass
    finally:
        first_engine.dispose()
        second_engine.dispose()


def test_database_lock_of_a_killed_process_is_released_and_names_its_holder(migrated_db):
    from lib.db.engine import make_engine
    from tests.conftest import ROOT

    child = subprocess.Popen([sys.executable, "-c", DB_HOLDER.format(root=str(ROOT), url=migrated_db)],
                             stdout=subprocess.PIPE, text=True)
    engine = make_engine(migrated_db)
    try:
        assert child.stdout.readline().strip() == "pronto"
        from lib.locks import DatabaseLock

        with pytest.raises(LockHeld, match=f"processo {child.pid} em "):
            DatabaseLock(engine, "04").acquire()
        child.send_signal(signal.SIGKILL)
        child.wait()
        _acquire_eventually(engine).release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        engine.dispose()


def test_mysql_lock_name_fits_the_server_limit():
    from lib.locks import MYSQL_LOCK_NAME_MAX, mysql_lock_name

    assert mysql_lock_name("sync", "04") == "isales-sync:sync:04"
    long_one, other = mysql_lock_name("b" * 64, "04"), mysql_lock_name("c" * 64, "04")
    assert len(long_one) <= MYSQL_LOCK_NAME_MAX and long_one != other and long_one.endswith(":04")
