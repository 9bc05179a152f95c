"""FieldControl look-ups per new customer in step 04: a first load (1,000 new customers, an account
that already has 5,000) and a steady run (5 new), against the sandbox, counted from its call log.
`python -m bench.lookups --help`."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pipeline import step_env  # noqa: E402
from bench.step03 import fresh_database, synthetic_02, synthetic_documents, time_step03  # noqa: E402
from lib import config  # noqa: E402
from lib.db import runs  # noqa: E402
from lib.db.engine import make_engine  # noqa: E402
from lib.run import RunContext, Summary  # noqa: E402
from lib.steps import push  # noqa: E402

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _count(calls: list[dict]) -> dict[str, int]:
    listed = [c for c in calls if c["method"] == "GET" and c["route"] == "/customers"]
    by_doc = sum("document_number" in c["path"] for c in listed)
    return {"procuras_por_documento": by_doc, "paginas_da_conta": len(listed) - by_doc,
            "releituras_por_id": sum(c["method"] == "GET" and c["route"] == "/customers/{id}" for c in calls),
            "escritas": sum(c["method"] in WRITES for c in calls), "chamadas": len(calls)}


def _run04(url: str, env: dict[str, str]) -> Summary:
    engine = make_engine(url)
    try:
        settings = config.load_for(config.PushSettings, environ=env)
        ctx = RunContext(step="04", settings=settings,
                         args=argparse.Namespace(dry_run=False, ids=None, reprocessar_pendentes=False, verbose=False),
                         summary=Summary(), engine=engine, run_id=runs.start(engine, "04"))
        push.run(ctx)
        return ctx.summary
    finally:
        engine.dispose()


def _round(sb, url: str, env: dict[str, str], file_02: Path, workdir: Path, title: str) -> dict[str, Any]:
    time_step03(file_02, url, workdir)
    sb.reset_calls()
    summary = _run04(url, env)
    calls = [c for c in sb.calls("fieldcontrol") if c["route"] != "/services"]
    counted = _count(calls)
    new = summary.as_dict().get("cliente", {})
    novos = new.get("criados", 0) + new.get("adotados", 0)
    lookups = counted["procuras_por_documento"] + counted["paginas_da_conta"] + counted["releituras_por_id"]
    return {"rodada": title, "clientes_novos": novos, "clientes": new, **counted,
            "consultas_por_cliente_novo": round(lookups / novos, 3) if novos else None,
            "projetos_enviados": summary.as_dict().get("ticket_instalacao", {}).get("criados", 0)}


def measure(first: int = 1000, existing: int = 5000, steady: int = 5, hand_made: int = 50) -> dict[str, Any]:
    """First load of `first` new customers into an account with `existing` customers (of which
    `hand_made` are ours typed by hand, half of them masked), then a steady run of `steady` new."""
    from sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="bench-lookups-") as folder, \
            Sandbox(projetos=1, fc_rps=5000, persistir=False) as sb:
        workdir = Path(folder)
        synthetic_02(workdir / "02a.json", first)
        docs = synthetic_documents(first)
        for n in range(existing):
            if n < min(hand_made, len(docs)):
                doc = docs[n]
                sb.fc_add_customer(f"Cliente {n} (à mão)", doc if n % 2 else
                                   f"{doc[:3]}.{doc[3:6]}.{doc[6:9]}-{doc[9:]}")
            else:
                sb.fc_add_customer(f"Outro {n}", f"{10_000_000_000 + n:011d}")
        with fresh_database("sqlite", workdir, None) as url:
            env = step_env(sb, workdir, url, FIELDCONTROL_RATE_PER_SECOND="5000")
            result = [_round(sb, url, env, workdir / "02a.json", workdir, "carga inicial")]
            synthetic_02(workdir / "02b.json", first + steady)
            result.append(_round(sb, url, env, workdir / "02b.json", workdir, "execução seguinte"))
    return {"conta_existente": existing, "feitos_a_mao": hand_made, "rodadas": result}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lookups",
                                description="Consultas de clientes ao FieldControl por cliente novo (etapa 04).")
    p.add_argument("--novos", type=int, default=1000, help="clientes novos da carga inicial (padrão: %(default)s)")
    p.add_argument("--existentes", type=int, default=5000, help="clientes já na conta (padrão: %(default)s)")
    p.add_argument("--seguinte", type=int, default=5, help="clientes novos da execução seguinte (padrão: %(default)s)")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.novos, args.existentes, args.seguinte), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
