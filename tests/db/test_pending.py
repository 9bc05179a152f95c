"""lib/db/pending: one open item per (step, key), attempts counted, resolution, export."""

from __future__ import annotations

import json

from lib.db import pending


def test_record_retry_resolve_and_reopen(engine, tmp_path):
    with engine.begin() as conn:
        pending.record(conn, "02", "isales:4713", "documento inválido", isales_id=4713)
    with engine.begin() as conn:
        pending.record(conn, "02", "isales:4713", "documento inválido (de novo)", isales_id=4713)
        items = pending.open_items(conn, "02")
    assert len(items) == 1 and items[0]["tentativas"] == 2 and items[0]["motivo"] == "documento inválido (de novo)"

    with engine.begin() as conn:
        assert pending.resolve(conn, "02", ["isales:4713", "isales:9999"]) == 1
        assert pending.count_open(conn) == 0
        pending.record(conn, "02", "isales:4713", "voltou")
        assert pending.open_items(conn)[0]["tentativas"] == 1

    path = pending.export(engine, tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["contagens"] == {"total": 1, "por_etapa": {"02": 1}}
    assert data["pendencias"][0]["chave"] == "isales:4713"


def test_reasons_are_redacted(engine):
    with engine.begin() as conn:
        pending.record(conn, "01", "isales:1", "falhou em /clientes?api_token=segredo-1")
        assert "segredo-1" not in pending.open_items(conn)[0]["motivo"]


def test_export_writes_the_items_as_it_reads_them(engine, tmp_path):
    """A first load may leave thousands of open items: the file holds each, the process never all."""
    from lib.db.schema import pendencia
    from tests.memory import open_item, traced_peak

    peaks = {}
    for items in (300, 3000):
        with engine.begin() as conn:
            conn.execute(pendencia.delete())
            conn.execute(pendencia.insert(), [
                open_item("02" if n % 3 else "04", f"isales:{n}", f"projeto {n}: documento inválido " + "x" * 300, n)
                for n in range(items)])
        peaks[items] = traced_peak(lambda: pending.export(engine, tmp_path))
        data = json.loads((tmp_path / "pendencias.json").read_text(encoding="utf-8"))
        assert data["contagens"] == {"total": items, "por_etapa": {"02": items - (items + 2) // 3, "04": (items + 2) // 3}}
        assert [item["chave"] for item in data["pendencias"]] == (
            [f"isales:{n}" for n in range(items) if n % 3] + [f"isales:{n}" for n in range(items) if not n % 3])
    # 2,700 more items cost ≈ 9 MB when listed, then dumped whole; streamed, they are not held
    assert peaks[3000] - peaks[300] < 600_000, peaks
