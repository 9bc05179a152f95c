#!/usr/bin/env python3
"""Passo 00: cria ou atualiza o banco de dados local (SQLite ou MySQL/MariaDB).

Banco vazio: cria todas as tabelas. Banco da versão anterior dos scripts (MySQL em produção):
reconhece, atualiza no lugar e mantém todas as linhas e ids. Banco já atual: não faz nada.
Pode ser rodado quantas vezes quiser. O banco vem de DATABASE_URL (padrão sqlite:///data/sync.db).
"""

import sys

from lib import cli
from lib.db import migrate
from lib.db.engine import make_engine
from lib.logs import redact


def create_or_upgrade(ctx: cli.RunContext) -> None:
    engine = make_engine(ctx.settings.database_url, for_migrations=True)
    try:
        try:
            report = migrate.upgrade(engine)
        except migrate.SyncError:
            raise
        except Exception as exc:
            raise migrate.database_unavailable(exc) from None
    finally:
        engine.dispose()
    ctx.summary.extra["migracao"] = report.action
    print(f"{redact(ctx.settings.database_url)}: {report.describe()}")


def main(argv: list[str] | None = None) -> int:
    args = cli.parser("00_schema_banco.py", __doc__, report=False).parse_args(argv)
    return cli.run_step("00", args, create_or_upgrade, needs_db=False)


if __name__ == "__main__":
    sys.exit(main())
