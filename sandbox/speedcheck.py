"""Measures how many simple GETs per second the sandbox serves (server in its own process),
with requests.Session clients (what the project uses) and with bare http.client connections.

Run: `python -m sandbox.speedcheck [--segundos 5] [--threads 8]`.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

PATH = "/isales/api/clientes?api_token=token-sandbox&cliente_id=4707"
HEADERS = {"Accept": "application/json"}


def _requests_worker(base: str) -> Callable[[float], int]:
    def run(deadline: float) -> int:
        done = 0
        with requests.Session() as session:
            while time.monotonic() < deadline:
                session.get(base + PATH, headers=HEADERS).raise_for_status()
                done += 1
        return done
    return run


def _httpclient_worker(base: str) -> Callable[[float], int]:
    parts = urlsplit(base)

    def run(deadline: float) -> int:
        done = 0
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        while time.monotonic() < deadline:
            conn.request("GET", PATH, headers=HEADERS)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            done += 1
        conn.close()
        return done
    return run


def measure(worker: Callable[[float], int], threads: int, seconds: float) -> float:
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def target(i: int) -> None:
        counts[i] = worker(deadline)

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description="Mede requisições/s de um GET simples no sandbox.")
    parser.add_argument("--segundos", type=float, default=5.0, help="duração de cada medição (padrão: 5)")
    parser.add_argument("--threads", type=int, default=8, help="clientes simultâneos (padrão: 8)")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--projetos", "50", "--isales-rpm", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        base = ""
        for line in server.stdout:
            if line.startswith("ISALES_API_URL="):
                base = line.split("=", 1)[1].strip().removesuffix("/isales/api")
                break
        for name, factory in (("requests.Session", _requests_worker), ("http.client", _httpclient_worker)):
            rate = measure(factory(base), args.threads, args.segundos)
            print(f"GET /isales/api/clientes, {args.threads} threads com {name}: {rate:.0f} req/s")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
