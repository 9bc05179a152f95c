"""The command line of the numbered scripts: the argument parser, `--ids`, the help on exit codes.

The run itself (settings, lock, run row, exit code) is `lib/run.py`.
"""

from __future__ import annotations

import argparse

EXIT_CODES_HELP = """\
códigos de saída:
  0   tudo certo
  1   falhou (veja o log em data/logs/)
  2   configuração ou uso incorreto (variável ausente/inválida, token recusado, banco desatualizado)
  3   terminou, mas há pendências (veja data/pendencias.json); elas são tentadas de novo na próxima execução
  75  falha temporária (serviço fora do ar, outra execução em andamento): tente mais tarde
"""


def parser(prog: str, description: str, *, report: bool = True) -> argparse.ArgumentParser:
    """The argument parser of a numbered script: pt-BR help, exit codes, -v, --sem-email."""
    result = argparse.ArgumentParser(
        prog=prog, description=description, epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("-v", "--verbose", action="store_true", help="log detalhado (nível DEBUG)")
    if report:
        result.add_argument("--sem-email", action="store_true",
                            help="não envia o relatório por e-mail desta execução (veja SMTP_HOST)")
    return result


def parse_ids(text: str) -> list[str]:
    """`--ids 4711,4712` → ['4711', '4712'] (argparse type)."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(part.isdigit() for part in ids):
        raise argparse.ArgumentTypeError("use ids numéricos do iSales separados por vírgula, p.ex. 4711,4712")
    return ids
