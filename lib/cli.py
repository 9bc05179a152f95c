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
  75  falha temporária (serviço fora do ar, outra execução em andamento, escrita incerta aguardando
      conferência): tente mais tarde
  130 interrompido com Ctrl-C: rode de novo; o que foi feito fica feito, nada é duplicado
  143 encerrado por SIGTERM (kill, parada do serviço ou do cron): rode de novo, como no 130
"""

# argparse's own words (usage line, section titles, -h, its error messages) in pt-BR. argparse
# looks them up through gettext at call time, so replacing its two lookup functions suffices.
ARGPARSE_PT_BR = {
    "usage: ": "uso: ",
    "positional arguments": "argumentos posicionais",
    "options": "opções",
    "optional arguments": "opções",
    "show this help message and exit": "mostra esta ajuda e sai",
    "show program's version number and exit": "mostra a versão do programa e sai",
    "%(prog)s: error: %(message)s\n": "%(prog)s: erro: %(message)s\n",
    "argument %(argument_name)s: %(message)s": "argumento %(argument_name)s: %(message)s",
    "unrecognized arguments: %s": "argumentos não reconhecidos: %s",
    "not allowed with argument %s": "não pode ser usado junto com o argumento %s",
    "ignored explicit argument %r": "argumento explícito ignorado: %r",
    "the following arguments are required: %s": "os seguintes argumentos são obrigatórios: %s",
    "one of the arguments %s is required": "um dos argumentos %s é obrigatório",
    "expected one argument": "esperava um valor",
    "expected at most one argument": "esperava no máximo um valor",
    "expected at least one argument": "esperava ao menos um valor",
    "expected %s argument": "esperava %s valor",
    "expected %s arguments": "esperava %s valores",
    "ambiguous option: %(option)s could match %(matches)s": "opção ambígua: %(option)s pode ser %(matches)s",
    "unexpected option string: %s": "opção inesperada: %s",
    "invalid %(type)s value: %(value)r": "valor inválido (%(type)s): %(value)r",
    "invalid choice: %(value)r (choose from %(choices)s)": "escolha inválida: %(value)r (escolha entre %(choices)s)",
    "can't open '%(filename)s': %(error)s": "não foi possível abrir '%(filename)s': %(error)s",
}


def _gettext_pt_br(message: str) -> str:
    return ARGPARSE_PT_BR.get(message, message)


def _ngettext_pt_br(singular: str, plural: str, n: int) -> str:
    return _gettext_pt_br(singular if n == 1 else plural)


argparse._ = _gettext_pt_br  # type: ignore[attr-defined]
argparse.ngettext = _ngettext_pt_br  # type: ignore[attr-defined]


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
