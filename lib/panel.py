"""data/relatorio.html: the state of the integration as one self-contained page, rewritten after every
run of steps 01–04 — last run of each step, open pending items with their age, what was done in
FieldControl in the last runs, tickets by kind and execution status, and a chart of the last runs.

The data about customers and tickets comes from lib/report.py (the e-mail report's readers and
sections), so the page and the e-mail show the same things under the same masking rules; the page is
written as it is rendered, the latest 04's rows read from the database as they go (a first load
creates tens of thousands: never all held). No external asset: inline
CSS and an inline SVG chart, so the page opens from the disk, offline, anywhere.
"""

from __future__ import annotations

import html
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection, Engine

import lib.db.schema as t
from lib import report
from lib.clock import db_now
from lib.db import pending
from lib.db.pending import STREAM_ROWS
from lib.jsonfiles import write_atomic
from lib.logs import human_duration, redact
from lib.status import FIELDCONTROL_ORIGIN, TASK_STATUS_LABELS, TICKET_KINDS, TICKET_TITLES

log = logging.getLogger(__name__)

FILE_PANEL = "relatorio.html"
STEPS = {"01": "busca no iSales", "02": "tratamento e coordenadas", "03": "banco local",
         "04": "envio ao FieldControl"}
CHART_RUNS = 30
RECENT_PUSH_RUNS = 5
EXIT_WORDS = {0: "ok", 1: "falhou", 2: "configuração", 3: "com pendências", 75: "falha temporária",
              130: "interrompido (Ctrl-C)", 143: "interrompido (SIGTERM)"}
ACTION_WORDS = {"customer": "clientes criados", "customer-put": "clientes atualizados", "location": "locais",
                "phone": "telefones", "email": "e-mails", "ticket": "OS criadas"}
CREATED_COLOR, PENDING_COLOR = "#2e7d32", "#c62828"


@dataclass
class RunRow:
    id: int
    step: str
    started: datetime
    finished: datetime | None
    code: int | None
    counts: dict

    def total(self, outcome: str) -> int:
        return sum(v.get(outcome, 0) for v in self.counts.values() if isinstance(v, dict))

    def outcomes(self) -> str:
        totals: Counter[str] = Counter()
        for kind_counts in self.counts.values():
            if isinstance(kind_counts, dict):
                totals.update({k: v for k, v in kind_counts.items() if isinstance(v, int)})
        return ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in totals.items() if n) or "nada a processar"


@dataclass
class PanelData:
    now: datetime
    last_runs: dict[str, RunRow] = field(default_factory=dict)
    chart: list[RunRow] = field(default_factory=list)
    push_runs: list[tuple[RunRow, Counter]] = field(default_factory=list)
    latest_push: int | None = None  # the run id of the latest 04 (its rows are read as the page is written)
    tickets: dict[str, Counter] = field(default_factory=dict)  # kind → execution status → count


def _run_row(row) -> RunRow:
    try:
        counts = json.loads(row.contagens) if row.contagens else {}
    except ValueError:
        counts = {}
    return RunRow(row.id, row.etapa, row.iniciada_em, row.terminada_em, row.codigo_saida,
                  counts if isinstance(counts, dict) else {})


def collect(engine: Engine) -> PanelData:
    """Everything the page shows, read from the database."""
    data = PanelData(now=db_now())
    e = t.execucao
    finished = e.c.terminada_em.is_not(None)
    with engine.connect() as conn:
        for step in STEPS:
            row = conn.execute(select(e).where(e.c.etapa == step, finished).order_by(e.c.id.desc()).limit(1)).first()
            if row is not None:
                data.last_runs[step] = _run_row(row)
        rows = conn.execute(select(e).where(e.c.etapa.in_(tuple(STEPS)), finished)
                            .order_by(e.c.id.desc()).limit(CHART_RUNS)).all()
        data.chart = [_run_row(row) for row in reversed(rows)]
        pushes = [_run_row(row) for row in conn.execute(
            select(e).where(e.c.etapa == "04", finished).order_by(e.c.id.desc()).limit(RECENT_PUSH_RUNS))]
        a = t.acao_field
        for run in pushes:
            done = conn.execute(select(a.c.tipo, func.count()).where(
                a.c.estado == t.CONCLUIDA, a.c.concluida_em >= run.started,
                a.c.concluida_em <= (run.finished or data.now)).group_by(a.c.tipo)).all()
            data.push_runs.append((run, Counter({tipo: n for tipo, n in done})))
        data.tickets = _tickets_by_status(conn)
    data.latest_push = pushes[0].id if pushes else None
    return data


def _tickets_by_status(conn) -> dict[str, Counter]:
    """Sent tickets per kind, per the latest FieldControl status of their tasks (when known)."""
    h, tf = t.os_status_historico, t.tarefa_field
    latest = {row.historico_id: row.status for row in conn.execute(
        select(tf.c.historico_id, tf.c.status).where(tf.c.historico_id.is_not(None))
        .order_by(tf.c.data_status, tf.c.id))}
    result: dict[str, Counter] = {kind: Counter() for kind in TICKET_KINDS}
    sent = and_(h.c.enviado_field.is_(True), h.c.ticket_tipo.is_not(None), h.c.origem != FIELDCONTROL_ORIGIN)
    for row in conn.execute(select(h.c.id, h.c.ticket_tipo).where(sent)):
        result.setdefault(row.ticket_tipo, Counter())[latest.get(row.id) or ""] += 1
    return result


# --------------------------------------------------------------------------- rendering

def _table(header: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> Iterator[str]:
    """The table's HTML a row at a time (the rows may be read from the database as they come)."""
    opening = "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
    for row in rows:
        yield opening + "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        opening = ""
    yield f'<p class="vazio">{html.escape(empty)}</p>' if opening else "</tbody></table>"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%d/%m/%Y %H:%M") + " UTC" if moment else "—"


def _age(now: datetime, since: str | None) -> str:
    if not since:
        return "—"
    moment = datetime.fromisoformat(since.replace("Z", "+00:00")).replace(tzinfo=None)
    return human_duration(max((now - moment).total_seconds(), 0))


def chart_svg(runs: list[RunRow]) -> str:
    """Created (green) and pending (red) per run, oldest on the left: two bars per run, each with its
    number on top. Square-root heights, so that one pending item still shows next to 60 created rows."""
    width, height, top, bottom, left = 640, 190, 26, 28, 10
    if not runs:
        return '<p class="vazio">nenhuma execução registrada ainda</p>'
    values = [(run.total("criados"), run.total("pendentes")) for run in runs]
    peak = max(max(pair) for pair in values) or 1
    slot = (width - left) / len(runs)
    bar = max(min(slot / 2 - 2, 14), 2)
    room = height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="grafico" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="criados e pendentes por execução">',
             f"<title>criados e pendentes nas últimas {len(runs)} execuções</title>",
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#888"/>']
    for i, (run, (created, pend)) in enumerate(zip(runs, values)):
        x = left + i * slot + (slot - 2 * bar) / 2
        for offset, value, color, word in ((0, created, CREATED_COLOR, "criados"),
                                           (bar, pend, PENDING_COLOR, "pendentes")):
            h = max(room * (value / peak) ** 0.5, 3) if value else 0
            y = height - bottom - h
            parts.append(f'<rect class="{word}" x="{x + offset:.0f}" y="{y:.0f}" width="{bar:.0f}" '
                         f'height="{h:.0f}" fill="{color}"><title>execução #{run.id} (etapa {run.step}): '
                         f'{value} {word}</title></rect>')
            if value:
                parts.append(f'<text x="{x + offset + bar / 2:.0f}" y="{y - 3:.0f}" text-anchor="middle" '
                             f'font-size="9">{value}</text>')
        parts.append(f'<text x="{x + bar:.0f}" y="{height - bottom + 12}" text-anchor="middle" font-size="9">'
                     f'{run.step}</text>')
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:70rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.vazio{color:#666;font-style:italic}
.legenda span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""


def render(data: PanelData, conn: Connection) -> Iterator[str]:
    """The page in pieces, each redacted; the latest 04's customers and tickets are read from `conn`
    as they are written (a first load has tens of thousands: never all held, issue 14 §2)."""
    for piece in _pieces(data, conn):
        yield redact(piece)


def _pieces(data: PanelData, conn: Connection) -> Iterator[str]:
    e = html.escape
    yield ('<!DOCTYPE html><html lang="pt-BR"><head><meta charset="utf-8">'
           f"<title>Integração iSales → FieldControl</title><style>{STYLE}</style></head><body>")
    yield f"<h1>Integração iSales → FieldControl</h1><p>Atualizado em {_when(data.now)}.</p>"
    yield "<h2>Última execução de cada etapa</h2>"
    rows = []
    for step, what in STEPS.items():
        run = data.last_runs.get(step)
        if run is None:
            rows.append([f"{step} — {what}", "nunca rodou", "", "", ""])
            continue
        rows.append([f"{step} — {what}", f"#{run.id}, {_when(run.finished)}",
                     f"{run.code} ({EXIT_WORDS.get(run.code, '?') if run.code is not None else '?'})", run.outcomes(),
                     str(run.counts.get("pendencias_abertas", 0))])
    yield from _table(["etapa", "execução", "código de saída", "contagens", "pendências abertas"], rows, "")
    # the open items, split as the e-mail splits them, each read twice (counted, then written)
    reviews = sum(1 for p in pending.iter_open_items(conn) if report.is_review(p))
    yield f"<h2>Pendências abertas: {sum(1 for p in pending.iter_open_items(conn) if not report.is_review(p))}</h2>"
    yield from _table(["etapa", "registro", "motivo", "há", "tentativas"],
                      ([p["etapa"], p["chave"], p["motivo"], _age(data.now, p["primeira_vez"]), p["tentativas"]]
                       for p in pending.iter_open_items(conn) if not report.is_review(p)), "nenhuma pendência aberta")
    if reviews:
        yield f"<h2>Revise no FieldControl: {reviews}</h2>"
        yield from _table(["projeto iSales", "o que revisar", "há"],
                          ([p["isales_id"] or "", p["motivo"], _age(data.now, p["primeira_vez"])]
                           for p in pending.iter_open_items(conn) if report.is_review(p)), "")
    yield "<h2>O que foi feito no FieldControl nas últimas execuções do 04</h2>"
    yield from _table(["execução", "quando", "código", *ACTION_WORDS.values()],
                      ([f"#{run.id}", _when(run.finished), run.code, *(done.get(k, 0) for k in ACTION_WORDS)]
                       for run, done in data.push_runs), "o passo 04 ainda não rodou")
    if data.latest_push is not None:
        for title, header, count, section_rows in report.push_sections(conn, data.latest_push):
            yield f"<h3>{e(title)} na execução #{data.latest_push}: {count}</h3>"
            yield from _table(header, section_rows, "nenhum")
    yield "<h2>OS enviadas por tipo e situação no FieldControl</h2>"
    statuses = sorted({s for counter in data.tickets.values() for s in counter}, key=lambda s: (s == "", s))
    yield from _table(["tipo", "total", *(TASK_STATUS_LABELS.get(s, s) if s else "situação desconhecida" for s in statuses)],
                      ([TICKET_TITLES.get(kind, kind), sum(counter.values()), *(counter.get(s, 0) for s in statuses)]
                       for kind, counter in data.tickets.items()), "")
    yield f"<h2>Criados e pendentes por execução (últimas {len(data.chart)})</h2>"
    yield (f'<p class="legenda"><span style="background:{CREATED_COLOR}"></span>criados'
           f'<span style="background:{PENDING_COLOR}"></span>pendentes (da própria execução); '
           "altura pela raiz quadrada; abaixo de cada par, a etapa</p>")
    yield chart_svg(data.chart)
    yield "</body></html>\n"


def write(engine: Engine, data_dir: Path) -> Path:
    """Rewrite data/relatorio.html from the database, written as it is rendered; returns its path."""
    path = Path(data_dir) / FILE_PANEL
    data = collect(engine)
    # stream_results: MySQL's driver would otherwise fetch a whole result before the first row
    with engine.connect().execution_options(stream_results=True, max_row_buffer=STREAM_ROWS) as conn:
        write_atomic(path, render(data, conn))
    return path


def refresh(engine: Engine, data_dir: Path) -> None:
    """`write` at the end of a step; a failure is only a warning: the page is a view, never part of
    a run's outcome."""
    try:
        path = write(engine, data_dir)
    except Exception as exc:
        log.warning("relatório %s não atualizado: %s: %s", FILE_PANEL, type(exc).__name__, redact(exc))
        return
    log.info("estado da integração em %s (abra no navegador)", path)
