#!/usr/bin/env python3
"""Passo 01: busca no iSales os cards do funil (ISALES_FUNIL_ID) nas colunas de instalação, aumento e
cancelamento, com cliente, proposta e campos customizados, e grava data/01_projetos_isales.json.

Incremental: só busca os detalhes de cards novos, que mudaram de coluna ou de linha na listagem do
funil, com pendência aberta e, na renovação contínua, os de detalhes mais antigos até gastar
ISALES_REFRESH_BUDGET chamadas (segundo o banco local). Cards já conhecidos que foram para outra
coluna entram em "movimentos". Um card cujos detalhes falham vira pendência e
os demais seguem. O token do iSales nunca aparece em logs, arquivos ou no banco.
"""

import sys

from lib import cli
from lib.config import FetchSettings
from lib.run import run_step
from lib.steps import fetch


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("01_get_projetos_isales.py", __doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--completo", action="store_true",
                       help="busca os detalhes de todos os cards das colunas de interesse, mesmo sem mudança")
    which.add_argument("--ids", type=cli.parse_ids, metavar="ID[,ID...]",
                       help="busca só estes projetos (cliente_id do iSales), p.ex. --ids 4711,4712")
    args = parser.parse_args(argv)
    return run_step(fetch.STEP, args, fetch.run, FetchSettings)


if __name__ == "__main__":
    sys.exit(main())
