"""Rows as step 03 writes them (cliente, endereco, os, pagamento, os_status_historico), for the
tests of step 04; and readers of what step 04 wrote."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

import lib.db.schema as t

COLUMNS = {"instalacao": 17840, "aumento": 20024, "cancelado": 20363, "outro": 16001}


def make_cpf(n: int) -> str:
    """A valid CPF built from a number (distinct numbers → distinct CPFs)."""
    base = [int(c) for c in f"{(n * 7919 + 100_000_003) % 1_000_000_000:09d}"]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(base, range(size + 1, 1, -1)))
        base.append((total * 10 % 11) % 10)
    return "".join(map(str, base))


def add_event(conn, os_id: int, status: str, *, when: datetime | None = None) -> int:
    """A status change of a project, as step 03 records it (and the os row follows it)."""
    hist = t.os_status_historico
    last = conn.execute(select(hist.c.status, hist.c.coluna_id).where(hist.c.os_id == os_id)
                        .order_by(hist.c.id.desc()).limit(1)).first()
    result = conn.execute(hist.insert().values(
        os_id=os_id, status=status, coluna_id=COLUMNS[status], data_status=when or datetime(2025, 3, 14, 10, 0),
        status_anterior=last.status if last else None, coluna_anterior=last.coluna_id if last else None,
        observacao="movido no teste", enviado_field=False))
    conn.execute(t.os.update().where(t.os.c.id == os_id).values(status=status, coluna_id=COLUMNS[status]))
    return int(result.inserted_primary_key[0])


def add_project(conn, isales_id: int | str, *, statuses: tuple[str, ...] = ("instalacao",), nome: str = "Maria da Silva",
                doc: str | None = None, coords: bool = True, cep: str = "01310100",
                logradouro: str = "Avenida Paulista", numero: str | None = None, complemento: str | None = None,
                estado: str = "SP", telefone: str | None = "11987654321", telefone_secundario: str | None = "1134567890",
                email: str | None = "maria.silva@example.com", valor: str = "45900.00") -> dict:
    """One project (reusing the client of the same document) with its history of `statuses`."""
    doc = doc or make_cpf(int(isales_id))
    now = datetime(2025, 3, 14, 12, 0)
    row = conn.execute(select(t.cliente.c.id).where(t.cliente.c.doc_pessoal == doc)).first()
    if row:
        cliente_id = row.id
    else:
        cliente_id = conn.execute(t.cliente.insert().values(
            nome=nome, doc_pessoal=doc, email=email, telefone=telefone, telefone_secundario=telefone_secundario,
            criado_em=now, atualizado_em=now)).inserted_primary_key[0]
    endereco_id = conn.execute(t.endereco.insert().values(
        cep=cep, logradouro=logradouro, numero=numero or str(100 + int(isales_id) % 900), complemento=complemento,
        bairro="Bela Vista", cidade="São Paulo", estado=estado, link_localizacao="https://maps.google.com/?q=-23.56,-46.65",
        latitude=Decimal("-23.5614000") if coords else None, longitude=Decimal("-46.6559000") if coords else None,
        fonte_coordenadas="link" if coords else None, cliente_id=cliente_id, criado_em=now, atualizado_em=now,
    )).inserted_primary_key[0]
    os_id = conn.execute(t.os.insert().values(
        isales_id=str(isales_id), coluna_id=COLUMNS[statuses[0]], status=statuses[0], vendedor="João Souza",
        data_fechamento=datetime(2025, 3, 14, 10, 22), modulos="20x Módulo 550W", inversor1="Inversor 8kW Híbrido",
        valor=Decimal(valor), observacoes="Telhado cerâmico", acesso="Escada necessária; Cão no local",
        cliente_id=cliente_id, endereco_id=endereco_id, criado_em=now, atualizado_em=now, detalhes_em=now,
    )).inserted_primary_key[0]
    conn.execute(t.pagamento.insert().values(
        os_id=os_id, forma_pgto="FINANCIAMENTO", responsavel_financiamento=nome, valor_seguro=Decimal("890.00"),
        observacoes="Entrada de 10% + 60x", criado_em=now, atualizado_em=now))
    events = [add_event(conn, os_id, status) for status in statuses]
    return {"os_id": os_id, "cliente_id": cliente_id, "endereco_id": endereco_id, "events": events, "doc": doc}


def history(conn, os_id: int) -> list[dict]:
    hist = t.os_status_historico
    return [dict(r) for r in conn.execute(select(hist).where(hist.c.os_id == os_id).order_by(hist.c.id)).mappings()]


def actions(conn) -> dict[str, dict]:
    return {r["chave"]: dict(r) for r in conn.execute(select(t.acao_field)).mappings()}


def open_pending(conn, step: str = "04") -> dict[str, str]:
    rows = conn.execute(select(t.pendencia.c.chave, t.pendencia.c.motivo)
                        .where(t.pendencia.c.etapa == step, t.pendencia.c.resolvida_em.is_(None)))
    return {r.chave: r.motivo for r in rows}


def count(conn, table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def dump(conn) -> dict[str, list]:
    """Every row of every table except the run log (for "changed nothing" comparisons)."""
    result = {}
    for table in t.metadata.sorted_tables:
        if table.name == "execucao":
            continue
        result[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
    return result
