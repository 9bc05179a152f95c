#!/usr/bin/env python3
"""Passo 04: envia ao FieldControl clientes, locais, telefones, e-mails e OS (solicitações de serviço).

Lê o banco local (preenchido pelo passo 03). Cada envio é registrado no banco antes de sair e
conferido depois, então nada é criado duas vezes, nem após uma queda ou um kill. Um cancelamento só
gera OS quando uma OS de instalação ou aumento foi enviada antes. O FieldControl real aceita 1
requisição por segundo por chave (FIELDCONTROL_RATE_PER_SECOND); o ritmo é dividido entre processos.
"""

import sys

from lib import cli
from lib.config import PushSettings, Settings
from lib.run import run_step
from lib.steps import conferir, push, review


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("04_sync_field_api.py", __doc__)
    parser.add_argument("--dry-run", action="store_true",
                        help="mostra cada ação planejada com o conteúdo (JSON) e a estimativa de requisições e de "
                             "tempo, e não altera nada: nem o banco local nem o FieldControl (nenhuma "
                             "requisição é feita)")
    parser.add_argument("--ids", type=cli.parse_ids, metavar="ID[,ID...]",
                        help="só estes projetos do iSales (ids separados por vírgula)")
    parser.add_argument("--reprocessar-pendentes", action="store_true",
                        help="tenta agora as ações recusadas pelo FieldControl, sem esperar 6 horas "
                             "ou uma mudança nos dados")
    parser.add_argument("--conferir", action="store_true",
                        help="só confere (leitura, no ritmo do FieldControl): cada cliente, local, telefone, "
                             "e-mail e OS criados ou adotados ainda existem no FieldControl, sem arquivamento, com "
                             "os dados enviados; cada diferença é mostrada e vira pendência (código 3)")
    parser.add_argument("--revisado", nargs="+", metavar="CHAVE",
                        help="marca como feitos os itens \"revise no FieldControl\" destas chaves (veja "
                             "data/pendencias.json ou o relatório); eles não voltam a ser listados")
    args = parser.parse_args(argv)
    if args.revisado:
        return run_step("04", args, review.mark_done, Settings)
    if args.conferir:
        if args.dry_run or args.reprocessar_pendentes:
            parser.error("--conferir não se combina com --dry-run nem com --reprocessar-pendentes")
        return run_step("conferir", args, conferir.run, PushSettings)
    return run_step("04", args, push.run, PushSettings, needs_db=not args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
