"""`python -m bench.rate`: the fastest FieldControl rate at which step 04 still runs at its floor on
this machine. Steps 00→03 run once; then the same first load of 04 runs at each rate, every time
from the database as 03 left it and a FieldControl account as the sandbox generates it. The bench's
ratios to the floor (04's time ÷ calls/rate) mean something only at a rate where neither the step
nor the sandbox is short of CPU: pick the largest rate whose ratio stays ≈ 1.05 for --fc-rps."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.benchmark import cpu_here, load_average  # noqa: E402
from bench.pipeline import CallCollector, Pipeline, step_env, tail, total  # noqa: E402
from bench.report import num, text_table  # noqa: E402

DEFAULT_RATES = (50.0, 75.0, 100.0, 150.0)
SETUP_RATE = 1000.0  # 00→03 make no FieldControl call


def _copy_database(data_dir: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for path in data_dir.glob("sync.db*"):
        shutil.copy2(path, into / path.name)


def _restore_database(saved: Path, data_dir: Path) -> None:
    for path in data_dir.glob("sync.db*"):
        path.unlink()
    for path in saved.iterdir():
        shutil.copy2(path, data_dir / path.name)


def measure(projetos: int, rates: tuple[float, ...], *, seed: int = 7, echo=print) -> dict[str, Any]:
    from sandbox import Sandbox

    workdir = Path(tempfile.mkdtemp(prefix="bench-ritmo-"))
    result: dict[str, Any] = {"projetos": projetos, "seed": seed, "cpus": os.cpu_count(), "ritmos": []}
    try:
        with Sandbox(projetos=projetos, seed=seed, fc_rps=SETUP_RATE, nominatim_rps=1000, google_rps=1000) as sb, \
                CallCollector(sb) as calls:
            env = step_env(sb, workdir, None, ISALES_MAX_WORKERS=8, GEOCODER_MIN_DELAY_SECONDS="0.001")
            pipe = Pipeline(workdir, env)
            try:
                for step in ("00", "01", "02", "03"):
                    run = pipe.run(step)
                    if run.failed():
                        raise RuntimeError(f"a etapa {step} falhou:\n{tail(run.log)}")
                echo(f"00→03 com {projetos} projetos prontos; o 04 a cada ritmo parte do mesmo banco")
                saved = workdir / "banco-depois-do-03"
                _copy_database(workdir / "data", saved)
                for rate in rates:
                    sb.reset()  # the account as generated, nothing of the previous 04
                    sb.configure(fc_rps=rate)
                    _restore_database(saved, workdir / "data")
                    pipe.env["FIELDCONTROL_RATE_PER_SECOND"] = f"{rate:g}"
                    calls.cut()
                    load, host = load_average(), cpu_here()
                    run = pipe.run("04")
                    counted = calls.cut()
                    if run.failed():
                        raise RuntimeError(f"o 04 a {rate:g} req/s falhou:\n{tail(run.log)}")
                    made = total(counted, "fieldcontrol")
                    floor = made / rate
                    row = {"ritmo": rate, "chamadas": made, "tempo_s": round(run.wall, 1), "piso_s": round(floor, 1),
                           "razao": round(run.wall / floor, 2) if floor else None,
                           "respostas_429": total(counted, "fieldcontrol", status=429),
                           "cpu_04_ms_por_chamada": round(run.cpu / made * 1000, 2) if made else None,
                           "cpu_sandbox_ms_por_chamada": round((cpu_here() - host) / made * 1000, 2) if made else None,
                           "carga_no_inicio": load}
                    result["ritmos"].append(row)
                    echo(f"  {rate:g} req/s: {made} chamadas em {run.wall:.1f} s, piso {floor:.1f} s → razão "
                         f"{row['razao']}; carga média {load}")
            finally:
                pipe.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def render(result: dict[str, Any]) -> str:
    head = ["req/s", "chamadas", "tempo (s)", "piso (s)", "razão", "429", "CPU do 04 por chamada (ms)",
            "CPU do sandbox por chamada (ms)", "carga média"]
    rows = [[num(r["ritmo"], 0), num(r["chamadas"]), num(r["tempo_s"]), num(r["piso_s"]), num(r["razao"], 2),
             num(r["respostas_429"]), num(r["cpu_04_ms_por_chamada"], 2), num(r["cpu_sandbox_ms_por_chamada"], 2),
             num(r["carga_no_inicio"], 1)] for r in result["ritmos"]]
    return "\n".join([f"04 com {num(result['projetos'])} projetos, {result['cpus']} CPUs (razão mínima ≈ 1,05: o ritmo "
                      "do cliente tem 5 % de folga)", *text_table(head, rows)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projetos", type=int, default=2000, help="projetos gerados (padrão: %(default)s)")
    p.add_argument("--ritmos", default=",".join(f"{r:g}" for r in DEFAULT_RATES), metavar="R,R",
                   help="requisições/s do FieldControl a medir (padrão: %(default)s)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    try:
        rates = tuple(float(part) for part in args.ritmos.split(",") if part.strip())
    except ValueError:
        p.error("--ritmos: números separados por vírgula")
    if not rates or min(rates) <= 0 or args.projetos <= 0:
        p.error("--ritmos e --projetos devem ser maiores que zero")
    started = time.monotonic()
    result = measure(args.projetos, rates, seed=args.seed, echo=lambda line: print(line, flush=True))
    print(render(result))
    print(f"duração: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
