"""The benchmark's report: the pt-BR table printed on the terminal, its Markdown twin for the README,
and the JSON files under bench/results/ (timestamped, plus latest.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lib.jsonfiles import dumps, write_atomic
from lib.logs import human_duration

RESULTS = Path(__file__).resolve().parent / "results"  # recorded results (in git), with --registrar
UNRECORDED = RESULTS / "local"  # every other run: git ignores this folder, the working tree stays clean


def output_folder(chosen: Path | None, record: bool) -> Path:
    """Where a run's results go: --saida, else bench/results with --registrar, else bench/results/local."""
    return chosen if chosen is not None else (RESULTS if record else UNRECORDED)
API_NAMES = {"isales": "iSales", "fieldcontrol": "FieldControl", "nominatim": "Nominatim", "google": "Google",
             "shortener": "links curtos"}


def duration(seconds: float | None) -> str:
    return "—" if seconds is None else human_duration(seconds)


def num(value: Any, places: int = 1) -> str:
    """Numbers the pt-BR way: 1.234,5."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")
    text = f"{value:,.{places}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def _calls(step: dict[str, Any]) -> str:
    per_api = step.get("chamadas_por_api") or {}
    return ", ".join(f"{num(n)} {API_NAMES.get(api, api)}" for api, n in per_api.items()) or "—"


def _items(step: dict[str, Any]) -> str:
    if step.get("itens") is None:
        return "—"
    return f"{num(step['itens'])} {step.get('itens_o_que', '')}".strip()


def _heading(report: dict[str, Any]) -> list[str]:
    p, m = report["parametros"], report["maquina"]
    return [f"{num(p['projetos'])} projetos (semente {p['seed']}), banco {p.get('banco', 'sqlite')}, "
            f"{m['cpus']} CPUs, Python {m['python']}",
            f"sandbox: latência do iSales {num(p['latencia_isales_ms'], 0)} ms ({p['workers']} workers), "
            + (f"só as etapas 01→{p['ate']}, " if p.get("ate", "04") != "04" else
               f"FieldControl {num(p['fc_rps'], 0)} req/s (o real aceita 1 req/s), ")
            + f"geocodificador {num(p['geo_rps'], 0)} req/s (o Nominatim real: 1 req/s)"]


def _step_rows(steps: dict[str, Any]) -> list[list[str]]:
    return [[step, num(s["tempo_s"]), num(s["cpu_s"]), num(s["rss_max_mb"], 0), str(s["codigo"]), _calls(s),
             _items(s), num(s.get("itens_por_s"))] for step, s in steps.items()]


STEP_HEAD = ["etapa", "tempo (s)", "CPU (s)", "RSS máx (MB)", "código", "chamadas", "itens", "itens/s"]


def text_table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(head))]
    lines += ["  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    return lines


def _ratio_lines(report: dict[str, Any]) -> list[str]:
    r, p = report.get("razoes") or {}, report["parametros"]
    lines = []
    if "busca_01" in r:
        b = r["busca_01"]
        if b.get("limite_isales_por_minuto") and b.get("piso", "").startswith("(chamadas − limite)"):
            lines.append(f"01 busca: {num(b['tempo_s'])} s ÷ {num(b['piso_s'])} s (({num(b['chamadas'])} chamadas − "
                         f"{num(b['limite_isales_por_minuto'])}) ÷ {num(b['limite_isales_por_minuto'])} por minuto, "
                         f"o limite do iSales) = {num(b['razao'], 2)}")
        else:
            lines.append(f"01 busca: {num(b['tempo_s'])} s ÷ {num(b['piso_s'])} s ({num(b['chamadas'])} chamadas × "
                         f"{num(p['latencia_isales_ms'], 0)} ms ÷ {p['workers']} workers) = {num(b['razao'], 2)}")
    if "coordenadas_02" in r:
        c = r["coordenadas_02"]
        lines.append(f"02 coordenadas: {num(c['tempo_s'])} s ÷ {num(c['piso_s'])} s ({num(c['chamadas_geocodificador'])} "
                     f"consultas ao geocodificador ÷ {num(p['geo_rps'], 0)} req/s) = {num(c['razao'], 2)}; "
                     f"{num(c['chamadas_links'])} requisições a links curtos")
    if "envio_04" in r:
        e = r["envio_04"]
        lines.append(f"04 envio: {num(e['tempo_s'])} s ÷ {num(e['piso_s'])} s ({num(e['chamadas'])} chamadas ÷ "
                     f"{num(p['fc_rps'], 0)} req/s) = {num(e['razao'], 2)} (mínimo ≈ 1,05: o ritmo tem 5 % de folga)")
        lines.append(f"chamadas ao FieldControl por projeto novo: {num(e['chamadas_por_projeto_novo'], 2)} "
                     f"(escritas: {num(e['escritas_por_projeto_novo'], 2)})")
    answers = r.get("respostas_429") or {}
    lines.append("respostas 429 recebidas: " + ", ".join(f"{API_NAMES.get(k, k)} {num(v)}" for k, v in answers.items()))
    return lines


def _second_lines(report: dict[str, Any]) -> list[str]:
    s = report.get("segunda_execucao_resumo")
    if not s:
        return []
    motivos = ", ".join(f"{k}: {v}" for k, v in sorted((s.get("motivos_01") or {}).items())) or "nenhum"
    return [f"escritas no FieldControl: {num(s['escritas_fieldcontrol'])} (esperado 0); "
            f"chamadas ao FieldControl no total: {num(s['chamadas_fieldcontrol'])}, das quais "
            f"{num(s.get('chamadas_situacao_em_campo', 0))} para ler a situação em campo (ordens alteradas desde a "
            "última leitura, 100 por página, e as atividades de cada ordem alterada da integração)",
            f"consultas ao geocodificador: {num(s['chamadas_geocodificador'])} (esperado 0); "
            f"links curtos: {num(s['chamadas_links'])}",
            f"chamadas de detalhes ao iSales: {num(s['chamadas_detalhes_isales'])} "
            f"({num(s['projetos_detalhados'])} projetos; motivos: {motivos}) — {s['explicacao_detalhes']}"]


def _db_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    b = report.get("banco_03") or {}
    for kind, name in (("sqlite", "SQLite"), ("mysql", "MariaDB/MySQL")):
        if kind not in b:
            continue
        m = b[kind]
        e, x = m["etapa_03"], m["executemany"]
        lines.append(f"03 no {name}: {num(e['projetos'])} projetos gravados em {num(e['gravacao_s'], 2)} s = "
                     f"{num(m['projetos_por_s'])} projetos/s ({num(m['projetos_por_s_com_leitura'])}/s com a leitura do "
                     f"arquivo); executemany do SQLAlchemy das mesmas {num(x['linhas'])} linhas: {num(x['tempo_s'], 2)} s "
                     f"→ o 03 leva {num(m['razao'], 2)}× o executemany")
    raw = b.get("executemany_cru_sqlite")
    if raw:
        lines.append(f"referência: executemany cru do driver sqlite3, {num(raw['linhas'])} linhas em "
                     f"{num(raw['tempo_s'], 3)} s = {num(raw['linhas_por_s'])} linhas/s")
    first = report.get("primeira_execucao") or {}
    rss = [f"{step} {num(first[step]['rss_max_mb'], 0)} MB" for step in ("01", "02", "03", "04") if step in first]
    if rss:
        lines.append("pico de memória (RSS): " + ", ".join(rss))
    return lines


def _lookup_lines(report: dict[str, Any]) -> list[str]:
    c = report.get("consultas_clientes")
    if not c:
        return []
    lines = [f"conta do FieldControl com {num(c['conta_existente'])} clientes ({num(c['feitos_a_mao'])} deles "
             "são clientes desta carga digitados à mão, metade com máscara):"]
    for r in c["rodadas"]:
        lines.append(f"  {r['rodada']}: {num(r['clientes_novos'])} clientes novos → {num(r['procuras_por_documento'])} "
                     f"procuras por documento, {num(r['paginas_da_conta'])} páginas da conta, "
                     f"{num(r['releituras_por_id'])} releituras por id = {num(r['consultas_por_cliente_novo'], 3)} "
                     f"consultas por cliente novo; {num(r['chamadas'])} chamadas ({num(r['escritas'])} escritas) para "
                     f"{num(r['projetos_enviados'])} projetos")
    return lines


def _projection_lines(report: dict[str, Any]) -> list[str]:
    proj = (report.get("razoes") or {}).get("projecao_1_req_s")
    if not proj:
        return []
    p = report["parametros"]
    return [f"carga inicial destes {num(p['projetos'])} projetos: ≈ {duration(proj['envio_inicial_s'])} "
            f"só no envio ao FieldControl (04); cada projeto novo depois: ≈ {num(proj['por_projeto_novo_s'])} s"]


def _cycles(value: Any, minutes: int) -> str:
    if value is None:
        return "—"
    shown = num(value) if isinstance(value, float) and not value.is_integer() else str(int(value))
    return f"{shown} ({duration(value * minutes * 60)})"


def _delay_lines(report: dict[str, Any]) -> list[str]:
    d = report.get("atraso_edicoes")
    if not d:
        return []
    minutes = d["minutos_por_ciclo"]
    rotation = d.get("execucoes_por_rodizio")
    lines = [f"ISALES_REFRESH_BUDGET={num(d['orcamento'])} chamadas por execução = {num(d['cards_por_execucao'])} cards; "
             f"{num(d['cards_de_interesse'])} cards de interesse"
             + (f" → todos renovados a cada {rotation} execução(ões) ({duration(rotation * minutes * 60)} no cron de "
                f"{minutes} min)" if rotation else " → renovação desligada"),
             f"atraso em ciclos do cron (1 = o primeiro ciclo 01→04 depois da edição; entre parênteses, a "
             f"{minutes} min por ciclo); {num(d['edicoes'])} edições:"]
    for kind, label in list(d["tipos"].items()) + [("todas", "todas")]:
        for side, name in (("banco", "banco local"), ("fieldcontrol", "FieldControl")):
            a = d["atrasos"][kind][side]
            missing = f"; {a['nao_chegaram']} não chegaram" if a["nao_chegaram"] else ""
            lines.append(f"  {label} → {name}: mediana {_cycles(a['mediana'], minutes)}, p95 "
                         f"{_cycles(a['p95'], minutes)}, máximo {_cycles(a['max'], minutes)} (n={a['n']}{missing})")
    calls = d["chamadas_isales_por_execucao"]
    median = calls["mediana"]
    median = int(median) if isinstance(median, float) and median.is_integer() else median
    lines.append(f"chamadas ao iSales por execução do 01 (listagem + detalhes): mediana {num(median)}, "
                 f"máximo {num(calls['max'])} em {len(d['ciclos'])} ciclos")
    for row in d["ciclos"]:
        motivos = ", ".join(f"{k}: {v}" for k, v in sorted(row["motivos_01"].items())) or "nenhum"
        lines.append(f"  ciclo {row['ciclo']}: {num(row['chamadas_isales'])} chamadas ao iSales ({motivos}); "
                     f"{num(row['chamadas_fieldcontrol'])} ao FieldControl; chegaram {row['no_banco']} ao banco, "
                     f"{row['no_fieldcontrol']} ao FieldControl; {num(row['tempo_s'])} s")
    return lines


DELAY_TITLE = "edição no iSales → chegada (renovação contínua)"


def render(report: dict[str, Any]) -> str:
    """The terminal table (pt-BR)."""
    lines = ["", "== benchmark iSales → FieldControl", *_heading(report)]
    for key, title in (("primeira_execucao", "primeira execução (carga inicial)"),
                       ("segunda_execucao", "segunda execução, sem mudanças no iSales")):
        if report.get(key):
            lines += ["", title, *text_table(STEP_HEAD, _step_rows(report[key]))]
    for title, part in (("razões ao piso (tempo medido ÷ o mínimo que a API impõe)", _ratio_lines(report)),
                        ("segunda execução sem mudanças", _second_lines(report)),
                        ("banco local", _db_lines(report)),
                        ("consultas de clientes no FieldControl (04)", _lookup_lines(report)),
                        ("projeção no FieldControl real (1 req/s)", _projection_lines(report)),
                        (DELAY_TITLE, _delay_lines(report))):
        if part:
            lines += ["", title, *("  " + line for line in part)]
    first = report.get("primeira_execucao") or {}
    routes = [f"  {step} {API_NAMES.get(api, api)} {route}: {num(n)}"
              for step, s in first.items() for api, per_route in (s.get("chamadas") or {}).items()
              for route, n in per_route.items()]
    if routes:
        lines += ["", "chamadas por rota (primeira execução)", *routes]
    if report.get("erro"):
        lines += ["", f"ERRO: {report['erro']}"]
    lines.append(f"\nduração total: {duration(report.get('duracao_total_s'))}")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The same figures as a Markdown block for the README."""
    lines = [f"Medido em {report['gerado_em'][:10]}: " + "; ".join(_heading(report)) + ".", ""]
    for key, title in (("primeira_execucao", "primeira execução"), ("segunda_execucao", "segunda, sem mudanças")):
        steps = report.get(key) or {}
        if not steps:
            continue
        lines += [f"**{title}**", "", "| " + " | ".join(STEP_HEAD) + " |", "|" + "---|" * len(STEP_HEAD)]
        lines += ["| " + " | ".join(row) + " |" for row in _step_rows(steps)]
        lines.append("")
    for part in (_ratio_lines(report), _second_lines(report), _db_lines(report), _lookup_lines(report),
                 _projection_lines(report)):
        lines += [f"- {line}" for line in part]
    delay_part = _delay_lines(report)
    if delay_part:
        lines += ["", f"**{DELAY_TITLE}**", ""]
        lines += [f"- {line.strip()}" if not line.startswith("  ") else f"  - {line.strip()}" for line in delay_part]
    return "\n".join(lines)


def save(report: dict[str, Any], folder: Path = RESULTS, prefix: str = "bench") -> Path:
    """<prefix>-<data>-<projetos>.json and latest.json (others: <prefix>-latest.json) in `folder`,
    written atomically; returns the first path."""
    stamp = report["gerado_em"].replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    params = report["parametros"]
    size = params["projetos"] if "projetos" in params else "-".join(str(n) for n in params["tamanhos"])
    path = Path(folder) / f"{prefix}-{stamp}-{size}.json"
    text = dumps(report) + "\n"
    write_atomic(path, text)
    write_atomic(Path(folder) / ("latest.json" if prefix == "bench" else f"{prefix}-latest.json"), text)
    return path
