"""The fidelity run: the sandbox, the pipeline (00→04, then N rounds of edits each followed by as many
normal cycles 01→04 as the rolling refresh needs to cover every active card) and the reconciliation of
what iSales, the local database and FieldControl hold."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bench.audit import Audit
from bench.edits import Editor
from bench.findings import Findings
from bench.history import HistoryCheck
from bench.localdb import LocalDb, load_state, pending_project
from bench.pipeline import Pipeline, step_env, tail
from bench.reconcile_fc import FieldControlReconciler
from bench.reconcile_isales import IsalesReconciler
from lib import config


@dataclass
class Options:
    projetos: int = 1000
    rodadas: int = 3
    seed: int = 7
    fc_rps: float = 200.0
    banco: str | None = None
    pasta: Path | None = None
    ciclos: int | None = None  # normal cycles after each round of edits (None: what the budget needs)


@dataclass(frozen=True, kw_only=True)
class FidelitySettings(config.Settings):
    """What the reconciliation reads: the columns, the custom fields and the services, typed as present."""

    SECTIONS: ClassVar[tuple[str, ...]] = ("isales", "fieldcontrol", "campos")
    isales: config.IsalesSettings
    colunas: config.ColumnSettings
    fieldcontrol: config.FieldControlSettings


class StepFailed(Exception):
    pass


def run_round(pipe: Pipeline, db: LocalDb, steps: tuple[str, ...], args01: tuple[str, ...]) -> dict[str, int]:
    codes = {}
    for step in steps:
        run = pipe.run(step, *(args01 if step == "01" else ()))
        codes[step] = run.code
        if run.failed():
            raise StepFailed(f"a etapa {step} terminou com código {run.code}; final da saída ({run.log}):\n"
                             f"{tail(run.log)}")
    return codes


def run_fidelity(opts: Options, echo: Callable[[str], None] = print,
                 tamper: Callable[[Any, dict[str, str]], None] | None = None) -> dict[str, Any]:
    """Run the rounds and the reconciliation. `tamper(sandbox, env)` (tests) spoils the data after
    it: a second reconciliation, in `apos_adulteracao`, must find what it did."""
    from sandbox import Sandbox

    assert opts.pasta is not None
    result: dict[str, Any] = {"parametros": {"projetos": opts.projetos, "rodadas": opts.rodadas, "seed": opts.seed,
                                             "fc_rps": opts.fc_rps}, "rodadas": []}
    echo(f"gerando {opts.projetos} projetos no sandbox (semente {opts.seed})…")
    with Sandbox(projetos=opts.projetos, seed=opts.seed, fc_rps=opts.fc_rps, isales_rpm=0,
                 nominatim_rps=500.0, google_rps=500.0) as sb:
        env = step_env(sb, opts.pasta, opts.banco, FIELDCONTROL_RATE_PER_SECOND=f"{opts.fc_rps:g}",
                       GEOCODER_MIN_DELAY_SECONDS="0.002")
        result["parametros"]["banco"] = "sqlite" if env["DATABASE_URL"].startswith("sqlite") else "mysql"
        pipe, db, editor = Pipeline(opts.pasta, env), LocalDb(env["DATABASE_URL"]), Editor(sb, opts.seed)
        runs_03: list[int] = []
        budget = config.load_for(config.FetchSettings, environ=env).isales.refresh_budget
        try:
            for rodada in range(opts.rodadas + 1):
                edits: Counter[str] = editor.apply_round(rodada) if rodada else Counter()
                editor.observe()
                steps = ("00", "01", "02", "03", "04") if rodada == 0 else ("01", "02", "03", "04")
                codes = run_round(pipe, db, steps, ())
                runs_03.append(db.last_run("03")["id"])  # the column moves land in the round's first cycle
                cycles = 1 if rodada == 0 else opts.ciclos or cycles_needed(sb, budget)
                for _cycle in range(cycles - 1):  # the rolling refresh reaches the edits of unmoved cards
                    codes = run_round(pipe, db, steps, ())
                result["rodadas"].append({"rodada": rodada, "edicoes": dict(edits), "codigos": codes,
                                          "ciclos": cycles})
                echo(f"rodada {rodada}: " + (", ".join(f"{n} {kind}" for kind, n in sorted(edits.items()))
                                             or "carga inicial") + " → " + ", ".join(f"{s}: {c}" for s, c in codes.items()))
            echo("reconciliando iSales ↔ banco local ↔ FieldControl…")
            result.update(reconcile(sb, env, db, editor, runs_03))
            if tamper is not None:
                tamper(sb, env)
                result["apos_adulteracao"] = reconcile(sb, env, db, editor, runs_03)["reconciliacao"]
        except StepFailed as exc:
            result["erro"] = str(exc)
            result.setdefault("reconciliacao", {"diferencas": 0})
        finally:
            db.close()
            pipe.close()
    return result


def cycles_needed(sb, budget: int) -> int:
    """Normal cycles (01→04) for the rolling refresh to fetch every card of interest once: one when
    they fit in one run's budget (3 detail calls per card)."""
    from lib.steps.fetch import CALLS_PER_CARD
    from sandbox.data import COL_AUMENTO, COL_CANCELADO, COL_INSTALACAO

    active = sum(1 for p in sb.projects() if p["card"].get("coluna_id") in (COL_INSTALACAO, COL_AUMENTO, COL_CANCELADO))
    per_run = max(1, budget // CALLS_PER_CARD)
    return max(1, math.ceil(active / per_run))


def reconcile(sb, env: dict[str, str], db: LocalDb, editor: Editor, runs_03: list[int]) -> dict[str, Any]:
    settings = config.load_for(FidelitySettings, environ=env)
    with db.engine.connect() as conn:
        state = load_state(conn)
        audit = Audit(conn)
    findings = Findings()
    isales = IsalesReconciler(editor.snapshots + [sb.projects()], settings, state, findings)
    isales.run()
    remote = FieldControlReconciler(sb, settings, state, audit, findings)
    remote.run()
    history = HistoryCheck(state, editor.observed, runs_03, settings.isales, findings)
    history.run()
    pending_ids = {pending_project(item) for item in state.pending} - {None}
    return {
        "reconciliacao": findings.as_dict(),
        "coordenadas": {"conferidas_pelo_link": isales.coords_checked,
                        "so_banco_fieldcontrol": isales.coords_unchecked},
        "fieldcontrol": dict(remote.counts),
        "historico": history.summary(),
        "projetos": {"no_isales": len(isales.treated), "no_banco": len(state.os),
                     "com_pendencia": len(pending_ids)},
        "pendencias": [{"etapa": item["etapa"], "chave": item["chave"], "motivo": item["motivo"]}
                       for item in state.pending],
        "edicoes": [{"rodada": e.rodada, "projeto": e.projeto, "tipo": e.tipo, "detalhe": e.detalhe}
                    for e in editor.edits],
    }
