#!/usr/bin/env python3
"""Passo 03: grava no banco local os projetos tratados pelo passo 02 (data/02_projetos_tratados.json).

Cria ou atualiza clientes (pelo CPF/CNPJ), endereços, OS (pelo id do iSales) e pagamentos, um
projeto por transação. Toda mudança de coluna vira uma linha em os_status_historico e todo campo
alterado fica na tabela alteracao com o valor antigo e o novo. Um projeto que não pode ser gravado
vira pendência (data/pendencias.json) e os outros seguem. Rodar de novo com o mesmo arquivo não
altera nada.
"""

import sys

from lib import cli
from lib.config import LocalSettings
from lib.run import run_step
from lib.steps import local_sync


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("03_sync_dados_local.py", __doc__)
    parser.add_argument("--arquivo", metavar="CAMINHO",
                        help="arquivo de entrada (padrão: DATA_DIR/02_projetos_tratados.json)")
    parser.add_argument("--ids", type=cli.parse_ids, metavar="ID,ID",
                        help="grava só estes projetos do iSales (ids separados por vírgula)")
    args = parser.parse_args(argv)
    return run_step("03", args, local_sync.run, LocalSettings)


if __name__ == "__main__":
    sys.exit(main())
