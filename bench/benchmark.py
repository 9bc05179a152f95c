"""The benchmark: the whole pipeline twice (a first load, then a run with no changes) against a sandbox
with realistic latency and FieldControl's rate limit, measured per step and set against its floor."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import delay, lookups, rawinsert, step03
from bench.localdb import WRITTEN_BY_03, LocalDb
from bench.pipeline import CallCollector, Key, Pipeline, StepRun, by_system, step_env, tail, total

REAL_FC_RATE = 1.0  # requests per second the real FieldControl allows per key
PACER_MARGIN = 1.05  # lib/http.py spaces requests 5 % wider than the configured rate
DETAIL_ROUTES = ("/clientes", "/propostas", "/campo-customizado")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
GEOCODERS = ("nominatim", "google")
FIRST_STEPS = ("00", "01", "02", "03", "04")


@dataclass
class Options:
    projetos: int = 1000
    seed: int = 7
    fc_rps: float = 20.0
    latencia_isales_ms: float = 50.0
    latencia_fc_ms: float = 0.0
    workers: int = 4
    geo_rps: float = 20.0
    isales_rpm: int = 0
    banco: str | None = None  # DATABASE_URL (default: SQLite in the work folder)
    ate: str = "04"  # last step (03 for a scale run of 01–03 only)
    mysql: str | None = None  # a MySQL/MariaDB server: step 03 is also measured there against executemany
    consultas_novos: int = 1000  # customer look-ups: new customers of the first load (0: not measured)
    consultas_existentes: int = 5000  # customers already in the FieldControl account
    pasta: Path | None = None  # work folder kept after the run (default: a temporary one, removed)
    edicoes: int = 100  # edit → arrival phase: iSales edits tracked (0: no phase)
    ciclos: int | None = None  # its cycles at most (default: a full rolling-refresh rotation + 2)
    orcamento: int | None = None  # ISALES_REFRESH_BUDGET of the steps (default: the program's, 300)


class StepFailed(Exception):
    def __init__(self, run: StepRun):
        super().__init__(f"a etapa {run.step} terminou com código {run.code}; final da saída ({run.log}):\n"
                         f"{tail(run.log)}")
        self.run = run


def _file_counts(data_dir: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((data_dir / name).read_text(encoding="utf-8")).get("contagens") or {}
    except (OSError, ValueError):
        return {}


def _motivos(data_dir: Path) -> dict[str, int]:
    try:
        projetos = json.loads((data_dir / "01_projetos_isales.json").read_text(encoding="utf-8"))["projetos"]
    except (OSError, ValueError, KeyError):
        return {}
    return dict(Counter(str(p.get("motivo")) for p in projetos))


class Runner:
    """One benchmark: the sandbox, the work folder, the pipeline, the call log and the database."""

    def __init__(self, opts: Options, sandbox, workdir: Path, echo: Callable[[str], None]):
        self.opts, self.sb, self.workdir, self.echo = opts, sandbox, workdir, echo
        budget = {} if opts.orcamento is None else {"ISALES_REFRESH_BUDGET": opts.orcamento}
        self.env = step_env(sandbox, workdir, opts.banco, FIELDCONTROL_RATE_PER_SECOND=f"{opts.fc_rps:g}",
                            ISALES_MAX_WORKERS=opts.workers,
                            GEOCODER_MIN_DELAY_SECONDS=f"{1 / opts.geo_rps:g}" if opts.geo_rps else "0", **budget)
        self.data_dir = Path(self.env["DATA_DIR"])
        self.pipe = Pipeline(workdir, self.env)
        self.db = LocalDb(self.env["DATABASE_URL"])
        self.first_02 = workdir / "02_primeira_execucao.json"

    def step(self, calls: CallCollector, step: str, *args: str) -> dict[str, Any]:
        before = self.db.counts() if step in ("03", "04") else {}
        host_before = cpu_here()
        run = self.pipe.run(step, *args)
        counted = calls.cut()
        if run.failed():
            raise StepFailed(run)
        # this process runs the sandbox: with the step's own CPU, whether the machine, not the API's
        # limit, set the pace (a ratio to the floor means something only when neither is near 2 cores)
        result: dict[str, Any] = {"codigo": run.code, "tempo_s": round(run.wall, 2), "cpu_s": round(run.cpu, 2),
                  "cpu_sandbox_s": round(cpu_here() - host_before, 2),
                  "rss_max_mb": round(run.max_rss_mb, 1), "chamadas": by_system(counted),
                  "chamadas_por_api": {system: sum(routes.values()) for system, routes in by_system(counted).items()},
                  "respostas_429": {system: n for system in ("isales", "fieldcontrol", *GEOCODERS)
                                    if (n := total(counted, system, status=429))}}
        result.update(self.items(step, before, counted))
        if step == "02" and not self.first_02.exists():  # the second run rewrites it (without the projects)
            shutil.copyfile(self.data_dir / "02_projetos_tratados.json", self.first_02)
        if result.get("itens") is not None and run.wall:
            result["itens_por_s"] = round(result["itens"] / run.wall, 1)
        self.echo(f"  etapa {step}: {run.wall:6.1f} s, código {run.code}, {run.max_rss_mb:.0f} MB, "
                  f"{sum(result['chamadas_por_api'].values())} chamadas"
                  + (f", {result['itens']} {result['itens_o_que']}" if result.get("itens") is not None else ""))
        result["_calls"] = counted
        return result

    def items(self, step: str, before: dict[str, int], counted: Counter[Key]) -> dict[str, Any]:
        if step == "01":
            counts = _file_counts(self.data_dir, "01_projetos_isales.json")
            return {"itens": counts.get("detalhados", 0), "itens_o_que": "projetos detalhados",
                    "motivos": _motivos(self.data_dir)}
        if step == "02":
            counts = _file_counts(self.data_dir, "02_projetos_tratados.json")
            return {"itens": counts.get("tratados", 0), "itens_o_que": "projetos tratados",
                    "pendentes": counts.get("pendentes", 0), "geocodificador": counts.get("geocodificador")}
        after = self.db.counts()
        if step == "03":
            delta = {name: after[name] - before.get(name, 0) for name in WRITTEN_BY_03}
            return {"itens": sum(delta.values()), "itens_o_que": "linhas gravadas", "linhas": delta}
        if step == "04":
            reported = self.db.last_run("04").get("contagens", {}).get("requisicoes_fieldcontrol")
            return {"itens": after["os_enviadas"] - before.get("os_enviadas", 0), "itens_o_que": "projetos enviados",
                    "tickets": after["tickets"] - before.get("tickets", 0),
                    "clientes_criados": total(counted, "fieldcontrol", methods=("POST",),
                                                      routes=("/customers",)),
                    "requisicoes_segundo_o_04": reported}
        return {}

    def round(self, calls: CallCollector, steps: tuple[str, ...], title: str, into: dict[str, Any]) -> None:
        """Run `steps` in order; each result goes into `into` as soon as it is known."""
        self.echo(title)
        for step in steps:
            into[step] = self.step(calls, step)


def cpu_here() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def _ratio(value: float, floor: float) -> float | None:
    return round(value / floor, 2) if floor else None


def ratios(opts: Options, first: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each step against what the remote side makes unavoidable."""
    result: dict[str, Any] = {}
    if "01" in first:
        calls = total(first["01"]["_calls"], "isales")
        floor = calls * opts.latencia_isales_ms / 1000 / opts.workers
        piso = "chamadas × latência ÷ workers"
        # with a limit per sliding minute, the first `isales_rpm` calls may go at once, the rest wait
        limit_floor = max(0, calls - opts.isales_rpm) * 60 / opts.isales_rpm if opts.isales_rpm else 0.0
        if limit_floor > floor:
            floor, piso = limit_floor, "(chamadas − limite) ÷ limite por minuto do iSales"
        result["busca_01"] = {"tempo_s": first["01"]["tempo_s"], "chamadas": calls, "piso_s": round(floor, 2),
                              "razao": _ratio(first["01"]["tempo_s"], floor), "piso": piso,
                              "limite_isales_por_minuto": opts.isales_rpm or None}
    if "02" in first:
        calls = sum(total(first["02"]["_calls"], system) for system in GEOCODERS)
        floor = calls / opts.geo_rps if opts.geo_rps else 0.0
        result["coordenadas_02"] = {"tempo_s": first["02"]["tempo_s"], "chamadas_geocodificador": calls,
                                    "chamadas_links": total(first["02"]["_calls"], "shortener"),
                                    "piso_s": round(floor, 2), "razao": _ratio(first["02"]["tempo_s"], floor),
                                    "piso": "chamadas ao geocodificador ÷ ritmo permitido"}
    if "04" in first:
        counted = first["04"]["_calls"]
        calls = total(counted, "fieldcontrol")
        floor = calls / opts.fc_rps
        sent = first["04"]["itens"]
        result["envio_04"] = {
            "tempo_s": first["04"]["tempo_s"], "chamadas": calls,
            "escritas": total(counted, "fieldcontrol", methods=WRITE_METHODS),
            "piso_s": round(floor, 2), "razao": _ratio(first["04"]["tempo_s"], floor),
            "piso": "chamadas ÷ limite do FieldControl (o ritmo do cliente tem 5 % de folga: razão mínima ≈ 1,05)",
            "chamadas_por_projeto_novo": round(calls / sent, 2) if sent else None,
            "escritas_por_projeto_novo": round(total(counted, "fieldcontrol", methods=WRITE_METHODS) / sent, 2)
            if sent else None}
        result["projecao_1_req_s"] = {
            "envio_inicial_s": round(calls * PACER_MARGIN / REAL_FC_RATE),
            "por_projeto_novo_s": round(calls * PACER_MARGIN / REAL_FC_RATE / sent, 1) if sent else None,
            "nota": "o FieldControl real aceita 1 requisição por segundo por chave; o envio é limitado por ele"}
    result["respostas_429"] = {system: sum(step["respostas_429"].get(system, 0) for step in first.values())
                               for system in ("isales", "fieldcontrol", *GEOCODERS)}
    return result


def second_run_summary(second: dict[str, dict[str, Any]]) -> dict[str, Any]:
    calls: Counter[Key] = Counter()
    for step in second.values():
        calls.update(step["_calls"])
    detail = total(calls, "isales", routes=DETAIL_ROUTES)
    motivos = second.get("01", {}).get("motivos", {})
    return {
        "escritas_fieldcontrol": total(calls, "fieldcontrol", methods=WRITE_METHODS),
        "chamadas_fieldcontrol": total(calls, "fieldcontrol"),
        # the execution status read back (issue 13 §3): one listing of the orders changed since the last
        # check (100 per page) + the tasks of each changed order of ours
        "chamadas_situacao_em_campo": total(calls, "fieldcontrol", routes=("/orders", "/orders/{id}/tasks")),
        "chamadas_geocodificador": sum(total(calls, system) for system in GEOCODERS),
        "chamadas_links": total(calls, "shortener"),
        "chamadas_detalhes_isales": detail,
        "projetos_detalhados": second.get("01", {}).get("itens"),
        "motivos_01": motivos,
        "explicacao_detalhes": ("a renovação contínua (motivo 'renovacao': os cards de detalhes mais antigos, "
                                "até ISALES_REFRESH_BUDGET chamadas) e os projetos que não puderam seguir "
                                "(documento inválido, sem coordenadas…: ainda fora do banco, motivo 'novo', ou com "
                                "pendência aberta, motivo 'pendente') são buscados de novo, 3 chamadas cada "
                                "(cliente, proposta, campos)"
                                if detail else "nenhum projeto buscado de novo"),
    }


def run_benchmark(opts: Options, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark; the report (also when a step fails: `erro`)."""
    from sandbox import Sandbox

    workdir = opts.pasta or Path(tempfile.mkdtemp(prefix="bench-"))
    if opts.pasta:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    steps = FIRST_STEPS[:FIRST_STEPS.index(opts.ate) + 1]
    report: dict[str, Any] = {"formato": 1, "gerado_em": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "maquina": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "sistema": platform.platform(terse=True), "carga_no_inicio": load_average()},
                              "parametros": {**asdict(opts), "pasta": str(workdir)}}
    started = time.monotonic()
    latency = {"isales": opts.latencia_isales_ms, "fieldcontrol": opts.latencia_fc_ms}
    echo(f"gerando {opts.projetos} projetos no sandbox (semente {opts.seed})…")
    sb = Sandbox(projetos=opts.projetos, seed=opts.seed, fc_rps=opts.fc_rps, isales_rpm=opts.isales_rpm,
                 nominatim_rps=opts.geo_rps or 0, google_rps=opts.geo_rps or 0, latency_ms=latency)
    runner = None
    try:
        with sb, CallCollector(sb) as calls:
            runner = Runner(opts, sb, workdir, echo)
            report["parametros"]["banco"] = "sqlite" if runner.env["DATABASE_URL"].startswith("sqlite") else "mysql"
            first = report["primeira_execucao"] = {}
            runner.round(calls, steps, "primeira execução (carga inicial):", first)
            report["razoes"] = ratios(opts, first)
            if "03" in steps:  # without the database written, a second 01 would fetch everything again
                second = report["segunda_execucao"] = {}
                runner.round(calls, steps[1:], "segunda execução, sem mudanças no iSales:", second)
                report["segunda_execucao_resumo"] = second_run_summary(second)
            report["banco_local"] = runner.db.counts()
            if "04" in steps and opts.edicoes:
                cards = _file_counts(runner.data_dir, "01_projetos_isales.json").get("cards_de_interesse", 0)
                report["atraso_edicoes"] = delay.measure(runner, calls, cards, edits=opts.edicoes,
                                                         cycles=opts.ciclos, seed=opts.seed, echo=echo)
        if "03" in steps:
            kinds = ("sqlite", "mysql") if opts.mysql else ("sqlite",)
            echo(f"etapa 03 contra um executemany do SQLAlchemy das mesmas linhas ({', '.join(kinds)})…")
            report["banco_03"] = step03.compare_apart(runner.first_02, opts.mysql)
            report["banco_03"]["executemany_cru_sqlite"] = rawinsert.measure(runner.first_02, workdir)
        if "04" in steps and opts.consultas_novos:
            echo(f"consultas de clientes no 04: {opts.consultas_novos} novos numa conta com "
                 f"{opts.consultas_existentes} clientes, depois 5 novos…")
            report["consultas_clientes"] = lookups.measure(opts.consultas_novos, opts.consultas_existentes, 5,
                                                           hand_made=max(1, opts.consultas_novos // 20))
    except StepFailed as exc:
        report["erro"] = str(exc)
    finally:
        if runner is not None:
            runner.db.close()
            runner.pipe.close()
        if not opts.pasta:
            shutil.rmtree(workdir, ignore_errors=True)
    report["duracao_total_s"] = round(time.monotonic() - started, 1)
    report["maquina"]["carga_no_fim"] = load_average()
    for rounds in ("primeira_execucao", "segunda_execucao"):
        for step in report.get(rounds, {}).values():
            step.pop("_calls", None)
    return report


def problems(report: dict[str, Any]) -> list[str]:
    """What the benchmark found wrong (not slow: wrong), in pt-BR."""
    found = []
    if report.get("erro"):
        found.append(report["erro"])
    second = report.get("segunda_execucao_resumo") or {}
    if second.get("escritas_fieldcontrol"):
        found.append(f"a segunda execução, sem mudanças, fez {second['escritas_fieldcontrol']} escrita(s) no "
                     "FieldControl (esperado 0)")
    isales_429 = ((report.get("razoes") or {}).get("respostas_429") or {}).get("isales")
    if isales_429 and report.get("parametros", {}).get("isales_rpm"):
        found.append(f"com o limite do iSales em vigor, o 01 recebeu {isales_429} resposta(s) 429 (esperado 0: o "
                     "ritmo vem dos cabeçalhos X-RateLimit-*)")
    if second.get("chamadas_geocodificador"):
        found.append(f"a segunda execução, sem mudanças, consultou o geocodificador "
                     f"{second['chamadas_geocodificador']} vez(es) (esperado 0)")
    return found
