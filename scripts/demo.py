"""make demo: the sandbox + steps 00 → 04 on a fresh SQLite database, then what FieldControl holds.
make sandbox (`--sandbox`): the same sandbox, from the demo's saved state when there is one, serving
until Ctrl-C, with the .env the steps need written in the project folder.

Runs the numbered scripts exactly as a user does (subprocesses, configuration by environment),
against the local simulators started in this process. Nothing leaves the machine: every generated
link leads to the sandbox (tests/e2e/test_demo.py runs the demo with only the loopback interface).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import Sandbox  # noqa: E402

DEMO_DIR = ROOT / "data" / "demo"
STATE_FILE = "sandbox.json"  # the sandbox's state, kept after the demo for make sandbox
PROJETOS = 60
FC_RPS = 10.0  # the real FieldControl allows 1/s; 10/s keeps the demo near one minute
SANDBOX_OPTIONS: dict[str, Any] = {"projetos": PROJETOS, "seed": 7, "fc_rps": FC_RPS, "isales_rpm": 6000, "nominatim_rps": 20.0}
SANDBOX_PORT = 8765  # make sandbox listens here when it is free (any free port otherwise)
ENV_MARK = "# gerado por make sandbox (scripts/demo.py): reescrito a cada make sandbox"
STEPS = [
    ("00", "00_schema_banco.py", "cria o banco SQLite"),
    ("01", "01_get_projetos_isales.py", "busca os projetos no iSales"),
    ("02", "02_tratar_dados_clientes.py", "trata, valida e encontra coordenadas"),
    ("03", "03_sync_dados_local.py", "grava no banco local com histórico"),
    ("04", "04_sync_field_api.py", "cria clientes, locais e OS no FieldControl"),
]
EXIT_MEANING = {0: "ok", 3: "ok, com pendências", 75: "falha temporária", 2: "configuração", 1: "falhou"}


def title(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def step_env(sb: Sandbox, demo_dir: Path) -> dict[str, str]:
    """What the steps need to run against `sb` with the demo's database and files (absolute paths)."""
    env = dict(sb.env())
    env.update({"DATABASE_URL": f"sqlite:///{demo_dir / 'data' / 'sync.db'}", "DATA_DIR": str(demo_dir / "data"),
                "GEOCODER_MIN_DELAY_SECONDS": "0.05", "FIELDCONTROL_RATE_PER_SECOND": str(FC_RPS)})
    return env


def env_file(chosen: Path | None = None) -> Path:
    """Where make sandbox writes the variables: .env, unless one exists that it did not write."""
    if chosen is not None:
        return chosen
    path = ROOT / ".env"
    if path.exists() and not path.read_text(encoding="utf-8").startswith(ENV_MARK):
        return ROOT / ".env.sandbox"  # never overwrite the operator's own configuration
    return path


def by_hand_prefix() -> str:
    """What goes before `.venv/bin/python 0X_….py` so that the step reads make sandbox's file."""
    path = env_file()
    return "" if path.name == ".env" else f"ENV_FILE={path.name} "


def run_steps(env: dict[str, str], demo_dir: Path) -> dict[str, int]:
    codes = {}
    for step, script, what in STEPS:
        title(f"passo {step}: {script} — {what}")
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / script)], cwd=demo_dir, env=env)
        codes[step] = result.returncode
        print(f"-> código de saída {result.returncode} ({EXIT_MEANING.get(result.returncode, '?')}), "
              f"{time.monotonic() - started:.1f} s", flush=True)
        if result.returncode not in (0, 3):
            break
    return codes


def show_fieldcontrol(sb: Sandbox, env: dict[str, str]) -> None:
    title("o que o FieldControl (simulado) tem agora")
    customers = sb.fc_customers()
    kinds: dict[str | None, str] = {env["FIELDCONTROL_SERVICO_INSTALACAO"]: "instalação",
             env["FIELDCONTROL_SERVICO_AUMENTO"]: "aumento de sistema",
             env["FIELDCONTROL_SERVICO_CANCELAMENTO"]: "cancelamento"}
    tickets = [ticket for ticket in sb.fc_tickets()
               if str((ticket.get("external") or {}).get("id") or "").startswith("isales:")]
    by_kind = Counter(kinds.get((ticket.get("service") or {}).get("id"), "outro") for ticket in tickets)
    documents = Counter(customer.get("documentNumber") for customer in customers)
    print(f"clientes:  {len(customers)} (inclui os cadastrados à mão antes; documentos repetidos: "
          f"{sum(1 for n in documents.values() if n > 1)})")
    print(f"locais:    {len(sb.fc_locations())}")
    print(f"telefones: {len(sb.fc_phones())}")
    print(f"e-mails:   {len(sb.fc_emails())}")
    print(f"tickets criados pela integração: {len(tickets)} — "
          + ", ".join(f"{n} de {kind}" for kind, n in sorted(by_kind.items())))
    if tickets:  # one ticket whole, as the field team reads it in FieldControl
        ticket = max(tickets, key=lambda t: len(t.get("message") or ""))
        print(f"\n  exemplo completo: ticket {ticket.get('identifier')} — {ticket.get('subject')}")
        for line in (ticket.get("message") or "").splitlines():
            print(f"    {line}")


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def show_files(demo_dir: Path) -> None:
    title("arquivos gerados")
    data = demo_dir / "data"
    for name in ("01_projetos_isales.json", "02_projetos_tratados.json", "pendencias.json", "sync.db",
                 "relatorio.html"):
        path = data / name
        if path.exists():
            print(f"  {shown(path)}  ({path.stat().st_size / 1024:.0f} KiB)")
    print(f"  {shown(data / 'logs')}/  (logs de cada passo)")
    pendencias = data / "pendencias.json"
    if pendencias.exists():
        items = json.loads(pendencias.read_text(encoding="utf-8"))["pendencias"]
        print(f"\npendências abertas: {len(items)} (dados ruins de propósito no sandbox: CPF inválido, sem coordenadas…)")
        for item in items[:6]:
            print(f"  [{item['etapa']}] {item['chave']}: {item['motivo']}")


def show_how_to_continue(demo_dir: Path) -> None:
    title("como continuar à mão")
    prefix = by_hand_prefix()
    print(f"O sandbox parou junto com a demonstração; o estado dele ficou em {shown(demo_dir / STATE_FILE)}.")
    if demo_dir != DEMO_DIR:
        print(f"(make sandbox usa a pasta {shown(DEMO_DIR)}; esta demonstração rodou em {shown(demo_dir)})")
    print("  1. num terminal, na pasta do projeto:")
    print("       make sandbox")
    print(f"     sobe o sandbox com esse estado e grava {env_file().name} com o que os passos precisam")
    print("  2. em outro terminal, na pasta do projeto, rode qualquer passo, por exemplo:")
    print(f"       {prefix}.venv/bin/python 04_sync_field_api.py")
    print("     nada é duplicado: o 04 não fará nenhuma escrita nova")
    print(f"  3. abra {shown(demo_dir / 'data' / 'relatorio.html')} no navegador")


def demo(demo_dir: Path) -> int:
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    title("demonstração iSales → FieldControl com o sandbox (simuladores locais)")
    print(f"{PROJETOS} projetos gerados; o FieldControl real aceita 1 requisição por segundo por chave —")
    print(f"nesta demonstração o sandbox aceita {FC_RPS:.0f}/s para tudo caber em cerca de um minuto.")
    with Sandbox(**SANDBOX_OPTIONS, estado=demo_dir / STATE_FILE) as sb:
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL") if key in os.environ}
        env.update(step_env(sb, demo_dir))
        print(f"sandbox em {sb.url}; banco e arquivos em {shown(demo_dir)}/")
        codes = run_steps(env, demo_dir)
        show_fieldcontrol(sb, env)
    show_files(demo_dir)
    failed = [step for step, code in codes.items() if code not in (0, 3)]
    title("fim da demonstração" + (f": o passo {failed[0]} falhou" if failed else ""))
    show_how_to_continue(demo_dir)
    return 1 if failed or len(codes) < len(STEPS) else 0


def serve(demo_dir: Path, chosen_env: Path | None = None) -> int:
    """make sandbox: serve until Ctrl-C, from the demo's state when it exists; write the .env."""
    state = demo_dir / STATE_FILE
    loaded = state.exists()
    demo_dir.mkdir(parents=True, exist_ok=True)
    try:
        sb = Sandbox(**SANDBOX_OPTIONS, estado=state, port=SANDBOX_PORT).start()
    except OSError:  # the usual port is taken: any free one (the .env below follows it)
        sb = Sandbox(**SANDBOX_OPTIONS, estado=state, port=0).start()
    path = env_file(chosen_env)
    lines = [ENV_MARK] + [f"{name}={value}" for name, value in step_env(sb, demo_dir).items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prefix = by_hand_prefix() if chosen_env is None else f"ENV_FILE={path} "
    print(f"sandbox em {sb.url} — " + (f"estado da demonstração ({shown(state)})" if loaded else
          f"{PROJETOS} projetos novos (estado salvo em {shown(state)})"))
    print(f"{shown(path)} gravado: banco {shown(demo_dir / 'data' / 'sync.db')}, arquivos em {shown(demo_dir / 'data')}")
    print("Em outro terminal, na pasta do projeto:")
    if not (demo_dir / "data" / "sync.db").exists():
        print(f"  {prefix}.venv/bin/python 00_schema_banco.py      (o banco ainda não existe)")
    print(f"  {prefix}.venv/bin/python 01_get_projetos_isales.py   (e 02, 03, 04)")
    try:  # the Ctrl-C line inside: a Ctrl-C right after it is read (a test, a quick user) still ends cleanly
        print("Ctrl-C para parar.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
    print("sandbox encerrado.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.py", description="make demo / make sandbox")
    parser.add_argument("--sandbox", action="store_true",
                        help="só o sandbox (make sandbox): atende até Ctrl-C e grava o .env dos passos")
    parser.add_argument("--pasta", type=Path, default=DEMO_DIR,
                        help="pasta da demonstração (padrão: data/demo)")
    parser.add_argument("--arquivo-env", type=Path, metavar="ARQUIVO",
                        help="com --sandbox: onde gravar as variáveis (padrão: .env, ou .env.sandbox se já "
                             "existe um .env que não foi gravado aqui)")
    args = parser.parse_args(argv)
    folder = args.pasta.resolve()
    return serve(folder, args.arquivo_env) if args.sandbox else demo(folder)


if __name__ == "__main__":
    sys.exit(main())
