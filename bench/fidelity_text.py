"""The fidelity report on the terminal (pt-BR): rounds, comparisons, differences, intended differences
under documented rules, the expected vs found status history, and the pending projects."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.report import num

KIND_NAMES = {"instalacao": "instalação", "aumento": "aumento", "cancelamento": "cancelamento"}


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{num(n)} de {KIND_NAMES.get(kind, kind)}" for kind, n in sorted(counts.items())) or "nenhuma"


def render(result: dict[str, Any], limit: int = 25) -> str:
    p = result["parametros"]
    lines = ["", "== fidelidade iSales ↔ banco local ↔ FieldControl",
             f"{num(p['projetos'])} projetos, {p['rodadas']} rodada(s) de edições, semente {p['seed']}, "
             f"banco {p.get('banco', 'sqlite')}; a cada rodada: ciclos normais 01 → 02 → 03 → 04 (renovação "
             "contínua, orçamento padrão) até cobrir todos os cards ativos"]
    for rnd in result.get("rodadas", []):
        edits = ", ".join(f"{n} {kind}" for kind, n in sorted(rnd["edicoes"].items())) or "carga inicial (00→04)"
        codes = ", ".join(f"{step}={code}" for step, code in rnd["codigos"].items())
        cycles = f"{rnd.get('ciclos', 1)} ciclo(s); " if rnd["rodada"] else ""
        lines.append(f"  rodada {rnd['rodada']}: {edits}; {cycles}códigos de saída {codes}")
    if result.get("erro"):
        lines += ["", f"ERRO: {result['erro']}"]
        return "\n".join(lines)
    rec = result["reconciliacao"]
    lines += ["", "comparações (cada uma: um valor esperado contra o encontrado)"]
    lines += [f"  {area}: {num(n)}" for area, n in sorted(rec["comparacoes"].items())]
    coords = result.get("coordenadas") or {}
    lines.append(f"  coordenadas conferidas contra o link do iSales: {num(coords.get('conferidas_pelo_link', 0))}; "
                 f"de link curto ou geocodificador (só banco ↔ FieldControl): {num(coords.get('so_banco_fieldcontrol', 0))}")
    fc = result.get("fieldcontrol") or {}
    lines.append("  no FieldControl: " + ", ".join(f"{num(n)} {what}" for what, n in sorted(fc.items())))
    hist = result.get("historico") or {}
    lines += ["", "histórico de status (os_status_historico) para os movimentos feitos",
              f"  linhas esperadas: {num(hist.get('linhas_esperadas', 0))}; encontradas: "
              f"{num(hist.get('linhas_encontradas', 0))}",
              f"  OS esperadas pela regra de cancelamento: {_kinds(hist.get('tickets_esperados') or {})}",
              f"  OS enviadas segundo o histórico: {_kinds(hist.get('tickets_enviados') or {})}"]
    lines += ["", f"DIFERENÇAS: {num(rec['diferencas'])} (esperado 0)"]
    for item in rec["lista_diferencas"][:limit]:
        lines.append(f"  [{item['area']}] {item['registro']}: {item['campo']}: esperado {item['esperado']}, "
                     f"encontrado {item['encontrado']}")
    if rec["diferencas"] > limit:
        lines.append(f"  … e mais {num(rec['diferencas'] - limit)} (lista completa no JSON)")
    if rec["intencionais"]:
        lines += ["", "diferenças intencionais (regras documentadas; não contam)"]
        for item in rec["intencionais"]:
            lines.append(f"  {num(item['casos'])}× {item['regra']} — ex.: {item['exemplo']}")
    pending = result.get("pendencias") or []
    projects = result.get("projetos") or {}
    lines += ["", f"projetos com pendência aberta (não contam como diferença; confira os motivos — o sandbox "
                  f"tem dados ruins de propósito): {num(len(pending))} item(ns), "
                  f"{num(projects.get('com_pendencia', 0))} projeto(s)"]
    by_step = Counter(item["etapa"] for item in pending)
    lines.append("  por etapa: " + (", ".join(f"{step}: {n}" for step, n in sorted(by_step.items())) or "nenhuma"))
    for item in pending[:limit]:
        lines.append(f"  [{item['etapa']}] {item['chave']}: {item['motivo'][:160]}")
    if len(pending) > limit:
        lines.append(f"  … e mais {num(len(pending) - limit)}")
    return "\n".join(lines)
