"""The floor of step 03 on SQLite: the same rows (built from the data/02 file) inserted with one raw
`executemany` per table in one transaction, into a fresh database with the same schema and pragmas."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lib.db.schema as t
from lib.db import migrate
from lib.db.engine import make_engine
from lib.jsonfiles import read_envelope
from lib.status import describe_move
from lib.steps.local_input import address_key, read_projects

TABLES = ("cliente", "endereco", "os", "pagamento", "os_status_historico")


def build_rows(file_02: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows step 03 writes on a first run: one client per document, one address per client and
    address key, one os, payment and first history row per project (ids assigned here)."""
    batch = read_projects(read_envelope(file_02, "02", produced_by="02_tratar_dados_clientes.py"))
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    stamps = {"criado_em": now, "atualizado_em": now}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    clientes: dict[str, int] = {}
    enderecos: dict[tuple, int] = {}
    for project in batch.projects:
        doc = project.cliente["doc_pessoal"]
        if doc not in clientes:
            clientes[doc] = len(clientes) + 1
            rows["cliente"].append({"id": clientes[doc], **project.cliente, **stamps})
        cliente_id = clientes[doc]
        endereco_id = None
        if project.endereco is not None:
            key = (doc, address_key(project.endereco))
            if key not in enderecos:
                enderecos[key] = len(enderecos) + 1
                rows["endereco"].append({"id": enderecos[key], **project.endereco, "cliente_id": cliente_id,
                                         **stamps})
            endereco_id = enderecos[key]
        os_id = len(rows["os"]) + 1
        rows["os"].append({"id": os_id, **project.os, "coluna_id": project.coluna_id, "status": project.status,
                           "isales_id": project.isales_id, "cliente_id": cliente_id, "endereco_id": endereco_id,
                           "detalhes_em": project.obtido_em, **stamps})
        if project.pagamento is not None:
            rows["pagamento"].append({"id": len(rows["pagamento"]) + 1, **project.pagamento, "os_id": os_id,
                                      **stamps})
        rows["os_status_historico"].append({
            "id": os_id, "os_id": os_id, "status": project.status, "coluna_id": project.coluna_id,
            "data_status": project.obtido_em or now, "enviado_field": False,
            "observacao": describe_move(None, None, project.status, project.coluna_id)})
    return rows


def _plain(value: Any) -> Any:
    """What the sqlite3 driver takes (SQLAlchemy would convert these the same way)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if hasattr(value, "as_tuple"):  # Decimal: SQLite stores NUMERIC as REAL
        return float(value)
    return value


def measure(file_02: Path, workdir: Path) -> dict[str, Any]:
    """Insert the rows of `file_02` into a fresh SQLite database; the rows and the seconds it took."""
    rows = build_rows(file_02)
    path = workdir / "executemany.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    setup = make_engine(url, for_migrations=True)
    migrate.upgrade(setup)
    setup.dispose()
    engine = make_engine(url)
    statements = []
    for name in TABLES:
        if not rows[name]:
            continue
        table = t.metadata.tables[name]
        columns = list(rows[name][0])
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")
        statements.append((sql, [tuple(_plain(row.get(c)) for c in columns) for row in rows[name]]))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        cursor.execute("BEGIN IMMEDIATE")
        for sql, values in statements:
            cursor.executemany(sql, values)
        cursor.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    count = sum(len(values) for _sql, values in statements)
    return {"linhas": count, "por_tabela": {name: len(rows[name]) for name in TABLES},
            "tempo_s": round(seconds, 4), "linhas_por_s": round(count / seconds, 1) if seconds else None}
