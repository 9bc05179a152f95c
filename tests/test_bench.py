"""bench/ at a tiny size, so that it cannot rot: the benchmark and the fidelity check run as a user runs
them (`python -m bench`, `python bench/fidelity.py`), and the reconciliation finds a spoiled record.
Structure and correctness only: performance is reported by bench/, never asserted."""

from __future__ import annotations

import json
import random
import subprocess
import sys

from sqlalchemy import select, update

import lib.db.schema as t
from bench.fidelity_run import Options, run_fidelity
from bench.history import decide
from lib.db.engine import make_engine
from lib.steps.push import qualify
from tests.conftest import ROOT

TINY = ["--projetos", "15", "--seed", "7"]


def run_module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_benchmark_report(tmp_path):
    out = tmp_path / "resultados"
    proc = run_module("-m", "bench", *TINY, "--fc-rps", "200", "--latencia-isales-ms", "5", "--geo-rps", "200",
                      "--edicoes", "6", "--orcamento", "9", "--saida", str(out),
                      "--consultas-novos", "0")  # measured by test_customer_lookups_per_new_customer
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "razões ao piso" in proc.stdout and "segunda execução sem mudanças" in proc.stdout
    report = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert len(list(out.glob("bench-*-15.json"))) == 1
    first, second = report["primeira_execucao"], report["segunda_execucao"]
    assert list(first) == ["00", "01", "02", "03", "04"] and list(second) == ["01", "02", "03", "04"]
    for step in [*first.values(), *second.values()]:
        assert step["codigo"] in (0, 3) and step["tempo_s"] > 0 and step["rss_max_mb"] > 10
    isales = first["01"]["chamadas"]["isales"]
    detailed = first["01"]["itens"]
    assert detailed > 0 and isales["GET /clientes"] == isales["GET /propostas"] == detailed
    push = report["razoes"]["envio_04"]
    assert push["chamadas"] == sum(first["04"]["chamadas"]["fieldcontrol"].values()) > 0
    assert push["chamadas"] == first["04"]["requisicoes_segundo_o_04"]
    assert first["04"]["itens"] > 0 and push["chamadas_por_projeto_novo"] > 1
    assert report["razoes"]["busca_01"]["razao"] > 0
    again = report["segunda_execucao_resumo"]
    assert again["escritas_fieldcontrol"] == 0
    assert again["chamadas_situacao_em_campo"] == 1  # one listing of the orders changed since the last check
    assert again["chamadas_geocodificador"] == 0
    assert again["chamadas_detalhes_isales"] == 3 * again["projetos_detalhados"]
    db = report["banco_03"]["sqlite"]
    assert db["executemany"]["linhas"] == first["03"]["itens"] > 0  # the very rows step 03 wrote
    assert db["etapa_03"]["projetos"] == first["02"]["itens"] and db["razao"] > 0
    check_delay(report["atraso_edicoes"])
    assert "edição no iSales → chegada" in proc.stdout


def check_delay(delay: dict) -> None:
    """9 calls per run = 3 cards: a rotation of the cards of interest takes several cycles."""
    assert delay["orcamento"] == 9 and delay["cards_por_execucao"] == 3 and delay["edicoes"] == 6
    rotation = delay["execucoes_por_rodizio"]
    assert rotation == -(-delay["cards_de_interesse"] // 3) > 1
    listed, hidden = delay["atrasos"]["listagem"], delay["atrasos"]["detalhe"]
    for side in ("banco", "fieldcontrol"):
        assert listed[side]["n"] == hidden[side]["n"] == 3 and not listed[side]["nao_chegaram"]
        assert listed[side]["max"] == 1  # its listing row changed: the very next cycle
        assert 1 <= hidden[side]["max"] <= rotation and not hidden[side]["nao_chegaram"]
    for row in delay["ciclos"]:
        assert row["motivos_01"].get("renovacao", 0) <= 3  # the budget, never more
        assert row["chamadas_detalhes_isales"] == 3 * sum(row["motivos_01"].values())
    assert len(delay["ciclos"]) == max(item["fieldcontrol"] for item in delay["detalhe"])  # stops when all arrived


def test_delay_spread_is_median_p95_and_max():
    from bench.delay import spread

    assert spread(list(range(20, 0, -1))) == {"n": 20, "mediana": 10.5, "p95": 19, "max": 20}
    assert spread([3]) == {"n": 1, "mediana": 3, "p95": 3, "max": 3}
    assert spread([])["mediana"] is None


def test_fidelity_script_on_mysql(tmp_path, mysql_url):
    """As `make fidelidade` runs it, on MariaDB (the SQLite run is the in-process test below); two
    rounds take the cycle group instalação → cancelado → instalação."""
    out = tmp_path / "resultados"
    proc = run_module("bench/fidelity.py", *TINY, "--rodadas", "2", "--banco", mysql_url, "--saida", str(out))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "DIFERENÇAS: 0 (esperado 0)" in proc.stdout
    result = json.loads((out / "fidelidade-latest.json").read_text(encoding="utf-8"))
    check_clean(result, rounds=2)


def check_clean(result: dict, rounds: int) -> None:
    rec = result["reconciliacao"]
    assert rec["diferencas"] == 0, rec["lista_diferencas"][:20]
    assert [r["rodada"] for r in result["rodadas"]] == list(range(rounds + 1))
    assert all(r["edicoes"] for r in result["rodadas"][1:])
    for area in ("iSales ↔ banco", "banco ↔ FieldControl", "OS (tickets)", "histórico"):
        assert rec["comparacoes"][area] > 0, area
    hist = result["historico"]
    assert hist["linhas_esperadas"] == hist["linhas_encontradas"] > result["projetos"]["no_banco"]
    assert hist["tickets_esperados"] == hist["tickets_enviados"]
    assert sum(hist["tickets_enviados"].values()) == result["fieldcontrol"]["tickets"] > 0


def spoil(sb, env) -> None:
    """One wrong value in each place the reconciliation looks at."""
    engine = make_engine(env["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            cliente = conn.execute(select(t.cliente.c.id).where(t.cliente.c.criado_pelo_script.is_(True))
                                   .order_by(t.cliente.c.id)).first()
            conn.execute(update(t.cliente).where(t.cliente.c.id == cliente.id).values(email="adulterado@exemplo.com"))
            first = conn.execute(select(t.os_status_historico.c.id).order_by(t.os_status_historico.c.id)).first()
            conn.execute(update(t.os_status_historico).where(t.os_status_historico.c.id == first.id)
                         .values(coluna_anterior=99999))
    finally:
        engine.dispose()
    with sb.state.lock:
        ticket = next(tk for tk in sb.state.fc.data["tickets"].values()
                      if str((tk.get("external") or {}).get("id")).startswith("isales:"))
        ticket["message"] = ticket["message"].replace("VENDEDOR: ", "VENDEDOR: outro ")
        ours = next(c for c in sb.state.fc.data["customers"].values()
                    if str((c.get("external") or {}).get("id")).startswith("isales-sync:"))
        ours["contact"] = {**(ours.get("contact") or {}), "phone": "11900000000"}  # the main contact by hand
        sb.state.fc.data["locations"][ours["primaryLocation"]["id"]]["name"] = "Endereço antigo, s/n"


def test_fidelity_finds_spoiled_records(tmp_path):
    """SQLite, in process: 0 differences, then one spoiled value per area is found."""
    result = run_fidelity(Options(projetos=15, rodadas=3, seed=7, pasta=tmp_path), echo=lambda line: None,
                          tamper=spoil)
    assert "erro" not in result, result.get("erro")
    check_clean(result, rounds=3)
    spoiled = result["apos_adulteracao"]
    found = {(d["area"], d["campo"].split(":")[0]) for d in spoiled["lista_diferencas"]}
    assert ("iSales ↔ banco", "cliente.email") in found
    assert any(area == "banco ↔ FieldControl" and what.startswith("e-mail") for area, what in found)
    assert ("OS (tickets)", "mensagem") in found
    assert ("OS (tickets)", "OS aberta com os dados de hoje") in found  # an open ticket is today's data
    assert ("banco ↔ FieldControl", "contact.phone") in found
    assert ("banco ↔ FieldControl", "name (rua e número do endereço)") in found  # the name follows the address
    assert ("histórico", "movimentos (coluna anterior, coluna, rodada)") in found


def test_history_rule_matches_push():
    """bench/history.decide is the rule written again from its text: it must agree with step 04's."""
    rng = random.Random(8)
    for _ in range(2000):
        batches = [[rng.choice(["instalacao", "aumento", "cancelado", "outro"]) for _ in range(rng.randint(1, 3))]
                   for _ in range(rng.randint(1, 4))]
        expected, last, next_id = [], None, 1
        for batch in batches:
            events = list(zip(range(next_id, next_id + len(batch)), batch))
            next_id += len(batch)
            for decision in qualify(events, last):
                expected.append(decision.ticket)
                last = decision.ticket or last
        assert decide(batches) == expected, batches


def test_step03_against_executemany(tmp_path, mysql_server):
    """bench/step03.py writes the same rows both ways on both databases (structure only, no timing)."""
    from bench import step03
    from tests.conftest import MYSQL_URL

    file_02 = step03.synthetic_02(tmp_path / "02.json", 30)
    result = step03.compare(file_02, tmp_path, ("sqlite", "mysql"), MYSQL_URL)
    for kind in ("sqlite", "mysql"):
        measured = result[kind]
        assert measured["etapa_03"]["resumo"]["os"] == {"criados": 30}
        assert measured["executemany"]["linhas"] == 30 * 4 + 27  # 27 clients: 3 of them have two projects
        assert measured["razao"] > 0 and measured["projetos_por_s"] > 0


def test_fetch_ratio_and_429s_with_the_isales_limit_in_force():
    from collections import Counter

    from bench.benchmark import Options, problems, ratios

    calls = Counter({("isales", "GET /clientes", 200): 200, ("isales", "GET /clientes", 429): 2})
    first = {"01": {"_calls": calls, "tempo_s": 150.0, "respostas_429": {"isales": 2}}}
    result = ratios(Options(isales_rpm=60, latencia_isales_ms=50, workers=4), first)
    fetch = result["busca_01"]
    assert fetch["piso_s"] == round((202 - 60) * 60 / 60, 2) and fetch["limite_isales_por_minuto"] == 60
    assert fetch["razao"] == round(150.0 / fetch["piso_s"], 2)
    assert result["respostas_429"]["isales"] == 2
    found = problems({"parametros": {"isales_rpm": 60}, "razoes": result})
    assert any("recebeu 2 resposta(s) 429" in problem for problem in found)
    unlimited = ratios(Options(isales_rpm=0, latencia_isales_ms=50, workers=4), first)["busca_01"]
    assert unlimited["piso_s"] == round(202 * 50 / 1000 / 4, 2) and unlimited["limite_isales_por_minuto"] is None


def test_a_bench_run_leaves_the_working_tree_clean():
    """Without --registrar (or --saida) results go to a folder git ignores; with it, to bench/results."""
    from bench import report

    unrecorded = report.output_folder(None, record=False)
    assert report.output_folder(None, record=True) == report.RESULTS != unrecorded
    for name in ("latest.json", "bench-20261130-120000-1000.json", "fidelidade-latest.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", str(unrecorded / name)], cwd=ROOT)
        assert ignored.returncode == 0, name
    tracked = subprocess.run(["git", "check-ignore", "-q", str(report.RESULTS / "latest.json")], cwd=ROOT)
    assert tracked.returncode == 1


def test_customer_lookups_per_new_customer():
    """bench/lookups.py: a first load reads the account (2 pages) instead of looking each one up;
    a steady run of 5 looks them up one by one (structure and counts, no timing)."""
    from bench import lookups

    result = lookups.measure(first=12, existing=150, steady=5, hand_made=2)
    first, steady = result["rodadas"]
    assert first["clientes"] == {"adotados": 2, "criados": 9}  # 12 projects: one client has two
    assert (first["procuras_por_documento"], first["paginas_da_conta"], first["releituras_por_id"]) == (0, 2, 2)
    assert steady["clientes"] == {"criados": 5} and steady["procuras_por_documento"] == 10
    assert steady["consultas_por_cliente_novo"] == 2.0


def test_scale_run_reports_the_issue_figures(tmp_path):
    """`python -m bench --escala` at two tiny sizes: every figure of issue 14's table, per size where
    the issue asks for it, in escala-latest.json under --saida (structure only, no timing)."""
    out = tmp_path / "resultados"
    proc = run_module("-m", "bench", "--escala", "--tamanhos", "12,24", "--fc-rps", "300", "--saida", str(out),
                      timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scale = json.loads((out / "escala-latest.json").read_text(encoding="utf-8"))
    assert len(list(out.glob("escala-*-12-24.json"))) == 1
    assert list(scale["execucoes"]) == ["12", "24"]
    for run in scale["execucoes"].values():
        assert list(run["primeira_execucao"]) == ["00", "01", "02", "03", "04"] and not run.get("erro")
        assert run["parametros"]["latencia_isales_ms"] == 0 and run["parametros"]["edicoes"] == 0
    figures = scale["figuras"]
    for size in ("12", "24"):
        assert set(figures["rss_max_mb"][size]) == {"01", "02", "03", "04"}
        assert all(mb > 10 for mb in figures["rss_max_mb"][size].values())
    assert set(figures["rss_crescimento"]) == {"01", "02", "03", "04"}
    assert figures["chamadas_por_projeto_novo"] > figures["escritas_por_projeto_novo"] > 1
    assert figures["carga_inicial_1000_a_1_req_s"] > 0 and 0 < figures["enviados_por_projeto"] <= 1
    assert figures["etapa_03"]["sqlite"]["razao_executemany"] > 0
    send = figures["envio_04"]
    assert send["projetos"] == 24 and send["razao"] > 0 and send["cpu_sandbox_s"] >= 0
    assert "04 de ponta a ponta com 24 projetos" in proc.stdout and "pico de RSS a 12 projetos" in proc.stdout


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat", encoding="ascii").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie nobody reaps is finished


def test_a_stopped_benchmark_leaves_no_step_running(tmp_path):
    """Killing the benchmark (Ctrl-C, kill) ends its launcher and the step it was running: they used to
    run on, orphaned, for as long as the step took (minutes at 50,000 projects)."""
    import os
    import signal
    import time

    pidfile = tmp_path / "passo.pid"
    child = (f"import os, time; open({str(pidfile) + '.tmp'!r}, 'w').write(str(os.getpid())); "
             f"os.replace({str(pidfile) + '.tmp'!r}, {str(pidfile)!r}); time.sleep(120)")
    order = {"argv": [sys.executable, "-c", child], "cwd": str(tmp_path), "env": {}, "log": str(tmp_path / "passo.log"),
             "timeout": None}
    parent = subprocess.Popen([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                               "from pathlib import Path; from bench.pipeline import Pipeline; "
                               f"Pipeline(Path({str(tmp_path)!r}), {{}})._launch({order!r})"])
    deadline = time.monotonic() + 60
    while not pidfile.exists() and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    step_pid = int(pidfile.read_text())
    parent.kill()
    parent.wait()
    while _alive(step_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not _alive(step_pid)
    finally:
        if _alive(step_pid):
            os.kill(step_pid, signal.SIGKILL)


def test_rate_finder_replays_the_same_first_load_at_each_rate():
    """bench/rate.py: 04 from the same database and a fresh account at every rate (same calls each time)."""
    from bench import rate

    result = rate.measure(15, (300.0, 600.0), echo=lambda line: None)
    first, second = result["ritmos"]
    assert (first["ritmo"], second["ritmo"]) == (300.0, 600.0)
    assert first["chamadas"] == second["chamadas"] > 0 and first["respostas_429"] == 0
    assert first["piso_s"] == round(first["chamadas"] / 300.0, 1) and first["razao"] > 0
    assert "CPU do 04 por chamada" in rate.render(result)
