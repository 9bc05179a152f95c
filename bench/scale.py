"""The scale run (`python -m bench --escala`): the pipeline 00→04 at 10,000 and at 50,000 projects,
and the figures of issue 14's table as ratios: FieldControl calls per new project, the first load of
1,000 projects at 1 req/s, the peak RSS of every step at each size, step 03 against an `executemany`
(SQLite, and MariaDB with --mysql), and 04's time over its floor at the largest size."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from bench import report as rpt
from bench.benchmark import PACER_MARGIN, REAL_FC_RATE, Options, run_benchmark

SIZES = (10_000, 50_000)
SCALE_FC_RPS = 75.0  # 04 spends ~8 ms of CPU a call (bench.rate, 2026-11-30): 14 ms between calls leaves slack
STEPS = ("01", "02", "03", "04")
RSS_GOAL_MB = 300
FIRST_LOAD = 1_000  # the "first load of 1,000 projects at 1 req/s"


def options(projetos: int, *, fc_rps: float, seed: int, mysql: str | None) -> Options:
    """One size of the scale run: no iSales latency (01 is measured for memory, not for its floor),
    a fast geocoder, and no edit phase nor look-up measure (those belong to `make bench`)."""
    return Options(projetos=projetos, seed=seed, fc_rps=fc_rps, latencia_isales_ms=0.0, workers=8, geo_rps=1000.0,
                   mysql=mysql, edicoes=0, consultas_novos=0)


def run_scale(sizes: tuple[int, ...], *, fc_rps: float, seed: int, mysql: str | None,
              echo: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    result: dict[str, Any] = {
        "formato": 1, "tipo": "escala", "gerado_em": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "maquina": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sistema": platform.platform(terse=True)},
        "parametros": {"tamanhos": list(sizes), "fc_rps": fc_rps, "seed": seed, "mysql": bool(mysql)},
        "execucoes": {}}
    for size in sizes:
        echo(f"\n== escala: {size} projetos")
        run = run_benchmark(options(size, fc_rps=fc_rps, seed=seed, mysql=mysql), echo=echo)
        result["execucoes"][str(size)] = run
        if run.get("erro"):
            break
    result["figuras"] = figures(result)
    result["duracao_total_s"] = round(time.monotonic() - started, 1)
    return result


def figures(scale: dict[str, Any]) -> dict[str, Any]:
    """Issue 14's figures out of the runs (None where a run did not get that far)."""
    runs = {int(size): run for size, run in scale["execucoes"].items()}
    largest = runs[max(runs)] if runs else {}
    smallest = runs[min(runs)] if runs else {}
    send = (largest.get("razoes") or {}).get("envio_04") or {}
    per_project = ((smallest.get("razoes") or {}).get("envio_04") or {})
    sent_share = None
    first = smallest.get("primeira_execucao") or {}
    if first.get("04") and smallest.get("parametros", {}).get("projetos"):
        sent_share = first["04"]["itens"] / smallest["parametros"]["projetos"]
    calls = per_project.get("chamadas_por_projeto_novo")
    writes = per_project.get("escritas_por_projeto_novo")
    load_s = round(FIRST_LOAD * sent_share * calls * PACER_MARGIN / REAL_FC_RATE) if calls and sent_share else None
    rss = {str(size): {step: (run.get("primeira_execucao") or {}).get(step, {}).get("rss_max_mb") for step in STEPS}
           for size, run in sorted(runs.items())}
    worst = {size: max((v for v in steps.values() if v is not None), default=None) for size, steps in rss.items()}
    sizes = sorted(runs)
    growth = None
    if len(sizes) > 1:
        low, high = rss[str(sizes[0])], rss[str(sizes[-1])]
        growth = {step: round(high[step] / low[step], 2) for step in STEPS if high.get(step) and low.get(step)}
    db = largest.get("banco_03") or {}
    step04 = (largest.get("primeira_execucao") or {}).get("04") or {}
    return {
        "chamadas_por_projeto_novo": calls, "escritas_por_projeto_novo": writes,
        "consultas_por_projeto_novo": round(calls - writes, 2) if calls is not None and writes is not None else None,
        "carga_inicial_1000_a_1_req_s": load_s, "enviados_por_projeto": round(sent_share, 3) if sent_share else None,
        "rss_max_mb": rss, "rss_pior_mb": worst, "rss_crescimento": growth, "rss_meta_mb": RSS_GOAL_MB,
        "etapa_03": {kind: {"projetos_por_s": db[kind]["projetos_por_s"], "razao_executemany": db[kind]["razao"]}
                     for kind in ("sqlite", "mysql") if kind in db},
        "envio_04": {"projetos": max(runs) if runs else None, "razao": send.get("razao"), "tempo_s": send.get("tempo_s"),
                     "piso_s": send.get("piso_s"), "chamadas": send.get("chamadas"),
                     "cpu_04_s": step04.get("cpu_s"), "cpu_sandbox_s": step04.get("cpu_sandbox_s")},
    }


def render(scale: dict[str, Any]) -> str:
    num, f = rpt.num, scale.get("figuras") or {}
    p = scale["parametros"]
    lines = ["", "== escala (issue 14): " + " e ".join(num(n) for n in p["tamanhos"]) + " projetos, FieldControl a "
             f"{num(p['fc_rps'], 0)} req/s, {scale['maquina']['cpus']} CPUs, Python {scale['maquina']['python']}"]
    for size, run in scale["execucoes"].items():
        m = run.get("maquina") or {}
        lines.append(f"  {num(int(size))} projetos: {rpt.duration(run.get('duracao_total_s'))}, carga média "
                     f"{num(m.get('carga_no_inicio'), 1)} no início, {num(m.get('carga_no_fim'), 1)} no fim"
                     + (f" — ERRO: {run['erro'][:200]}" if run.get("erro") else ""))
    rows = [["chamadas ao FieldControl por projeto novo (carga inicial)",
             f"{num(f.get('chamadas_por_projeto_novo'), 2)} = {num(f.get('escritas_por_projeto_novo'), 2)} escritas + "
             f"{num(f.get('consultas_por_projeto_novo'), 2)}", "escritas + ≤ 0,2"],
            [f"carga inicial de {num(FIRST_LOAD)} projetos a 1 req/s (projeção, {num(f.get('enviados_por_projeto'), 3)} "
             "enviados por projeto)", rpt.duration(f.get("carga_inicial_1000_a_1_req_s")), "≈ 50 min"]]
    for size, steps in (f.get("rss_max_mb") or {}).items():
        rows.append([f"pico de RSS a {num(int(size))} projetos: 01 / 02 / 03 / 04",
                     " / ".join(num(steps[s], 0) for s in STEPS) + " MB", f"≤ {RSS_GOAL_MB} MB"])
    if f.get("rss_crescimento"):
        rows.append(["crescimento do pico do menor ao maior: 01 / 02 / 03 / 04",
                     " / ".join(num(f["rss_crescimento"].get(s), 2) + "×" for s in STEPS), "estável (≈ 1×)"])
    for kind, name in (("sqlite", "SQLite"), ("mysql", "MariaDB")):
        d = (f.get("etapa_03") or {}).get(kind)
        if d:
            rows.append([f"03 no {name} ({num(max(int(s) for s in scale['execucoes']))} projetos)",
                         f"{num(d['projetos_por_s'])} projetos/s, {num(d['razao_executemany'], 2)}× o executemany",
                         "≥ 3.000/s, ≤ 3×" if kind == "sqlite" else "≤ 3×"])
    e = f.get("envio_04") or {}
    rows.append([f"04 de ponta a ponta com {num(e.get('projetos'))} projetos: tempo ÷ piso",
                 f"{num(e.get('razao'), 2)} ({num(e.get('tempo_s'))} s ÷ {num(e.get('piso_s'))} s; CPU do 04 "
                 f"{num(e.get('cpu_04_s'))} s, do sandbox {num(e.get('cpu_sandbox_s'))} s)", "≤ 1,06 (mínimo ≈ 1,05)"])
    lines += ["", *rpt.text_table(["número", "medido", "meta"], rows)]
    lines.append(f"\nduração total: {rpt.duration(scale.get('duracao_total_s'))}")
    return "\n".join(lines)
