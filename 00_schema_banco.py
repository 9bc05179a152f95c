#!/usr/bin/env python3
"""Passo 00: cria ou atualiza o banco de dados local (SQLite ou MySQL/MariaDB).

Banco vazio: cria todas as tabelas. Banco da versão anterior dos scripts (MySQL em produção):
reconhece, atualiza no lugar e mantém todas as linhas e ids. Banco já atual: não faz nada.
Pode ser rodado quantas vezes quiser. O banco vem de DATABASE_URL (padrão: sync.db dentro de DATA_DIR).
"""

import sys

from lib import cli
from lib.config import Settings
from lib.run import run_step
from lib.steps import upgrade


def main(argv: list[str] | None = None) -> int:
    args = cli.parser("00_schema_banco.py", __doc__, report=False).parse_args(argv)
    return run_step(upgrade.STEP, args, upgrade.run, Settings, needs_db=False)


if __name__ == "__main__":
    sys.exit(main())
