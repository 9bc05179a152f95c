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
