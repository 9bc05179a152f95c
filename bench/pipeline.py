"""Running the numbered scripts as a user does (subprocesses, configuration by environment) against
a sandbox started in this process, with wall time, CPU time and peak RSS of each run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.launcher import die_with_parent

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "00": "00_schema_banco.py",
    "01": "01_get_projetos_isales.py",
    "02": "02_tratar_dados_clientes.py",
    "03": "03_sync_dados_local.py",
    "04": "04_sync_field_api.py",
}
OK_CODES = (0, 3)  # 3: finished with pending items (the sandbox has bad data on purpose)
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass
class StepRun:
    """One run of a numbered script."""

    step: str
    args: tuple[str, ...]
    code: int
    wall: float  # seconds
    cpu: float  # user + system seconds of the process
    max_rss_mb: float
    log: Path

    def failed(self) -> bool:
        return self.code not in OK_CODES


@dataclass
class Pipeline:
    """The scripts of this checkout, run in `workdir` with exactly `env` (plus PATH, HOME, LANG).

    Steps are started by bench/launcher.py, a small process: a child forked from this one (which may
    hold the sandbox's 50,000 projects) would be charged this process's memory as its own peak.
    """

    workdir: Path
    env: dict[str, str]
    runs: list[StepRun] = field(default_factory=list)
    _launcher: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        (self.workdir / "saidas").mkdir(parents=True, exist_ok=True)

    def full_env(self) -> dict[str, str]:
        base = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
        base["PYTHONUNBUFFERED"] = "1"
        base.update(self.env)
        return base

    def _launch(self, order: dict) -> dict:
        if self._launcher is None or self._launcher.poll() is not None:
            self._launcher = subprocess.Popen([sys.executable, "-S", str(ROOT / "bench" / "launcher.py")],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                              preexec_fn=die_with_parent)
        assert self._launcher.stdin is not None and self._launcher.stdout is not None
        self._launcher.stdin.write(json.dumps(order) + "\n")
        self._launcher.stdin.flush()
        answer = self._launcher.stdout.readline()
        if not answer:
            raise RuntimeError("o processo que inicia as etapas do benchmark terminou sem responder")
        return json.loads(answer)

    def close(self) -> None:
        launcher, self._launcher = self._launcher, None
        if launcher is not None and launcher.stdin is not None:
            launcher.stdin.close()
            launcher.wait(timeout=10)

    def run(self, step: str, *args: str, timeout: float | None = None) -> StepRun:
        """Run one script to its end; its stdout and stderr go to a file under workdir/saidas."""
        log = self.workdir / "saidas" / f"{len(self.runs) + 1:02d}-etapa{step}.log"
        started = time.monotonic()
        answer = self._launch({"argv": [sys.executable, str(ROOT / SCRIPTS[step]), *args], "cwd": str(self.workdir),
                               "env": self.full_env(), "log": str(log), "timeout": timeout})
        result = StepRun(step, tuple(args), answer["code"], time.monotonic() - started, answer["cpu"],
                         answer["maxrss_kb"] / 1024, log)
        self.runs.append(result)
        return result


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a step's output (for an error message)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


Key = tuple[str, str, int]  # (system, "METHOD /route", status; 0 = connection dropped)


class CallCollector:
    """Every call the sandbox received, drained from its call log by a background thread (the log
    keeps only the last 200,000 entries; a run at 50,000 projects makes more) and counted."""

    def __init__(self, sandbox, interval: float = 1.0) -> None:
        self.log = sandbox.call_log
        self.interval = interval
        self.counts: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-calls", daemon=True)

    def __enter__(self) -> CallCollector:
        self.log.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._drain()

    def _drain(self) -> None:
        with self.log.lock:
            entries = list(self.log.entries)
            self.log.entries.clear()
        batch: Counter[Key] = Counter()
        for entry in entries:
            route = entry["route"] or entry["path"].split("?")[0]
            batch[(entry["system"], f"{entry['method']} {route}", entry["status"] or 0)] += 1
        with self._lock:
            self.counts.update(batch)

    def cut(self) -> Counter[Key]:
        """The calls since the previous cut."""
        self._drain()
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def by_system(counts: Counter[Key]) -> dict[str, dict[str, int]]:
    """{system: {"METHOD /route": n}} (all statuses)."""
    result: dict[str, Counter[str]] = {}
    for (system, route, _status), n in counts.items():
        result.setdefault(system, Counter())[route] += n
    return {system: dict(sorted(routes.items())) for system, routes in sorted(result.items())}


def total(counts: Counter[Key], system: str | None = None, *, methods: tuple[str, ...] = (),
          routes: tuple[str, ...] = (), status: int | None = None) -> int:
    return sum(n for (sys_, route, st), n in counts.items()
               if (system is None or sys_ == system)
               and (not methods or route.split(" ", 1)[0] in methods)
               and (not routes or route.split(" ", 1)[1] in routes)
               and (status is None or st == status))


def step_env(sb, workdir: Path, database_url: str | None, **overrides: object) -> dict[str, str]:
    """The environment of the scripts: the sandbox's .env lines, a data dir, a database (SQLite in
    workdir by default) and the given overrides (FIELDCONTROL_RATE_PER_SECOND, ...)."""
    env = dict(sb.env())
    env.update({
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'data' / 'sync.db'}",
        "DATA_DIR": str(workdir / "data"),
        "HTTP_TIMEOUT_CONEXAO": "5",
        "HTTP_TIMEOUT_LEITURA": "30",
    })
    env.update({key: str(value) for key, value in overrides.items()})
    return env
