"""make demo with the network limited to loopback (a new network namespace, `unshare -n`, with only
`lo` up): the demo must finish as usual, no step may try a host outside the machine, and it must
end by saying exactly how to continue by hand. Needs root (or user namespaces): skipped otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LOOPBACK_ONLY = ("unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh")


def _loopback_only_works() -> str | None:
    """None when a loopback-only namespace can be made here, else why not (pt-BR)."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare ou ip não instalados"
    probe = subprocess.run([*LOOPBACK_ONLY, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"sem permissão para criar um namespace de rede (unshare -n): {probe.stderr.strip()[:200]}"
    return None


def test_demo_runs_with_only_loopback_and_says_how_to_continue(tmp_path):
    reason = _loopback_only_works()
    if reason:
        pytest.skip(f"demonstração só com loopback não testada aqui: {reason} (a CI roda como root)")
    folder = tmp_path / "demo"
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL") if key in os.environ}
    result = subprocess.run([*LOOPBACK_ONLY, sys.executable, str(ROOT / "scripts" / "demo.py"), "--pasta", str(folder)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.findall(r"-> código de saída (\d+)", output)[:5] in (["0", "0", "0", "0", "0"], ["0", "0", "3", "0", "0"])
    logs = "".join(path.read_text(encoding="utf-8") for path in (folder / "data" / "logs").glob("*.log"))
    for symptom in ("não foi possível seguir o link", "não respondeu nesta execução", "inalcançável",
                    "Network is unreachable", "Name or service not known", "Temporary failure in name resolution"):
        assert symptom not in logs and symptom not in output, symptom
    # one example ticket shown whole, down to its last line
    assert "exemplo completo: ticket 1#" in output and "Enviado pela integração iSales → FieldControl" in output
    # how to go on by hand, exactly
    tail = output[output.index("== como continuar à mão"):]
    assert "make sandbox" in tail and ".venv/bin/python 04_sync_field_api.py" in tail
    assert f"{folder / 'data' / 'relatorio.html'}" in tail and (folder / "sandbox.json").is_file()
    # and it is so: make sandbox from the demo's state, then 04 by hand writes nothing new
    from tests.conftest import run_script

    served = SandboxProcess(folder, tmp_path / "sandbox.env")
    try:
        assert "estado da demonstração" in "".join(served.lines)
        again = run_script("04", env={"ENV_FILE": str(tmp_path / "sandbox.env")}, cwd=tmp_path)
    finally:
        served.stop()
    assert again.returncode in (0, 3), again.stderr[-3000:]
    assert ": criado" not in again.stderr and ": atualizado" not in again.stderr, again.stderr[-3000:]


class SandboxProcess:
    """scripts/demo.py --sandbox (what make sandbox runs) in the background, until stop()."""

    def __init__(self, folder, env_path):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py"), "--sandbox", "--pasta", str(folder),
             "--arquivo-env", str(env_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        for line in self.process.stdout:  # the banner ends with the Ctrl-C line, once the .env is written
            self.lines.append(line)
            if line.startswith("Ctrl-C para parar"):
                break
        assert self.lines and self.lines[-1].startswith("Ctrl-C"), "".join(self.lines)

    def stop(self) -> str:
        self.process.send_signal(2)  # SIGINT, as Ctrl-C
        rest, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, rest
        return "".join(self.lines) + rest


def test_make_sandbox_serves_and_writes_the_env_the_steps_need(tmp_path):
    from tests.conftest import run_script

    folder, env_path = tmp_path / "demo", tmp_path / "sandbox.env"
    served = SandboxProcess(folder, env_path)
    try:
        banner = "".join(served.lines)
        assert f"{env_path} gravado" in banner and "00_schema_banco.py" in banner  # no database yet
        text = env_path.read_text(encoding="utf-8")
        assert text.startswith("# gerado por make sandbox") and "ISALES_API_TOKEN=" in text
        for step in ("00", "01"):  # by hand, reading only that file (ENV_FILE), as the banner says
            result = run_script(step, env={"ENV_FILE": str(env_path)}, cwd=tmp_path)
            assert result.returncode == 0, result.stderr[-3000:]
        assert (folder / "data" / "01_projetos_isales.json").is_file()
    finally:
        output = served.stop()
    assert "sandbox encerrado" in output
    # a second start keeps what the first one saved (the demo's state works the same way)
    again = SandboxProcess(folder, env_path)
    try:
        assert "estado da demonstração" in "".join(again.lines)
    finally:
        again.stop()
