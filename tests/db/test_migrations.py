"""00_schema_banco: create, re-run, adopt the legacy database, and match lib/db/schema.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from lib.db import migrate
from lib.db import schema as t
from lib.db.engine import make_engine
from lib.errors import SyncError
from tests.db.legacy import create_legacy


def test_script_creates_then_reports_current(db_url, run):
    first = run("00", env={"DATABASE_URL": db_url, "DATA_DIR": "data"})
    assert first.returncode == 0, first.stderr
    assert "banco criado na versão" in first.stdout
    second = run("00", env={"DATABASE_URL": db_url, "DATA_DIR": "data"})
    assert second.returncode == 0, second.stderr
    assert "já está na versão atual" in second.stdout


def test_migrated_schema_matches_table_definitions(migrated_db):
    engine = make_engine(migrated_db)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, t.metadata)
    engine.dispose()
    # MySQL names the implicit foreign-key indexes itself; nothing else may differ.
    assert [d for d in diff if not _implicit_fk_index(d)] == []


def _implicit_fk_index(entry) -> bool:
    return isinstance(entry, tuple) and entry[0] == "remove_index" and entry[1].name.endswith("_ibfk_1")


def test_upgrade_is_idempotent_and_reports_current(migrated_db):
    engine = make_engine(migrated_db, for_migrations=True)
    report = migrate.upgrade(engine)
    engine.dispose()
    assert report.action == "atual"
    assert report.after == migrate.head_revision()


def test_legacy_database_is_adopted_keeping_every_row(db_url):
    engine = make_engine(db_url, for_migrations=True)
    create_legacy(engine)
    report = migrate.upgrade(engine)
    assert report.action == "adotado"
    assert "legado" in report.describe()

    with engine.connect() as conn:
        clientes = conn.execute(select(t.cliente).order_by(t.cliente.c.id)).mappings().all()
        enderecos = conn.execute(select(t.endereco).order_by(t.endereco.c.id)).mappings().all()
        oss = conn.execute(select(t.os).order_by(t.os.c.id)).mappings().all()
        historico = conn.execute(select(t.os_status_historico).order_by(t.os_status_historico.c.id)).mappings().all()
        pagamentos = conn.execute(select(t.pagamento).order_by(t.pagamento.c.id)).mappings().all()
        log = conn.execute(select(t.alteracao)).mappings().all()

    assert [c["id"] for c in clientes] == [7, 9]
    assert clientes[0]["field_id"] == "MTox" and clientes[0]["criado_pelo_script"] is True
    assert [e["id"] for e in enderecos] == [11, 12]
    assert enderecos[0]["latitude"] == Decimal("-23.5614000")
    assert enderecos[0]["longitude"] == Decimal("-46.6559000")  # "-46,6559" read with a decimal comma
    assert enderecos[0]["fonte_coordenadas"] == "legado"
    assert enderecos[1]["latitude"] is None and enderecos[1]["fonte_coordenadas"] is None
    assert [o["id"] for o in oss] == [21, 22]
    assert oss[0]["valor"] == Decimal("45900.00") and oss[1]["valor"] == Decimal("238500.50")
    assert oss[0]["status"] == "instalacao" and oss[1]["status"] == "cancelado"
    assert [h["status"] for h in historico] == ["instalacao", "instalacao", "cancelado"]
    assert historico[0]["enviado_field"] is True and historico[0]["ticket_tipo"] == "instalacao"
    assert historico[1]["enviado_field"] is False and historico[1]["ticket_tipo"] is None
    assert pagamentos[0]["valor_seguro"] == Decimal("890.00") and pagamentos[1]["valor_seguro"] is None

    # every value whose text changed is in the change log with its original text
    changed = {(entry["tabela"], entry["registro_id"], entry["campo"]): entry for entry in log}
    assert changed[("endereco", 12, "latitude")]["valor_anterior"] == "sem coordenada"
    assert changed[("endereco", 12, "latitude")]["valor_novo"] is None
    assert changed[("os", 21, "valor")]["valor_anterior"] == "45.900,00"
    assert changed[("pagamento", 41, "valor_seguro")]["valor_anterior"] == "R$ 890,00"
    assert changed[("os_status_historico", 31, "status")]["valor_novo"] == "instalacao"
    assert all(entry["origem"] == "migracao 0002" for entry in log)

    # the widened columns take what the legacy ones refused; utf8mb4 takes emoji
    with engine.begin() as conn:
        conn.execute(t.cliente.update().where(t.cliente.c.id == 7).values(nome="Maria " + "á" * 200 + " 🌞"))
        assert conn.execute(select(t.cliente.c.nome).where(t.cliente.c.id == 7)).scalar_one().endswith("🌞")

    again = migrate.upgrade(engine)
    assert again.action == "atual"
    engine.dispose()


def test_legacy_sent_ticket_in_os_field_id_is_not_sent_again(db_url):
    engine = make_engine(db_url, for_migrations=True)
    create_legacy(engine)
    with engine.begin() as conn:  # the first version created the ticket but never marked the row
        conn.execute(text("UPDATE os_status_historico SET enviado_field = 0 WHERE id = 31"))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(select(t.os_status_historico).where(t.os_status_historico.c.id == 31)).mappings().one()
    engine.dispose()
    assert row["enviado_field"] is True and row["ticket_field_id"] == "dGljazox"


def test_unknown_tables_are_refused_untouched(db_url):
    engine = make_engine(db_url, for_migrations=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE cliente (id INTEGER PRIMARY KEY, apelido VARCHAR(20))"))
    with pytest.raises(SyncError, match="falta a tabela endereco"):
        migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) == {"cliente"}
    engine.dispose()


def test_steps_refuse_a_database_that_is_not_current(db_url):
    from lib.errors import ConfigError

    engine = make_engine(db_url)
    with pytest.raises(ConfigError, match="00_schema_banco.py"):
        migrate.require_current(engine)
    engine.dispose()


def test_a_step_checks_the_revision_without_importing_alembic(migrated_db):
    """Alembic (with Mako and Pygments) costs every step ≈0.15 s of CPU at start: only 00 needs it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; from lib.db import migrate; from lib.db.engine import make_engine; "
            f"migrate.require_current(make_engine({migrated_db!r})); "
            "print(migrate.head_revision(), migrate.current_revision(make_engine(" + repr(migrated_db) + ")), "
            "'alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate._alembic_config()).get_current_head()  # Alembic's own answer
    with make_engine(migrated_db).connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    assert out.split() == [head, head, "False"]


def test_a_database_before_its_first_migration_has_no_revision(db_url):
    assert migrate.current_revision(make_engine(db_url, for_migrations=True)) is None
