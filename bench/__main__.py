"""`python -m bench` (make bench): o pipeline inteiro contra o sandbox, medido etapa por etapa."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, scale  # noqa: E402
from bench.benchmark import Options, problems, run_benchmark  # noqa: E402

DESCRIPTION = """\
Roda o pipeline 00→04 como um usuário (subprocessos) contra o sandbox, com latência realista no iSales
e o FieldControl limitado pelo seu ritmo, duas vezes: a carga inicial e uma execução sem mudanças.
Depois edita telefones (metade com o nome também) no iSales e roda ciclos 01→04 normais até cada
edição chegar ao banco e ao FieldControl: o atraso em ciclos do cron e as chamadas ao iSales por ciclo.
Imprime a tabela (tempo, CPU e memória por etapa, chamadas por API e por rota, razões ao piso, 429s,
a segunda execução, o 03 contra um executemany) e grava o JSON em bench/results/local/ (latest.json),
que o git ignora; com --registrar, em bench/results/ (a medição citada no README).

O FieldControl real aceita 1 requisição por segundo; aqui o sandbox aceita --fc-rps para caber em
poucos minutos — o que vale é a razão ao piso, e a projeção a 1 req/s é impressa no fim.
"""
EPILOG = """\
exemplos:
  python -m bench                                 # 1.000 projetos, ~9 minutos (~5 com --edicoes 0)
  python -m bench --escala --mysql URL            # escala: 10.000 e 50.000 projetos, a tabela da issue 14
                                                  #   (≈ 1 h 10 a 75 req/s numa máquina de 2 núcleos sem outra carga)
  python -m bench --projetos 50000 --fc-rps 200   # uma execução grande à mão
  python -m bench --projetos 50000 --ate 03       # só 01→03: memória e banco em escala
  python -m bench --tabela bench/results/latest.json --markdown

códigos de saída: 0 tudo certo; 1 uma etapa falhou ou a segunda execução escreveu no FieldControl
ou consultou o geocodificador (esperado 0); 2 uso incorreto.
"""


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} não é um número") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("deve ser maior que zero")
        return value
    return parse


def _sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(positive(int)(part.strip()) for part in text.split(",") if part.strip())
    if not sizes:
        raise argparse.ArgumentTypeError("informe ao menos um tamanho")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Options()
    p.add_argument("--projetos", type=positive(int), default=d.projetos, help="projetos gerados no iSales (padrão: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="semente dos dados gerados (padrão: %(default)s)")
    p.add_argument("--fc-rps", type=positive(float), default=None,
                   help=f"requisições/s aceitas pelo FieldControl do sandbox e usadas pelo 04 (padrão: {d.fc_rps:g}; com "
                        f"--escala, {scale.SCALE_FC_RPS:g}; o real: 1)")
    p.add_argument("--latencia-isales-ms", type=float, default=d.latencia_isales_ms,
                   help="latência de cada resposta do iSales (padrão: %(default)s)")
    p.add_argument("--latencia-fc-ms", type=float, default=d.latencia_fc_ms,
                   help="latência de cada resposta do FieldControl (padrão: %(default)s; bem menor que 1/--fc-rps)")
    p.add_argument("--workers", type=positive(int), default=d.workers,
                   help="buscas em paralelo no iSales, ISALES_MAX_WORKERS (padrão: %(default)s)")
    p.add_argument("--geo-rps", type=positive(float), default=d.geo_rps,
                   help="ritmo do geocodificador do sandbox e GEOCODER_MIN_DELAY_SECONDS=1/valor (padrão: %(default)s)")
    p.add_argument("--isales-rpm", type=int, default=d.isales_rpm,
                   help="limite do iSales do sandbox por minuto, 0 = sem limite (padrão: %(default)s)")
    p.add_argument("--banco", metavar="URL", help="DATABASE_URL (padrão: um SQLite novo na pasta de trabalho)")
    p.add_argument("--ate", choices=("01", "02", "03", "04"), default=d.ate, help="última etapa medida (padrão: %(default)s)")
    p.add_argument("--mysql", metavar="URL", default=os.environ.get("TEST_MYSQL_URL") or None,
                   help="servidor MySQL/MariaDB onde o 03 também é medido contra um executemany (cria e apaga um "
                        "banco; padrão: TEST_MYSQL_URL)")
    p.add_argument("--consultas-novos", type=int, default=d.consultas_novos,
                   help="clientes novos da medida de consultas de clientes do 04; 0 desliga (padrão: %(default)s)")
    p.add_argument("--consultas-existentes", type=int, default=d.consultas_existentes,
                   help="clientes já na conta do FieldControl nessa medida (padrão: %(default)s)")
    p.add_argument("--edicoes", type=int, default=d.edicoes,
                   help="edições no iSales cujo atraso até o banco e o FieldControl é medido depois da segunda "
                        "execução, em ciclos 01→04 (padrão: %(default)s; 0 pula essa fase)")
    p.add_argument("--ciclos", type=positive(int), default=None,
                   help="ciclos 01→04 no máximo nessa fase (padrão: um rodízio completo da renovação + 2)")
    p.add_argument("--orcamento", type=int, default=None, metavar="CHAMADAS",
                   help="ISALES_REFRESH_BUDGET das etapas (padrão: o do programa, 300 chamadas por execução)")
    p.add_argument("--pasta", type=Path, help="pasta de trabalho mantida no fim (padrão: temporária, apagada)")
    p.add_argument("--saida", type=Path,
                   help="pasta dos resultados JSON (padrão: bench/results/local, ignorada pelo git)")
    p.add_argument("--registrar", action="store_true",
                   help="grava o resultado em bench/results (versionado: a medição citada no README)")
    p.add_argument("--markdown", action="store_true", help="imprime também a tabela em Markdown (para o README)")
    p.add_argument("--tabela", type=Path, metavar="JSON", help="só mostra a tabela de um resultado salvo")
    p.add_argument("--escala", action="store_true",
                   help="a execução de escala: 00→04 com cada um dos --tamanhos (sem latência no iSales, 8 workers, "
                        "sem a fase de edições) e a tabela da issue 14 (memória por etapa, 03 contra o executemany, "
                        "04 ao piso); grava escala-latest.json. Usa só --fc-rps, --seed, --mysql, --tamanhos, "
                        "--saida, --registrar")
    p.add_argument("--tamanhos", type=_sizes, default=",".join(str(n) for n in scale.SIZES), metavar="N,N",
                   help="projetos de cada execução de --escala (padrão: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tabela:
        try:
            saved = json.loads(args.tabela.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"não foi possível ler {args.tabela}: {exc}", file=sys.stderr)
            return 2
        print(scale.render(saved) if saved.get("tipo") == "escala" else report.render(saved))
        if args.markdown and saved.get("tipo") != "escala":
            print("\n" + report.markdown(saved))
        return 0
    if args.escala:
        result = scale.run_scale(args.tamanhos, fc_rps=args.fc_rps or scale.SCALE_FC_RPS, seed=args.seed,
                                 mysql=args.mysql, echo=lambda line: print(line, flush=True))
        print(scale.render(result))
        path = report.save(result, report.output_folder(args.saida, args.registrar), prefix="escala")
        print(f"\nresultado gravado em {path}")
        found = [f"{size} projetos: {problem}" for size, run in result["execucoes"].items() for problem in problems(run)]
        for problem in found:
            print(f"PROBLEMA: {problem}", file=sys.stderr)
        return 1 if found else 0
    opts = Options(projetos=args.projetos, seed=args.seed, fc_rps=args.fc_rps or Options().fc_rps,
                   latencia_isales_ms=args.latencia_isales_ms, latencia_fc_ms=args.latencia_fc_ms,
                   workers=args.workers, geo_rps=args.geo_rps, isales_rpm=args.isales_rpm, banco=args.banco,
                   ate=args.ate, pasta=args.pasta.resolve() if args.pasta else None, edicoes=args.edicoes,
                   ciclos=args.ciclos, orcamento=args.orcamento, mysql=args.mysql,
                   consultas_novos=args.consultas_novos, consultas_existentes=args.consultas_existentes)
    result = run_benchmark(opts, echo=lambda line: print(line, flush=True))
    print(report.render(result))
    if args.markdown:
        print("\n" + report.markdown(result))
    path = report.save(result, report.output_folder(args.saida, args.registrar))
    print(f"\nresultado gravado em {path}")
    found = problems(result)
    for problem in found:
        print(f"PROBLEMA: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
