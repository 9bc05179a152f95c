"""make demo: the sandbox + steps 00 → 04 on a fresh SQLite database, then what FieldControl holds.

Runs the numbered scripts exactly as a user does (subprocesses, configuration by environment),
against the local simulators started in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import Sandbox  # noqa: E402

DEMO_DIR = ROOT / "data" / "demo"
PROJETOS = 60
FC_RPS = 10.0  # the real FieldControl allows 1/s; 10/s keeps the demo near one minute
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


def run_steps(env: dict[str, str]) -> dict[str, int]:
    codes = {}
    for step, script, what in STEPS:
        title(f"passo {step}: {script} — {what}")
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / script)], cwd=DEMO_DIR, env=env)
        codes[step] = result.returncode
        print(f"-> código de saída {result.returncode} ({EXIT_MEANING.get(result.returncode, '?')}), "
              f"{time.monotonic() - started:.1f} s", flush=True)
        if result.returncode not in (0, 3):
            break
    return codes


def show_fieldcontrol(sb: Sandbox, env: dict[str, str]) -> None:
    title("o que o FieldControl (simulado) tem agora")
    customers = sb.fc_customers()
    kinds = {env["FIELDCONTROL_SERVICO_INSTALACAO"]: "instalação",
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
    for ticket in tickets[:2]:
        print(f"\n  exemplo: ticket {ticket.get('identifier')} — {ticket.get('subject')}")
        for line in (ticket.get("message") or "").splitlines()[:16]:
            print(f"    {line}")


def show_files() -> None:
    title("arquivos gerados")
    data = DEMO_DIR / "data"
    for name in ("01_projetos_isales.json", "02_projetos_tratados.json", "pendencias.json", "sync.db"):
        path = data / name
        if path.exists():
            print(f"  {path.relative_to(ROOT)}  ({path.stat().st_size / 1024:.0f} KiB)")
    print(f"  {(data / 'logs').relative_to(ROOT)}/  (logs de cada passo)")
    pendencias = data / "pendencias.json"
    if pendencias.exists():
        items = json.loads(pendencias.read_text(encoding="utf-8"))["pendencias"]
        print(f"\npendências abertas: {len(items)} (dados ruins de propósito no sandbox: CPF inválido, sem coordenadas…)")
        for item in items[:6]:
            print(f"  [{item['etapa']}] {item['chave']}: {item['motivo']}")


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    title("demonstração iSales → FieldControl com o sandbox (simuladores locais)")
    print(f"{PROJETOS} projetos gerados; o FieldControl real aceita 1 requisição por segundo por chave —")
    print(f"nesta demonstração o sandbox aceita {FC_RPS:.0f}/s para tudo caber em cerca de um minuto.")
    with Sandbox(projetos=PROJETOS, seed=7, fc_rps=FC_RPS, isales_rpm=6000, nominatim_rps=20.0) as sb:
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL") if key in os.environ}
        env.update(sb.env())
        env.update({"DATABASE_URL": f"sqlite:///{DEMO_DIR / 'data' / 'sync.db'}", "DATA_DIR": str(DEMO_DIR / "data"),
                    "GEOCODER_MIN_DELAY_SECONDS": "0.05", "FIELDCONTROL_RATE_PER_SECOND": str(FC_RPS)})
        print(f"sandbox em {sb.url}; banco e arquivos em {DEMO_DIR.relative_to(ROOT)}/")
        codes = run_steps(env)
        show_fieldcontrol(sb, env)
    show_files()
    failed = [step for step, code in codes.items() if code not in (0, 3)]
    title("fim da demonstração" + (f": o passo {failed[0]} falhou" if failed else ""))
    print("Rode de novo qualquer passo: nada é duplicado (o 04 não fará nenhuma escrita nova).")
    return 1 if failed or len(codes) < len(STEPS) else 0


if __name__ == "__main__":
    sys.exit(main())
