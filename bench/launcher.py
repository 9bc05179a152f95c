"""Starts the benchmark's steps from a small process, so that the peak RSS wait4 reports is the step's own,
not the sandbox host's. Reads one JSON order per line ({"argv", "cwd", "env", "log", "timeout"}) and
answers one JSON line ({"code", "cpu", "maxrss_kb"}). Standard library only."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child is sent SIGTERM when its parent dies (Linux), so a benchmark stopped
    with Ctrl-C or kill leaves no launcher nor step running on behind it."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


def run(order: dict) -> dict:
    with open(order["log"], "wb") as out:
        proc = subprocess.Popen(order["argv"], cwd=order["cwd"], env=order["env"], stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + order["timeout"] if order.get("timeout") else None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if deadline is not None and time.monotonic() > deadline:
                proc.kill()
                deadline = None
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"code": proc.returncode, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
