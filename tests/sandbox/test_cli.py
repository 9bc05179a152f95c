"""`python -m sandbox serve` as a user runs it: .env lines on stdout, clean SIGTERM, clear errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from .test_control import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sandbox", "serve", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_serve_prints_env_serves_and_stops_on_sigterm():
    process = _serve("--port", "0", "--projetos", "20", "--fc-rps", "5", "--nominatim-rps", "2")
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in ENV_NAMES]
        env = dict(line.split("=", 1) for line in lines)
        assert list(env) == ENV_NAMES
        base = env["ISALES_API_URL"].removesuffix("/isales/api")
        assert env["FIELDCONTROL_RATE_PER_SECOND"] == "5" and env["GEOCODER_MIN_DELAY_SECONDS"] == "0.5"
        assert env["GOOGLE_GEOCODER_URL"] == f"{base}/google"
        response = requests.get(f"{env['ISALES_API_URL']}/funil-clientes", timeout=5,
                                params={"api_token": env["ISALES_API_TOKEN"], "funil_id": env["ISALES_FUNIL_ID"],
                                        "desde": env["ISALES_DESDE"]}, headers={"Accept": "application/json"})
        assert len(response.json()["funil_clientes"]) == 20
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "encerrado" in err


def test_help_is_in_portuguese():
    result = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--help"], cwd=ROOT, text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 0
    assert "porta" in result.stdout and "--cliente-inexistente" in result.stdout


def test_port_in_use_and_bad_state_file_are_clear_errors(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--port", str(port)], cwd=ROOT,
                                text=True, capture_output=True, timeout=30)
    assert result.returncode == 1 and "--port 0" in result.stderr and result.stdout == ""
    state = tmp_path / "estado.json"
    state.write_text("não é json", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--port", "0", "--estado", str(state)],
                            cwd=ROOT, text=True, capture_output=True, timeout=30)
    assert result.returncode == 2 and "estado" in result.stderr
