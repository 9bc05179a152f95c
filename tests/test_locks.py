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
