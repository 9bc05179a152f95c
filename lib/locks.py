"""Run locks: one run of a step at a time, a lock left by a dead process is taken over.

The lock is an flock(2) on data/locks/<step>.lock: the kernel releases it when its process dies
(even by kill -9), so a stale lock cannot block the next cron run. The file only carries who holds it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from datetime import datetime
from pathlib import Path

from lib.errors import LockHeld

log = logging.getLogger(__name__)


class RunLock:
    """Context manager holding data/locks/<name>.lock for the duration of a run."""

    def __init__(self, data_dir: Path, name: str):
        self.path = Path(data_dir) / "locks" / f"{name}.lock"
        self.name = name
        self._handle = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "processo desconhecido"
            handle.close()
            raise LockHeld(
                f"outra execução da etapa {self.name} está em andamento ({holder}); "
                "esta execução não fez nada: tente novamente quando ela terminar"
            ) from None
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            log.warning("trava da etapa %s deixada por uma execução interrompida (%s): assumida", self.name, previous)
        handle.seek(0)
        handle.truncate()
        handle.write(f"processo {os.getpid()} em {socket.gethostname()}, desde {datetime.now():%Y-%m-%d %H:%M:%S}\n")
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

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
