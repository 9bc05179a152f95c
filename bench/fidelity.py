#!/usr/bin/env python3
"""Fidelidade dos dados (make fidelidade): gera os projetos, roda 00→04 e faz N rodadas de edições
no iSales do sandbox, cada uma seguida de ciclos normais 01 → 04; depois reconcilia campo a campo
iSales ↔ banco local ↔ FieldControl e imprime as diferenças (esperado: 0).

O que é comparado com o quê:
  1. iSales agora ↔ banco agora. Cada projeto do iSales, normalizado pelas regras da etapa 02
     (lib/steps/treat_fields.treat), contra as linhas os, pagamento, cliente e endereco, campo a campo,
     com as regras da etapa 03 (docs/design.md §6): um cliente por documento — quando dois cards da
     mesma pessoa trazem cópias diferentes, o valor gravado tem de ser o de um deles (vale a cópia do
     card alterado por último) — e uma linha por endereço do cliente, vale o projeto buscado por
     último (os.detalhes_em, depois o maior id); um valor vazio no iSales não apaga o gravado quando
     o objeto de origem não veio (contado à parte, como diferença intencional). Coluna e status de
     todo card conhecido. Coordenadas: conferidas contra o link quando ele as traz no próprio texto
     (sem rede); as de link curto ou do geocodificador só banco ↔ FieldControl.
  2. banco agora ↔ FieldControl agora. Cliente (documento; nome, external.id, endereço principal e
     contato principal — telefone e e-mail — quando criado pela integração), local de cada endereço
     (cliente dono, endereço inteiro e o nome, que acompanha o endereço), telefones e e-mail atuais
     (cada um exatamente uma vez; o telefone principal marcado como principal); nenhum documento com
     dois clientes, nenhum endereço com dois locais, nenhum contato que a integração não tenha criado.
     O que a API não deixa mudar (telefone/e-mail antigo criado pela integração, outro telefone ainda
     marcado como principal, OS já transformada em ordem) só não conta como diferença quando há um
     item "revise no FieldControl" aberto para ele: contado como "reportado ao operador".
  3. cada ticket ↔ o estado local do seu envio. Todo evento enviado do histórico tem exatamente um
     ticket com seu external.id e todo ticket da integração tem seu evento. Nome, assunto, cliente,
     local, serviço e a mensagem linha a linha contra o estado local ao fim da execução do 04 que o
     enviou — as linhas de hoje com cada mudança posterior desfeita pelo log de alterações
     (`alteracao`): o ticket reflete os dados do projeto no envio ou na última atualização (PUT).
     A OS atual de cada projeto, ainda aberta (pending) no FieldControl, tem os dados de hoje
     (assunto, local e mensagem); já transformada em ordem, a diferença tem de estar reportada.
  4. histórico ↔ movimentos feitos. As colunas que cada execução do 01 viu (registradas aqui antes de
     rodá-la) dão as linhas esperadas em os_status_historico (primeira gravação e cada mudança, na
     rodada em que foi vista) e, pela regra de cancelamento escrita de novo em bench/history.py, a OS
     esperada (ou a dispensa) de cada linha.
Projetos com pendência aberta (documento inválido, sem coordenadas…) são listados à parte, com o
motivo, e não contam como diferença. Quantos ciclos: a listagem do iSales não diz o que mudou além da
coluna (e da linha do card); uma edição de um card que não se moveu chega pela renovação contínua do
01, que busca a cada execução os cards mais antigos até gastar ISALES_REFRESH_BUDGET chamadas (3 por
card). Depois de cada rodada rodam os ciclos 01→04 que cobrem todos os cards ativos uma vez (um só,
quando cabem num orçamento; --ciclos força outro número), como o cron faria.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report as bench_report  # noqa: E402
from bench.fidelity_run import Options, run_fidelity  # noqa: E402
from bench.fidelity_text import render  # noqa: E402

EPILOG = """\
exemplos:
  python bench/fidelity.py                        # 1.000 projetos, 3 rodadas (alguns minutos)
  python bench/fidelity.py --projetos 50 --rodadas 5 --seed 3
  python bench/fidelity.py --banco mysql+pymysql://root@127.0.0.1:3306/fidelidade

códigos de saída: 0 nenhuma diferença; 1 diferenças encontradas ou uma etapa falhou; 2 uso incorreto.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/fidelity.py", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Options()
    p.add_argument("--projetos", type=int, default=d.projetos, help="projetos gerados no iSales (padrão: %(default)s)")
    p.add_argument("--rodadas", type=int, default=d.rodadas, help="rodadas de edições (padrão: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="semente dos dados e das edições (padrão: %(default)s)")
    p.add_argument("--fc-rps", type=float, default=d.fc_rps,
                   help="requisições/s do FieldControl do sandbox (padrão: %(default)s; o real: 1)")
    p.add_argument("--ciclos", type=int, help="ciclos 01→04 depois de cada rodada (padrão: os que a renovação "
                   "contínua precisa para cobrir todos os cards ativos com o orçamento padrão)")
    p.add_argument("--banco", metavar="URL", help="DATABASE_URL vazio a usar (padrão: um SQLite novo)")
    p.add_argument("--pasta", type=Path, help="pasta de trabalho mantida no fim (padrão: temporária, apagada)")
    p.add_argument("--saida", type=Path,
                   help="pasta dos resultados JSON (padrão: bench/results/local, ignorada pelo git)")
    p.add_argument("--registrar", action="store_true",
                   help="grava o resultado em bench/results (versionado: a medição citada no README)")
    p.add_argument("--mostrar", type=int, default=25, help="diferenças e pendências mostradas na tela (padrão: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.projetos < 1 or args.rodadas < 0 or args.fc_rps <= 0:
        parser.error("--projetos e --fc-rps devem ser positivos e --rodadas, zero ou mais")
    workdir = args.pasta.resolve() if args.pasta else Path(tempfile.mkdtemp(prefix="fidelidade-"))
    if args.pasta:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    opts = Options(projetos=args.projetos, rodadas=args.rodadas, seed=args.seed, fc_rps=args.fc_rps,
                   banco=args.banco, pasta=workdir, ciclos=args.ciclos)
    try:
        result = run_fidelity(opts, echo=lambda line: print(line, flush=True))
    finally:
        if not args.pasta:
            shutil.rmtree(workdir, ignore_errors=True)
    result["gerado_em"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(render(result, args.mostrar))
    path = bench_report.save(result, bench_report.output_folder(args.saida, args.registrar), prefix="fidelidade")
    print(f"\nresultado completo (todas as diferenças e pendências) em {path}")
    return 1 if result.get("erro") or result["reconciliacao"]["diferencas"] else 0


if __name__ == "__main__":
    sys.exit(main())
