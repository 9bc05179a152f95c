"""Create, adopt or upgrade the database with Alembic, and check that it is current.

Three starting points, one path: an empty database is upgraded from nothing; a database made by
the first version of the scripts (no alembic_version, the legacy tables) is stamped at 0001 and
upgraded in place; a database already under Alembic is upgraded to head (or left as it is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from lib.errors import ConfigError, SyncError

if TYPE_CHECKING:  # Alembic (with Mako and Pygments) is imported only to migrate: every step checks the revision
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LEGACY_BASE = "0001"

# What a legacy database must have (docs/legacy_schema.md); extra tables/columns are tolerated.
LEGACY_COLUMNS = {
    "cliente": {"id", "nome", "doc_pessoal", "email", "telefone", "telefone_secundario", "field_id",
                "criado_pelo_script"},
    "endereco": {"id", "cep", "logradouro", "numero", "complemento", "bairro", "cidade", "estado",
                 "link_localizacao", "latitude", "longitude", "location_field_id", "cliente_id"},
    "os": {"id", "tipo_servico", "coluna_id", "vendedor", "data_fechamento", "modulos", "inversor1",
           "inversor2", "inversor3", "valor", "observacoes", "acesso", "isales_id", "field_id",
           "criado_pelo_script", "cliente_id", "endereco_id"},
    "os_status_historico": {"id", "os_id", "status", "data_status", "observacao", "enviado_field"},
    "pagamento": {"id", "forma_pgto", "responsavel_financiamento", "valor_seguro", "observacoes", "os_id"},
}


@dataclass(frozen=True)
class MigrationReport:
    action: str  # "criado" | "adotado" | "atualizado" | "atual"
    before: str | None
    after: str

    def describe(self) -> str:
        if self.action == "criado":
            return f"banco criado na versão {self.after}"
        if self.action == "adotado":
            return f"banco legado reconhecido e atualizado no lugar: legado → {self.after} (nenhuma linha perdida)"
        if self.action == "atualizado":
            return f"banco atualizado da versão {self.before} para {self.after}"
        return f"banco já está na versão atual ({self.after}); nada a fazer"


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(None|\"[^\"]*\"|'[^']*')\s*$", re.MULTILINE)


def head_revision() -> str:
    """The newest migration: the revision no other one follows. Read from the files' `revision` and
    `down_revision` lines (one chain, docs/design.md) without importing Alembic, which every step
    would pay at start (≈0.15 s of CPU); Alembic's own answer when the files are not one chain."""
    follows: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = dict((name, None if value == "None" else value[1:-1])
                     for name, value in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found:
            return _alembic_head()
        follows[str(found["revision"])] = found["down_revision"]
    heads = set(follows) - set(follows.values())
    if len(heads) != 1:
        return _alembic_head()
    return heads.pop()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # a packaging error: the migrations were not shipped
        raise RuntimeError(f"nenhuma migração em {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision (Alembic's alembic_version table; None before the first migration)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    if len(versions) > 1:  # never with one chain of migrations; Alembic would refuse it too
        raise SyncError(f"o banco tem mais de uma versão de esquema ({', '.join(sorted(versions))})")
    return versions[0] if versions else None


def legacy_mismatch(engine: Engine) -> list[str]:
    """What keeps this database from being the legacy shape ([] when it is)."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    problems = []
    for table, required in LEGACY_COLUMNS.items():
        if table not in tables:
            problems.append(f"falta a tabela {table}")
            continue
        missing = required - {column["name"] for column in inspector.get_columns(table)}
        if missing:
            problems.append(f"na tabela {table} faltam as colunas {', '.join(sorted(missing))}")
    return problems


def upgrade(engine_for_migrations: Engine) -> MigrationReport:
    """Bring the database to head. The engine must come from make_engine(url, for_migrations=True)."""
    head = head_revision()
    before = current_revision(engine_for_migrations)
    tables = set(inspect(engine_for_migrations).get_table_names())
    if before is None and tables & set(LEGACY_COLUMNS):
        problems = legacy_mismatch(engine_for_migrations)
        if problems:
            raise SyncError(
                "o banco já tem tabelas, mas não no formato da versão anterior dos scripts nem deste projeto: "
                + "; ".join(problems) + ". Nada foi alterado."
            )
        action = "adotado"
        _run(engine_for_migrations, "stamp", LEGACY_BASE)
    elif before is None:
        action = "criado"
    elif before == head:
        return MigrationReport("atual", before, head)
    else:
        action = "atualizado"
    _run(engine_for_migrations, "upgrade", "head")
    return MigrationReport(action, before, head)


def _run(engine: Engine, what: str, revision: str) -> None:
    from alembic import command

    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, what)(config, revision)


def database_unavailable(exc: Exception) -> SyncError:
    """The error for a database we cannot open: configuration (exit 2) or temporary (exit 75)."""
    from lib.errors import TransientError

    text = str(getattr(exc, "orig", exc))
    if any(code in text for code in ("1044", "1045", "1049", "unable to open database file")):
        return ConfigError(f"não foi possível abrir o banco de dados (verifique DATABASE_URL): {text}")
    return TransientError(f"não foi possível abrir o banco de dados: {type(exc).__name__}: {text}")


def require_current(engine: Engine) -> None:
    """ConfigError (exit 2) unless the database is at head: steps never run on an old schema."""
    from lib.db.engine import require_existing_sqlite

    require_existing_sqlite(engine.url)
    try:
        current = current_revision(engine)
    except Exception as exc:  # unreachable server, bad credentials...
        raise database_unavailable(exc) from None
    head = head_revision()
    if current != head:
        state = "não foi criado" if current is None else f"está na versão {current}, a atual é {head}"
        raise ConfigError(f"o banco de dados {state}: rode python 00_schema_banco.py antes")
