"""Step 03 (lib/steps/local_sync.py): upserts, client merge, address identity, status history,
change log, pending projects and the legacy database, on SQLite and MySQL/MariaDB."""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import json
import re
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, func, insert, select

import lib.db.schema as t
from lib import config
from lib.db import migrate, pending, runs
from lib.db.engine import make_engine
from lib.errors import RecordError
from lib.jsonfiles import FILE_02, write_envelope
from lib.run import RunContext, Summary
from lib.steps import local_merge, local_sync
from lib.steps.local_input import (
    CLIENTE_FIELDS,
    ENDERECO_FIELDS,
    address_key,
    address_signature,
    client_signature,
    parse_project,
)
from tests.db.legacy import create_legacy

MARIA, JOSE, AGRO = "52998224725", "11144477735", "11222333000181"
INSTALACAO, AUMENTO, CANCELADO, OUTRA = 17840, 20024, 20363, 16001
STATUS = {INSTALACAO: "instalacao", AUMENTO: "aumento", CANCELADO: "cancelado", OUTRA: "outro"}
DOMAIN = ("cliente", "endereco", "os", "pagamento", "os_status_historico", "alteracao")
COLUMNS_ENV = {"ISALES_COLUNA_INSTALACAO": str(INSTALACAO), "ISALES_COLUNA_AUMENTO": str(AUMENTO),
               "ISALES_COLUNA_CANCELADO": str(CANCELADO)}


# --------------------------------------------------------------------------- input builders

def projeto(isales_id, *, coluna=INSTALACAO, obtido="2026-11-29T13:00:01Z", cliente=None, endereco=None,
            os=None, pagamento=None) -> dict:
    """A project of data/02_projetos_tratados.json (docs/design.md §5); sections are merged in."""
    base = {
        "isales_id": str(isales_id), "coluna_id": coluna, "status": STATUS[coluna], "obtido_em": obtido,
        "cliente": {"nome": "Maria da Silva", "doc_pessoal": MARIA, "tipo_documento": "cpf",
                    "email": "maria.silva@example.com", "telefone": "11987654321",
                    "telefone_secundario": "1134567890"},
        "endereco": {"cep": "01310100", "logradouro": "Avenida Paulista", "numero": "1000", "complemento": "ap 12",
                     "bairro": "Bela Vista", "cidade": "São Paulo", "estado": "SP",
                     "link_localizacao": "https://maps.app.goo.gl/AbCdEf123", "latitude": "-23.5614000",
                     "longitude": "-46.6559000", "fonte_coordenadas": "link"},
        "os": {"vendedor": "João Souza", "data_fechamento": "2025-03-14T10:22:00", "modulos": "12x Módulo 550W",
               "inversor1": "Inversor 5kW", "inversor2": None, "inversor3": None, "valor": "45900.00",
               "observacoes": "Telhado cerâmico", "acesso": ["Escada necessária", "Cão no local"]},
        "pagamento": {"forma_pgto": "FINANCIAMENTO", "responsavel_financiamento": "Maria da Silva",
                      "valor_seguro": "890.00", "observacoes": "Entrada de 10% + 60x"},
        "avisos": [], "bruto": {},
    }
    for name, section in (("cliente", cliente), ("endereco", endereco), ("os", os), ("pagamento", pagamento)):
        if section is not None:
            base[name].update(section)
    return base


def movimento(isales_id, coluna) -> dict:
    return {"isales_id": str(isales_id), "coluna_id": coluna, "status": STATUS[coluna]}


def sync(engine, tmp_path, projetos, movimentos=(), *, ids=None) -> RunContext:
    """Write an 02 file and run step 03's body on it, as run_step does (run row included)."""
    data_dir = tmp_path / "data"
    write_envelope(data_dir / FILE_02, "02", 1, {
        "origem": {"execucao_id_01": 1, "gerado_em_01": "2026-11-29T13:00:00Z"}, "contagens": {},
        "projetos": copy.deepcopy(list(projetos)), "movimentos": list(movimentos), "pendencias": []})
    settings = config.load("colunas", environ={"DATA_DIR": str(data_dir), **COLUMNS_ENV})
    ctx = RunContext(step="03", settings=settings, args=argparse.Namespace(arquivo=None, ids=ids),
                     summary=Summary(), engine=engine, run_id=runs.start(engine, "03"))
    local_sync.run(ctx)
    return ctx


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar_one()
                for name in DOMAIN}


def rows(engine, table, *where, order=None) -> list[dict]:
    with engine.connect() as conn:
        query = select(table).where(*where).order_by(order if order is not None else table.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def history(engine, isales_id) -> list[tuple]:
    with engine.connect() as conn:
        return [(h["status_anterior"], h["coluna_anterior"], h["status"], h["coluna_id"])
                for h in local_sync.history_of(conn, isales_id)]


@contextmanager
def domain_writes(engine):
    """Counts the rows inserted/updated/deleted in the domain tables while the block runs."""
    written: Counter = Counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        match = re.match(r"\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+[`\"]?(\w+)", statement, re.I)
        if match and match.group(2) in DOMAIN:
            rowcount = cursor.rowcount if cursor.rowcount >= 0 else len(parameters)
            written[match.group(2)] += rowcount

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield written
    finally:
        event.remove(engine, "after_cursor_execute", after)


# --------------------------------------------------------------------------- parsing (no database)

def test_address_key_ignores_accents_case_punctuation_and_mask():
    a = {"cep": "01310-100", "logradouro": "Avenida  Paulista", "numero": "1000", "complemento": "Ap. 12"}
    b = {"cep": "01310100", "logradouro": "avenida paulista", "numero": "1000", "complemento": "ap 12"}
    assert address_key(a) == address_key(b)
    assert address_key({**b, "logradouro": "Avenida Paulísta"}) == address_key(b)
    assert address_key({**b, "numero": "1001"}) != address_key(b)
    assert address_key({**b, "complemento": None}) != address_key(b)


def test_parse_project_types_values_and_names_bad_fields():
    parsed = parse_project(projeto(4711))
    assert parsed.os["valor"] == Decimal("45900.00") and parsed.os["acesso"] == "Escada necessária; Cão no local"
    assert parsed.os["data_fechamento"] == datetime(2025, 3, 14, 10, 22)
    assert parsed.obtido_em == datetime(2026, 11, 29, 13, 0, 1)
    assert parsed.endereco["latitude"] == Decimal("-23.5614000")
    with pytest.raises(RecordError, match=r"projeto 4711 \(Maria da Silva\): campo os.data_fechamento"):
        parse_project(projeto(4711, os={"data_fechamento": "2025-02-30"}))
    with pytest.raises(RecordError, match="os.valor"):
        parse_project(projeto(4711, os={"valor": "quarenta mil"}))
    with pytest.raises(RecordError, match=r"campo pagamento.valor_seguro = '-890.00' é negativo"):
        parse_project(projeto(4711, pagamento={"valor_seguro": "-890.00"}))
    with pytest.raises(RecordError, match="os.valor = '1,234' não é um valor em reais"):
        parse_project(projeto(4711, os={"valor": "1,234"}))
    with pytest.raises(RecordError, match="latitude"):
        parse_project(projeto(4711, endereco={"latitude": "-123.5"}))
    with pytest.raises(RecordError, match="status 'aprovado' desconhecido"):
        parse_project({**projeto(4711), "status": "aprovado"})
    with pytest.raises(RecordError, match="sem CPF/CNPJ"):
        parse_project(projeto(4711, cliente={"doc_pessoal": None}))


# --------------------------------------------------------------------------- database

def test_new_projects_fill_every_table(engine, tmp_path):
    ctx = sync(engine, tmp_path, [
        projeto(4711),
        projeto(4712, coluna=AUMENTO, cliente={"nome": "José Lima", "doc_pessoal": JOSE, "email": None},
                endereco={"cep": "75900000", "logradouro": "Rodovia GO-174", "numero": "s/n", "complemento": None},
                pagamento={"forma_pgto": "À VISTA", "responsavel_financiamento": None, "valor_seguro": None}),
    ])
    assert counts(engine) == {"cliente": 2, "endereco": 2, "os": 2, "pagamento": 2,
                              "os_status_historico": 2, "alteracao": 0}
    os_row = rows(engine, t.os, t.os.c.isales_id == "4711")[0]
    cliente = rows(engine, t.cliente, t.cliente.c.id == os_row["cliente_id"])[0]
    endereco = rows(engine, t.endereco, t.endereco.c.id == os_row["endereco_id"])[0]
    pagamento = rows(engine, t.pagamento, t.pagamento.c.os_id == os_row["id"])[0]
    assert cliente["doc_pessoal"] == MARIA and cliente["nome"] == "Maria da Silva"
    assert endereco["cliente_id"] == cliente["id"] and endereco["longitude"] == Decimal("-46.6559000")
    assert os_row["valor"] == Decimal("45900.00") and os_row["acesso"] == "Escada necessária; Cão no local"
    assert os_row["status"] == "instalacao" and os_row["coluna_id"] == INSTALACAO
    assert os_row["data_fechamento"] == datetime(2025, 3, 14, 10, 22)
    assert os_row["detalhes_em"] == datetime(2026, 11, 29, 13, 0, 1)
    assert pagamento["valor_seguro"] == Decimal("890.00")
    first = rows(engine, t.os_status_historico, t.os_status_historico.c.os_id == os_row["id"])
    assert [(h["status_anterior"], h["coluna_anterior"], h["status"], h["coluna_id"]) for h in first] == [
        (None, None, "instalacao", INSTALACAO)]
    assert first[0]["enviado_field"] is False and first[0]["execucao_id"] == ctx.run_id
    assert first[0]["observacao"] == "Projeto visto pela primeira vez na coluna 17840 (aprovado para instalação)."
    assert history(engine, 4712) == [(None, None, "aumento", AUMENTO)]
    assert ctx.summary.as_dict() == {kind: {"criados": 2} for kind in
                                     ("cliente", "endereco", "os", "pagamento", "historico")}


def test_identical_rerun_writes_nothing(engine, tmp_path):
    projects = [projeto(4711), projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "José"}, coluna=CANCELADO)]
    sync(engine, tmp_path, projects)
    before = counts(engine)
    stored = rows(engine, t.os)
    with domain_writes(engine) as written:
        ctx = sync(engine, tmp_path, projects)
    assert dict(written) == {}
    assert counts(engine) == before and rows(engine, t.os) == stored
    assert ctx.summary.total("atualizados") == 0 and ctx.summary.total("criados") == 0
    assert ctx.summary.counts["os"]["sem_alteracao"] == 2


def test_edits_land_in_the_change_log(engine, tmp_path):
    sync(engine, tmp_path, [projeto(4711)])
    os_row = rows(engine, t.os)[0]
    with engine.begin() as conn:  # step 04 had created the location of this address
        conn.execute(t.endereco.update().values(location_field_id="TG9jOjE="))
    ctx = sync(engine, tmp_path, [projeto(
        4711, obtido="2026-12-01T09:00:00Z",
        endereco={"logradouro": "Rua Augusta", "numero": "500", "complemento": None, "bairro": "Consolação",
                  "latitude": None, "longitude": None, "fonte_coordenadas": None},
        os={"valor": "47500.5", "inversor2": "Inversor 3kW", "acesso": ["Escada necessária"]},
        pagamento={"forma_pgto": "PIX", "valor_seguro": "0"},
        cliente={"email": "maria@novo.example.com"})])
    log = {(a["tabela"], a["campo"]): (a["valor_anterior"], a["valor_novo"])
           for a in rows(engine, t.alteracao)}
    assert log == {
        ("cliente", "email"): ("maria.silva@example.com", "maria@novo.example.com"),
        # the only os of this address: the address is edited in place, its FieldControl location reset
        ("endereco", "logradouro"): ("Avenida Paulista", "Rua Augusta"),
        ("endereco", "numero"): ("1000", "500"),
        ("endereco", "complemento"): ("ap 12", None),
        ("endereco", "bairro"): ("Bela Vista", "Consolação"),
        ("endereco", "latitude"): ("-23.5614000", None),
        ("endereco", "longitude"): ("-46.6559000", None),
        ("endereco", "fonte_coordenadas"): ("link", None),
        ("endereco", "location_field_id"): ("TG9jOjE=", None),
        ("os", "valor"): ("45900.00", "47500.50"),
        ("os", "inversor2"): (None, "Inversor 3kW"),
        ("os", "acesso"): ("Escada necessária; Cão no local", "Escada necessária"),
        ("pagamento", "forma_pgto"): ("FINANCIAMENTO", "PIX"),
        ("pagamento", "valor_seguro"): ("890.00", "0.00"),
    }
    entries = rows(engine, t.alteracao)
    assert {(a["execucao_id"], a["origem"]) for a in entries} == {(ctx.run_id, "03")}
    assert counts(engine)["endereco"] == 1 and counts(engine)["os_status_historico"] == 1
    after = rows(engine, t.os)[0]
    assert after["endereco_id"] == os_row["endereco_id"]
    assert after["detalhes_em"] == datetime(2026, 12, 1, 9, 0) and after["atualizado_em"] is not None
    assert ctx.summary.counts["os"]["atualizados"] == 1 and ctx.summary.counts["endereco"]["atualizados"] == 1


def test_listing_fingerprint_is_kept_as_bookkeeping(engine, tmp_path):
    first = projeto(4711)
    first["listagem"] = "a" * 40
    sync(engine, tmp_path, [first])
    assert rows(engine, t.os)[0]["listagem_hash"] == "a" * 40
    second = projeto(4711, obtido="2026-12-05T10:00:00Z")
    second["listagem"] = "b" * 40
    with domain_writes(engine) as written:
        ctx = sync(engine, tmp_path, [second])
    assert dict(written) == {"os": 1} and ctx.summary.counts["os"] == {"sem_alteracao": 1}
    assert rows(engine, t.os)[0]["listagem_hash"] == "b" * 40 and counts(engine)["alteracao"] == 0
    sync(engine, tmp_path, [projeto(4711, obtido="2026-12-06T10:00:00Z")])  # an 02 file from before: kept
    assert rows(engine, t.os)[0]["listagem_hash"] == "b" * 40


def test_refetch_without_changes_only_moves_detalhes_em(engine, tmp_path):
    sync(engine, tmp_path, [projeto(4711)])
    with domain_writes(engine) as written:
        # the proposal came empty this time ({} in iSales): an empty value never erases a stored one
        ctx = sync(engine, tmp_path, [projeto(4711, obtido="2026-12-05T10:00:00Z", pagamento={"observacoes": None},
                                              cliente={"telefone_secundario": None}, os={"modulos": None, "valor": None, "inversor1": None})])
    assert dict(written) == {"os": 1}
    assert rows(engine, t.os)[0]["modulos"] == "12x Módulo 550W"
    assert rows(engine, t.os)[0]["detalhes_em"] == datetime(2026, 12, 5, 10, 0)
    assert counts(engine)["alteracao"] == 0 and ctx.summary.counts["os"] == {"sem_alteracao": 1}
    # an older 02 file never moves a project back
    ctx = sync(engine, tmp_path, [projeto(4711, coluna=CANCELADO, obtido="2026-11-01T00:00:00Z")])
    assert history(engine, 4711) == [(None, None, "instalacao", INSTALACAO)]
    assert ctx.summary.counts["os"] == {"ignorados": 1} and ctx.summary.warnings


def test_a_value_removed_in_isales_is_erased_when_its_source_came(engine, tmp_path):
    present = {"cliente": {"nome": "Maria"}, "proposta": {"inv_descricao": "Inversor 5kW"},
               "campos": {"FORMA DE PAGAMENTO": "FINANCIAMENTO"}}
    first = projeto(4711, os={"inversor2": "Inversor 3kW"})
    first["bruto"] = present
    sync(engine, tmp_path, [first])
    # the second inverter was taken out of the proposal, the payment notes out of the custom fields
    edited = projeto(4711, obtido="2026-12-01T09:00:00Z", os={"inversor2": None}, pagamento={"observacoes": None})
    edited["bruto"] = present
    sync(engine, tmp_path, [edited])
    assert rows(engine, t.os)[0]["inversor2"] is None
    assert rows(engine, t.pagamento)[0]["observacoes"] is None
    log = {(a["tabela"], a["campo"]): (a["valor_anterior"], a["valor_novo"]) for a in rows(engine, t.alteracao)}
    assert log == {("os", "inversor2"): ("Inversor 3kW", None),
                   ("pagamento", "observacoes"): ("Entrada de 10% + 60x", None)}
    # the proposal itself came empty ({} in iSales): nothing of it is erased
    missing = projeto(4711, obtido="2026-12-02T09:00:00Z", os={"modulos": None, "valor": None, "inversor1": None},
                      pagamento={"observacoes": None})
    missing["bruto"] = {**present, "proposta": {}}
    sync(engine, tmp_path, [missing])
    assert rows(engine, t.os)[0]["modulos"] == "12x Módulo 550W" and counts(engine)["alteracao"] == 2


def test_same_document_shares_one_cliente_and_addresses_follow_identity(engine, tmp_path):
    projects = [
        projeto(4711, obtido="2026-11-29T13:00:05Z", cliente={"nome": "Maria S.", "email": None, "telefone": None}),
        # the same address, written differently, with coordinates of another source
        projeto(4712, obtido="2026-11-29T13:00:03Z", cliente={"nome": "Maria da Silva", "telefone": "11911112222"},
                endereco={"logradouro": "AVENIDA PAULISTA", "complemento": "Ap. 12", "bairro": None,
                          "link_localizacao": None, "latitude": "-23.5600000", "longitude": "-46.6500000",
                          "fonte_coordenadas": "cep"}),
        projeto(4713, obtido="2026-11-29T13:00:02Z", endereco={"logradouro": "Rua das Flores", "numero": "7"}),
    ]
    ctx = sync(engine, tmp_path, projects)
    with domain_writes(engine) as written:  # the shared rows are not rewritten back and forth
        again = sync(engine, tmp_path, projects)
    assert dict(written) == {}
    assert again.summary.counts["cliente"] == {"sem_alteracao": 1}
    assert again.summary.counts["endereco"] == {"sem_alteracao": 2}
    clientes = rows(engine, t.cliente)
    # the latest fetch wins; an empty value of it does not erase the other project's e-mail
    assert [(c["nome"], c["email"], c["telefone"]) for c in clientes] == [
        ("Maria S.", "maria.silva@example.com", "11911112222")]
    oss = {o["isales_id"]: o for o in rows(engine, t.os)}
    assert {o["cliente_id"] for o in oss.values()} == {clientes[0]["id"]}
    assert oss["4711"]["endereco_id"] == oss["4712"]["endereco_id"] != oss["4713"]["endereco_id"]
    assert ctx.summary.counts["cliente"] == {"criados": 1}
    assert ctx.summary.counts["endereco"] == {"criados": 2}
    shared = rows(engine, t.endereco, t.endereco.c.id == oss["4711"]["endereco_id"])[0]
    assert (shared["logradouro"], shared["latitude"], shared["fonte_coordenadas"], shared["bairro"]) == (
        "Avenida Paulista", Decimal("-23.5614000"), "link", "Bela Vista")

    # 4712's address edited in iSales: the row is shared with 4711, so 4712 gets a new one
    later = "2026-12-01T00:00:00Z"
    sync(engine, tmp_path, [projeto(4712, obtido=later, endereco={"numero": "1002"})])
    moved = rows(engine, t.os, t.os.c.isales_id == "4712")[0]
    assert moved["endereco_id"] not in (oss["4711"]["endereco_id"], oss["4713"]["endereco_id"])
    assert rows(engine, t.endereco, t.endereco.c.id == oss["4711"]["endereco_id"])[0]["numero"] == "1000"
    # 4713 moves to 4711's address: that row is reused, 4713's old row is left alone
    sync(engine, tmp_path, [projeto(4713, obtido=later)])
    assert rows(engine, t.os, t.os.c.isales_id == "4713")[0]["endereco_id"] == oss["4711"]["endereco_id"]
    assert counts(engine)["endereco"] == 3
    log = {(a["tabela"], a["registro_id"], a["campo"]) for a in rows(engine, t.alteracao)}
    assert ("os", oss["4712"]["id"], "endereco_id") in log and ("os", oss["4713"]["id"], "endereco_id") in log


def test_an_edit_on_one_card_is_not_undone_by_the_other_cards_copy(engine, tmp_path):
    older = projeto(4711, obtido="2026-11-29T13:00:01Z")
    newer = projeto(4712, obtido="2026-11-29T13:00:02Z", endereco={"numero": "2000"})
    sync(engine, tmp_path, [older, newer])
    # the e-mail is corrected on the older card only; both cards are fetched again, the newer last
    edited = projeto(4711, obtido="2026-12-01T10:00:01Z", cliente={"email": "maria@corrigido.example.com"})
    unchanged = projeto(4712, obtido="2026-12-01T10:00:09Z", endereco={"numero": "2000"})
    sync(engine, tmp_path, [edited, unchanged])
    assert rows(engine, t.cliente)[0]["email"] == "maria@corrigido.example.com"
    with domain_writes(engine) as written:  # the two copies now disagree: nothing flips back and forth
        sync(engine, tmp_path, [edited, unchanged])
        sync(engine, tmp_path, [unchanged])
    assert dict(written) == {}
    assert rows(engine, t.cliente)[0]["email"] == "maria@corrigido.example.com"


def test_a_shared_address_is_not_flipped_by_refreshing_one_card_at_a_time(engine, tmp_path):
    # two cards of one client at one address, with different map links (hence coordinates)
    older = projeto(4711, obtido="2026-11-29T13:00:01Z")
    newer = projeto(4712, obtido="2026-11-29T13:00:02Z", endereco={
        "link_localizacao": "https://maps.app.goo.gl/OutroLink9", "latitude": "-23.5600000",
        "longitude": "-46.6500000", "fonte_coordenadas": "endereco"})
    sync(engine, tmp_path, [older])
    sync(engine, tmp_path, [newer])
    shared = rows(engine, t.endereco)
    assert len(shared) == 1 and shared[0]["link_localizacao"] == "https://maps.app.goo.gl/OutroLink9"
    logged = len(rows(engine, t.alteracao))
    # step 01's rolling refresh fetches only the older card again, unchanged: the row stays
    refetched = projeto(4711, obtido="2026-12-01T10:00:01Z")
    with domain_writes(engine) as written:
        sync(engine, tmp_path, [refetched])
        sync(engine, tmp_path, [refetched, projeto(4712, obtido="2026-12-01T10:00:02Z", endereco=newer["endereco"])])
    assert set(written) <= {"os"}  # only detalhes_em and the fingerprints move
    assert rows(engine, t.endereco) == shared
    assert len(rows(engine, t.alteracao)) == logged
    # an edit of the link on either card still wins, and a later refresh of the other card keeps it
    def located(link, latitude, longitude):
        return {"link_localizacao": link, "latitude": latitude, "longitude": longitude, "fonte_coordenadas": "link"}

    first = located("https://maps.app.goo.gl/Corrigido1", "-23.5700000", "-46.6700000")
    second = located("https://maps.app.goo.gl/Corrigido2", "-23.5800000", "-46.6800000")
    steps = [(projeto(4711, obtido="2026-12-02T10:00:00Z", endereco=first),
              projeto(4712, obtido="2026-12-02T10:00:01Z", endereco=newer["endereco"]), first),
             (projeto(4712, obtido="2026-12-03T10:00:00Z", endereco=second),
              projeto(4711, obtido="2026-12-03T10:00:01Z", endereco=first), second)]
    for edited, other, expected in steps:
        sync(engine, tmp_path, [edited])
        sync(engine, tmp_path, [other])
        assert len(rows(engine, t.endereco)) == 1
        row = rows(engine, t.endereco)[0]
        assert (row["link_localizacao"], row["latitude"], row["longitude"], row["fonte_coordenadas"]) == (
            expected["link_localizacao"], Decimal(expected["latitude"]), Decimal(expected["longitude"]), "link")


def test_an_address_of_one_card_is_healed_by_its_unchanged_copy(engine, tmp_path):
    sync(engine, tmp_path, [projeto(4711)])
    with engine.begin() as conn:  # what a legacy tool left: FieldControl refuses a spelled-out state
        conn.execute(t.endereco.update().values(estado="São Paulo"))
    sync(engine, tmp_path, [projeto(4711, obtido="2026-12-01T10:00:00Z")])
    assert rows(engine, t.endereco)[0]["estado"] == "SP"


def test_move_sequences_write_one_history_row_per_move_in_order(engine, tmp_path):
    steps = [INSTALACAO, CANCELADO, INSTALACAO, AUMENTO]
    for day, coluna in enumerate(steps, start=1):
        sync(engine, tmp_path, [projeto(4711, coluna=coluna, obtido=f"2026-12-0{day}T10:00:00Z")])
        sync(engine, tmp_path, [projeto(4711, coluna=coluna, obtido=f"2026-12-0{day}T10:00:00Z")])  # no-op
    # out to another column (01 lists it as a movement) and back
    sync(engine, tmp_path, [], [movimento(4711, OUTRA)])
    sync(engine, tmp_path, [], [movimento(4711, OUTRA)])
    sync(engine, tmp_path, [projeto(4711, coluna=AUMENTO, obtido="2026-12-09T10:00:00Z")])
    assert history(engine, 4711) == [
        (None, None, "instalacao", INSTALACAO),
        ("instalacao", INSTALACAO, "cancelado", CANCELADO),
        ("cancelado", CANCELADO, "instalacao", INSTALACAO),
        ("instalacao", INSTALACAO, "aumento", AUMENTO),
        ("aumento", AUMENTO, "outro", OUTRA),
        ("outro", OUTRA, "aumento", AUMENTO),
    ]
    events = rows(engine, t.os_status_historico)
    assert [e["data_status"].day for e in events[:4]] == [1, 2, 3, 4]
    assert events[4]["observacao"] == ("Projeto movido da coluna 20024 (aumento de sistema) "
                                       "para a coluna 16001 (outra coluna do funil).")
    assert len({e["execucao_id"] for e in events}) == 6 and not any(e["enviado_field"] for e in events)
    os_row = rows(engine, t.os)[0]
    assert (os_row["status"], os_row["coluna_id"]) == ("aumento", AUMENTO)
    # a movement of a project never stored is ignored
    ctx = sync(engine, tmp_path, [], [movimento(9999, CANCELADO)])
    assert ctx.summary.counts["movimento"] == {"ignorados": 1} and counts(engine)["os"] == 1


def test_rows_from_fieldcontrol_are_not_column_moves(engine, tmp_path):
    """A task status FieldControl reported (origem='fieldcontrol') is history, not the card's column
    (a legacy os without its own column is judged by its last history row)."""
    sync(engine, tmp_path, [projeto(4711, obtido="2026-12-01T10:00:00Z")])
    os_id = rows(engine, t.os)[0]["id"]
    with engine.begin() as conn:
        conn.execute(t.os.update().values(status=None, coluna_id=None))
        conn.execute(insert(t.os_status_historico).values(os_id=os_id, status="done", origem="fieldcontrol",
                                                          data_status=datetime(2026, 12, 2)))
    sync(engine, tmp_path, [projeto(4711, obtido="2026-12-03T10:00:00Z")])  # same column: no move
    sync(engine, tmp_path, [projeto(4711, coluna=CANCELADO, obtido="2026-12-04T10:00:00Z")])
    assert history(engine, 4711) == [(None, None, "instalacao", INSTALACAO), (None, None, "done", None),
                                     ("instalacao", INSTALACAO, "cancelado", CANCELADO)]
    assert [h["origem"] for h in rows(engine, t.os_status_historico)] == ["isales", "fieldcontrol", "isales"]


def test_poisoned_projects_are_pending_while_the_rest_commit(engine, tmp_path):
    good, long_name, bad_date = projeto(4711), projeto(4712, cliente={"nome": "M" * 10_000, "doc_pessoal": JOSE}), \
        projeto(4713, cliente={"doc_pessoal": AGRO, "nome": "Solar Agro"}, os={"data_fechamento": "2025-13-45"})
    ctx = sync(engine, tmp_path, [long_name, good, bad_date])
    assert [o["isales_id"] for o in rows(engine, t.os)] == ["4711"]
    assert counts(engine)["cliente"] == 1
    with engine.connect() as conn:
        items = {i["chave"]: i["motivo"] for i in pending.open_items(conn, "03")}
    assert set(items) == {"isales:4712", "isales:4713"}
    assert "campo cliente.nome tem 10000 caracteres; o limite é 500" in items["isales:4712"]
    assert items["isales:4713"].startswith("projeto 4713 (Solar Agro): campo os.data_fechamento")
    assert ctx.summary.counts["os"] == {"criados": 1, "pendentes": 2}

    ctx = sync(engine, tmp_path, [projeto(4712, cliente={"nome": "Marcos", "doc_pessoal": JOSE}), good])
    with engine.connect() as conn:
        assert pending.open_keys(conn, "03") == {"isales:4713"}
    assert [o["isales_id"] for o in rows(engine, t.os)] == ["4711", "4712"]

    # known projects that fail again while moving: their data waits, their moves are history
    ctx = sync(engine, tmp_path, [
        projeto(4711, coluna=CANCELADO, obtido="2026-12-01T00:00:00Z", cliente={"nome": "M" * 10_000}),
        projeto(4712, coluna=AUMENTO, obtido="2026-12-01T00:00:00Z", os={"data_fechamento": "31/12/2025"},
                cliente={"nome": "Marcos", "doc_pessoal": JOSE})])
    assert history(engine, 4711)[-1] == ("instalacao", INSTALACAO, "cancelado", CANCELADO)
    assert history(engine, 4712)[-1] == ("instalacao", INSTALACAO, "aumento", AUMENTO)
    assert rows(engine, t.cliente, t.cliente.c.doc_pessoal == MARIA)[0]["nome"] == "Maria da Silva"
    assert rows(engine, t.os, t.os.c.isales_id == "4711")[0]["detalhes_em"] == datetime(2026, 11, 29, 13, 0, 1)
    with engine.connect() as conn:
        assert pending.open_keys(conn, "03") == {"isales:4711", "isales:4712", "isales:4713"}
    assert ctx.summary.counts["movimento"] == {"atualizados": 2}


def test_a_batch_is_written_in_bulk_and_committed_once(engine, tmp_path, monkeypatch):
    """10 new projects in batches of 4: three transactions, each with one INSERT per table."""
    monkeypatch.setattr(local_sync, "BATCH_SIZE", 4)
    projects = [projeto(5000 + n, cliente={"doc_pessoal": f"{n:011d}", "nome": f"Cliente {n}"},
                        endereco={"numero": str(n)}) for n in range(10)]
    inserts: Counter = Counter()
    commits = []

    def after(conn, cursor, statement, parameters, context, executemany):
        match = re.match(r"\s*INSERT\s+INTO\s+[`\"]?(\w+)", statement, re.I)
        if match and match.group(1) in DOMAIN:
            inserts[match.group(1)] += 1

    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", lambda conn: commits.append(1))
    try:
        ctx = sync(engine, tmp_path, projects)
    finally:
        event.remove(engine, "after_cursor_execute", after)
    assert counts(engine) == {"cliente": 10, "endereco": 10, "os": 10, "pagamento": 10,
                              "os_status_historico": 10, "alteracao": 0}
    assert dict(inserts) == {name: 3 for name in ("cliente", "endereco", "os", "pagamento", "os_status_historico")}
    assert len(commits) == 1 + 3  # the run row, then one per batch
    assert ctx.summary.counts["os"] == {"criados": 10}
    # every os points at its own client and address (ids taken ahead are the stored ones)
    by_id = {c["id"]: c for c in rows(engine, t.cliente)}
    addresses = {e["id"]: e for e in rows(engine, t.endereco)}
    for o in rows(engine, t.os):
        n = int(o["isales_id"]) - 5000
        assert by_id[o["cliente_id"]]["doc_pessoal"] == f"{n:011d}"
        assert addresses[o["endereco_id"]]["numero"] == str(n) and addresses[o["endereco_id"]]["cliente_id"] == o["cliente_id"]


def test_rows_shared_across_batches_are_found_and_a_failed_project_leaves_no_trace(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(local_sync, "BATCH_SIZE", 2)
    poisoned = projeto(4713, os={"modulos": "M" * 600})  # MARIA's too, between her two other cards
    projects = [projeto(4711), projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "José"}), poisoned,
                projeto(4714, obtido="2026-11-29T13:00:09Z", cliente={"email": "maria@novo.example.com"}),
                projeto(4715, cliente={"doc_pessoal": JOSE, "nome": "José"}, endereco={"numero": "7"})]
    ctx = sync(engine, tmp_path, projects)
    assert counts(engine) == {"cliente": 2, "endereco": 3, "os": 4, "pagamento": 4,
                              "os_status_historico": 4, "alteracao": 0}
    oss = {o["isales_id"]: o for o in rows(engine, t.os)}
    assert oss["4711"]["cliente_id"] == oss["4714"]["cliente_id"] != oss["4712"]["cliente_id"]
    assert oss["4711"]["endereco_id"] == oss["4714"]["endereco_id"]  # one address row, across batches
    assert [c["email"] for c in rows(engine, t.cliente)] == ["maria@novo.example.com", "maria.silva@example.com"]
    assert [o["id"] for o in rows(engine, t.os)] == [1, 2, 3, 4]  # the failed project's ids were reused
    with engine.connect() as conn:
        (item,) = pending.open_items(conn, "03")
    assert item["chave"] == "isales:4713" and "campo os.modulos tem 600 caracteres" in item["motivo"]
    assert ctx.summary.counts["os"] == {"criados": 4, "pendentes": 1}
    assert ctx.summary.counts["cliente"] == {"criados": 2}
    with domain_writes(engine) as written:
        sync(engine, tmp_path, [p for p in projects if p is not poisoned])
    assert dict(written) == {}


def test_a_database_refusal_rolls_back_only_that_project(engine, tmp_path, monkeypatch):
    def racing_progress(iterable, **_):  # another writer creates JOSE's client after the batch read
        with engine.begin() as other:
            other.execute(insert(t.cliente).values(nome="Outro", doc_pessoal=JOSE))
        return iterable

    monkeypatch.setattr(local_sync, "progress", racing_progress)
    ctx = sync(engine, tmp_path, [projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "José"}), projeto(4711)])
    assert [o["isales_id"] for o in rows(engine, t.os)] == ["4711"]
    with engine.connect() as conn:
        (item,) = pending.open_items(conn, "03")
    assert item["chave"] == "isales:4712" and "o banco recusou o registro" in item["motivo"]
    assert ctx.summary.counts["os"] == {"criados": 1, "pendentes": 1}


def test_legacy_database_keeps_its_rows_and_gets_history_only_on_moves(db_url, tmp_path):
    migrations = make_engine(db_url, for_migrations=True)
    create_legacy(migrations)
    migrate.upgrade(migrations)
    migrations.dispose()
    engine = make_engine(db_url)
    try:
        legacy_log = counts(engine)["alteracao"]
        maria = projeto(4711, endereco={"latitude": "-23.5614000", "longitude": "-46.6559000"},
                        os={"valor": "45900.00", "acesso": ["Escada necessária"], "inversor1": "Inversor 5kW",
                            "modulos": "12x Módulo 550W", "observacoes": "Telhado cerâmico"},
                        cliente={"email": "maria@example.com", "telefone_secundario": None})
        agro = projeto(4712, coluna=INSTALACAO, cliente={"nome": "Solar Agro Ltda", "doc_pessoal": AGRO},
                       endereco={"cep": "75900000", "logradouro": "Rodovia GO-174, km 12", "numero": "s/n",
                                 "complemento": None, "latitude": "-17.7923000", "longitude": "-50.9192000"})
        sync(engine, tmp_path, [maria, agro])
        assert [o["id"] for o in rows(engine, t.os)] == [21, 22]
        assert [c["id"] for c in rows(engine, t.cliente)] == [7, 9]
        assert [e["id"] for e in rows(engine, t.endereco)] == [11, 12]
        assert [p["id"] for p in rows(engine, t.pagamento)] == [41, 42]
        assert rows(engine, t.os, t.os.c.id == 21)[0]["tipo_servico"] == "U2VydjoxOjE="  # not ours: kept
        assert history(engine, 4711) == [(None, None, "instalacao", None)]  # the legacy row only
        assert history(engine, 4712)[-1] == ("cancelado", CANCELADO, "instalacao", INSTALACAO)
        assert len(history(engine, 4712)) == 3
        log = {(a["tabela"], a["registro_id"], a["campo"]) for a in rows(engine, t.alteracao)[legacy_log:]}
        assert ("endereco", 12, "latitude") in log and ("os", 22, "coluna_id") in log
        assert not any(entry[0] == "os" and entry[1] == 21 for entry in log)
        with domain_writes(engine) as written:
            sync(engine, tmp_path, [maria, agro])
        assert dict(written) == {}
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- hand-edited files (issue 12 §4)

def _open_03(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {i["chave"]: i["motivo"] for i in pending.open_items(conn, "03")}


def test_a_status_contradicting_its_column_is_refused_and_changes_nothing(engine, tmp_path):
    sync(engine, tmp_path, [projeto(4711), projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "José"})])
    before = counts(engine)
    # a person marked the installation card 'cancelado' by hand in the file: recorded as cancelled,
    # the cancellation dispensed and the installation ticket never sent
    edited = {**projeto(4711, obtido="2026-12-01T00:00:00Z"), "status": "cancelado"}
    new_one = {**projeto(4713, cliente={"doc_pessoal": AGRO, "nome": "Solar Agro"}), "status": "cancelado"}
    moved = {**movimento(4712, OUTRA), "status": "instalacao"}
    with domain_writes(engine) as written:
        ctx = sync(engine, tmp_path, [edited, new_one], [moved])
    assert sum(written.values()) == 0 and counts(engine) == before
    assert rows(engine, t.os, t.os.c.isales_id == "4711")[0]["status"] == "instalacao"
    assert history(engine, 4711) == [(None, None, "instalacao", INSTALACAO)]
    items = _open_03(engine)
    assert set(items) == {"isales:4711", "isales:4712", "isales:4713"}
    assert items["isales:4711"].startswith("projeto 4711: campo status 'cancelado' contradiz a coluna_id 17840, "
                                           "que pela configuração atual (ISALES_COLUNA_*) é 'instalacao'")
    assert "campo status 'instalacao' contradiz a coluna_id 16001" in items["isales:4712"]
    assert ctx.summary.counts["os"]["pendentes"] == 3

    sync(engine, tmp_path, [projeto(4711, coluna=CANCELADO, obtido="2026-12-02T00:00:00Z")])  # fixed
    assert history(engine, 4711)[-1] == ("instalacao", INSTALACAO, "cancelado", CANCELADO)
    assert "isales:4711" not in _open_03(engine)


@pytest.mark.parametrize("bad_id", ["05001", "abc", "-3", "", " 4711", "4711.0", 0, -3, 4711.0, True, None])
def test_a_non_canonical_isales_id_creates_no_phantom_project(engine, tmp_path, bad_id):
    # "05001" for project 5001 of the same customer made a second os and a second installation ticket
    ctx = sync(engine, tmp_path, [projeto(5001), {**projeto(5001), "isales_id": bad_id}])
    assert [o["isales_id"] for o in rows(engine, t.os)] == ["5001"]
    assert counts(engine)["os_status_historico"] == 1
    assert ctx.summary.counts["os"] == {"criados": 1, "falhas": 1}
    assert _open_03(engine) == {}  # no key to keep it by: a failure of the file (exit 3)


def test_an_id_listed_twice_is_refused_naming_both_entries(engine, tmp_path):
    sync(engine, tmp_path, [projeto(4711)])
    before = counts(engine)
    twice = [projeto(4711, coluna=CANCELADO, obtido="2026-12-01T00:00:00Z"),
             projeto(4712, cliente={"doc_pessoal": JOSE, "nome": "José"}),
             projeto(4711, coluna=AUMENTO, obtido="2026-12-01T00:00:00Z")]
    ctx = sync(engine, tmp_path, twice, [movimento(4712, OUTRA)])
    assert rows(engine, t.os, t.os.c.isales_id == "4711")[0]["status"] == "instalacao"  # neither entry won
    assert [o["isales_id"] for o in rows(engine, t.os)] == ["4711"]  # 4712 too: in projetos and movimentos
    assert counts(engine) == before
    items = _open_03(engine)
    assert items["isales:4711"] == (
        "projeto 4711 aparece 2 vezes no arquivo 02 (projetos[0]: coluna_id 20363, status 'cancelado'; "
        "projetos[2]: coluna_id 20024, status 'aumento'); nenhuma das entradas foi usada: corrija o arquivo "
        "ou rode o passo anterior de novo")
    assert "projetos[1]: coluna_id 17840" in items["isales:4712"] and "movimentos[0]: coluna_id 16001" in items["isales:4712"]
    assert ctx.summary.counts["os"]["pendentes"] == 2


# --------------------------------------------------------------------------- one document, two people (issue 12 §5)

def test_a_document_of_another_person_is_refused_and_no_name_changes(engine, tmp_path):
    sync(engine, tmp_path, [projeto(4711)])  # Maria da Silva, CPF MARIA
    bruno = projeto(4712, cliente={"nome": "Bruno Barbosa"}, obtido="2026-12-01T00:00:00Z")
    also_maria = projeto(4713, obtido="2026-12-01T00:00:00Z")  # another project of the same person
    with domain_writes(engine) as written:
        ctx = sync(engine, tmp_path, [bruno, also_maria])
    assert written["cliente"] == 0  # the name is not overwritten
    assert [c["nome"] for c in rows(engine, t.cliente)] == ["Maria da Silva"]
    assert [o["isales_id"] for o in rows(engine, t.os)] == ["4711", "4713"]
    items = _open_03(engine)
    assert set(items) == {"isales:4712"}
    assert items["isales:4712"] == (
        "projeto 4712 (Bruno Barbosa): o CPF 529.982.247-25 já é do cliente 'Maria da Silva' (projeto(s) 4711), "
        "e 'Bruno Barbosa' é claramente outra pessoa; os dados deste projeto não foram gravados e nenhum "
        "nome foi trocado (nem no FieldControl): corrija o nome ou o documento no iSales e rode de novo")
    assert ctx.summary.counts["os"]["pendentes"] == 1

    # the card that owns the client renamed to another person: refused as well, the name kept
    sync(engine, tmp_path, [projeto(4711, cliente={"nome": "Bruno Barbosa"}, obtido="2026-12-02T00:00:00Z")])
    assert [c["nome"] for c in rows(engine, t.cliente)] == ["Maria da Silva"]
    assert "já é do cliente 'Maria da Silva' (projeto(s) 4713)" in _open_03(engine)["isales:4711"]

    # the CRM is fixed (Bruno's own CPF; 4711 back to Maria): both clear
    sync(engine, tmp_path, [projeto(4711, obtido="2026-12-03T00:00:00Z"),
                            projeto(4712, cliente={"nome": "Bruno Barbosa", "doc_pessoal": JOSE},
                                    obtido="2026-12-03T00:00:00Z")])
    assert _open_03(engine) == {}
    assert sorted(c["nome"] for c in rows(engine, t.cliente)) == ["Bruno Barbosa", "Maria da Silva"]


def test_two_new_projects_of_one_document_and_two_people_are_both_refused(engine, tmp_path):
    ana = projeto(4711, cliente={"nome": "Ana Antunes"})
    bruno = projeto(4712, cliente={"nome": "Bruno Barbosa"})
    ana_again = projeto(4713, cliente={"nome": "Ana Maria Antunes"})
    sync(engine, tmp_path, [ana, bruno, ana_again])
    assert counts(engine) == dict.fromkeys(DOMAIN, 0)  # nobody can tell whose CPF it is: nothing written
    items = _open_03(engine)
    assert set(items) == {"isales:4711", "isales:4712", "isales:4713"}
    assert items["isales:4712"].startswith(
        "projeto 4712 (Bruno Barbosa): o CPF 529.982.247-25 aparece também no(s) projeto(s) 4711 (Ana Antunes), "
        "4713 (Ana Maria Antunes), com nome de outra pessoa; nenhum deles foi gravado")

    # same person spelled three ways: one client, no pending item
    sync(engine, tmp_path, [projeto(4711, cliente={"nome": "Ana Antunes"}),
                            projeto(4712, cliente={"nome": "ANA A."}),
                            projeto(4713, cliente={"nome": "Ana Maria Antunes"})])
    assert _open_03(engine) == {} and counts(engine)["cliente"] == 1


def test_the_only_card_of_a_client_may_change_its_name(engine, tmp_path):
    """No other project carries the document: a new name on its only card is an edit of the
    customer (04 follows it), not a second person."""
    sync(engine, tmp_path, [projeto(4711)])
    sync(engine, tmp_path, [projeto(4711, cliente={"nome": "Mariana Souza"}, obtido="2026-12-01T00:00:00Z")])
    assert _open_03(engine) == {}
    assert [c["nome"] for c in rows(engine, t.cliente)] == ["Mariana Souza"]


def test_at_most_one_batch_of_projects_is_held_at_a_time(engine, tmp_path, monkeypatch):
    """The file is typed batch by batch: when a batch is written, the projects alive are that batch's
    (the old code typed the whole file first: all 12 were alive at the first batch). The cards of a
    client that several projects share are merged as before."""
    import gc

    from lib.steps.local_input import ProjectInput

    monkeypatch.setattr(local_sync, "BATCH_SIZE", 3)
    alive: list[int] = []
    write_batch = local_sync._write_batch

    def counting(*args, **kwargs):
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects() if isinstance(o, ProjectInput)))
        return write_batch(*args, **kwargs)

    monkeypatch.setattr(local_sync, "_write_batch", counting)
    projects = [projeto(6000 + n, cliente={"doc_pessoal": f"{n:011d}", "nome": f"Cliente {n}"},
                        endereco={"numero": str(n)}) for n in range(10)]
    projects.insert(1, projeto(4711, obtido="2026-11-29T13:00:09Z", cliente={"email": "maria@novo.example.com"}))
    projects.append(projeto(4712, cliente={"email": "maria@velho.example.com"}))  # same address, older
    ctx = sync(engine, tmp_path, projects)
    assert len(alive) == 4 and max(alive) <= 3
    assert counts(engine) == {"cliente": 11, "endereco": 11, "os": 12, "pagamento": 12,
                              "os_status_historico": 12, "alteracao": 0}
    assert rows(engine, t.cliente, t.cliente.c.doc_pessoal == MARIA)[0]["email"] == "maria@novo.example.com"
    assert ctx.summary.counts["cliente"] == {"criados": 11}
    assert ctx.summary.counts["endereco"] == {"criados": 11}


def test_young_collections_are_fewer_while_the_step_runs_and_restored_after(engine, tmp_path, monkeypatch):
    """A batch's rows live until it is written: while 03 writes, the collector waits for
    YOUNG_OBJECTS new objects (not Python's 700) before a young collection; an error in the step
    restores the thresholds all the same."""
    seen = []
    real = local_sync.sync_project

    def watched(*args, **kwargs):
        seen.append(gc.get_threshold()[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(local_sync, "sync_project", watched)
    before = gc.get_threshold()
    sync(engine, tmp_path, [projeto(4711)])
    assert seen == [local_sync.YOUNG_OBJECTS] and gc.get_threshold() == before

    def failing(*args, **kwargs):
        raise RuntimeError("falha de teste")

    monkeypatch.setattr(local_sync, "sync_project", failing)
    with pytest.raises(RuntimeError):
        sync(engine, tmp_path, [projeto(4712)])
    assert gc.get_threshold() == before


def test_fingerprints_are_the_json_text_they_always_were():
    """os.cliente_assinatura and endereco_assinatura are stored: their text must not change."""
    cliente = {"nome": "Ângela Ávila", "doc_pessoal": MARIA, "email": None, "telefone": "11987654321",
               "telefone_secundario": None}
    endereco = {"cep": "01310100", "logradouro": "Avenida Paulista", "numero": "1000", "complemento": None,
                "latitude": Decimal("-23.5614000"), "longitude": Decimal("-46.6559000"), "fonte_coordenadas": "link"}
    for values, names, sign in ((cliente, CLIENTE_FIELDS, client_signature),
                                (endereco, ENDERECO_FIELDS, address_signature)):
        text = json.dumps([values.get(name) for name in names], ensure_ascii=False, default=str)
        assert sign(values) == hashlib.sha1(text.encode("utf-8")).hexdigest()


def test_merge_gives_the_latest_changed_values_and_each_card_its_own_copy():
    """The cards of one document, merged: the latest changed card wins field by field, an empty
    value erases nothing, an address that one card carries is its own; the only card of its
    document keeps its own values."""
    cards = [parse_project(projeto(4711, obtido="2026-11-29T13:00:01Z", cliente={"email": "velho@example.com"})),
             parse_project(projeto(4712, obtido="2026-11-29T14:00:01Z", cliente={"email": None, "telefone": "1199"})),
             parse_project(projeto(4713, endereco={"numero": "2000"})),
             parse_project(projeto(5000, cliente={"doc_pessoal": JOSE, "nome": "José Lima"}))]
    merged = local_merge.merge(local_merge.MergeCard.of(card, None) for card in reversed(cards[:3]))
    assert [key[2] for key in merged.enderecos] == ["1000"]  # 2000 is one card's own
    first, second, third, jose = (copy.deepcopy(card) for card in cards)
    for card in (first, second, third):
        local_merge.apply(card, merged, None)
    local_merge.apply(jose, None, None)
    assert first.cliente["telefone"] == "1199" and first.cliente["email"] == "maria.silva@example.com"  # 4713
    assert third.cliente == first.cliente and third.endereco["numero"] == "2000"
    assert jose.cliente["nome"] == "José Lima"
    first.endereco["bairro"] = "mudado"  # each card gets its own copy of the shared values
    assert second.endereco["bairro"] == "Bela Vista"


def test_merged_values_of_shared_documents_wait_in_the_spool_not_in_memory(engine, tmp_path, monkeypatch):
    """Issue 14: the merged values of the documents that several cards carry, the set of those
    documents and the clients created for them lived in dicts for the whole run, growing with the
    file (the old code held all 12 shared documents at every batch). Now they wait in the run's
    spool: while a batch is written, no dict or set in memory is keyed by more shared documents
    than the batch carries, and the spool file is gone afterwards. The merge is unchanged."""
    monkeypatch.setattr(local_sync, "BATCH_SIZE", 2)
    docs = [f"{n:011d}" for n in range(12)]
    projects = [projeto(6000 + 10 * n + k, obtido=f"2026-11-29T1{k}:00:00Z",
                        cliente={"doc_pessoal": doc, "nome": f"Cliente {n}", "email": f"c{n}.{k}@example.com"},
                        endereco={"numero": str(n)}) for n, doc in enumerate(docs) for k in range(2)]
    wanted = set(docs)
    held: list[int] = []
    write_batch = local_sync._write_batch

    def counting(*args, **kwargs):
        gc.collect()
        most = 0
        for obj in gc.get_objects():
            if obj is wanted or not isinstance(obj, (dict, set, frozenset)):  # keyed by document
                continue
            most = max(most, sum(1 for key in obj if isinstance(key, str) and key in wanted))
        held.append(most)
        return write_batch(*args, **kwargs)

    monkeypatch.setattr(local_sync, "_write_batch", counting)
    ctx = sync(engine, tmp_path, projects)
    assert len(held) == 12 and max(held) <= 2, held
    assert sorted(c["email"] for c in rows(engine, t.cliente)) == sorted(f"c{n}.1@example.com" for n in range(12))
    assert ctx.summary.counts["cliente"] == {"criados": 12} and ctx.summary.counts["endereco"] == {"criados": 12}
    assert counts(engine)["os"] == 24
    assert not list((tmp_path / "data").glob(".03_mescla.*"))


def test_the_index_of_stored_projects_and_clients_waits_in_the_spool(engine, tmp_path, monkeypatch):
    """Issue 14: on a run over stored projects, the run's index (os key by isales_id, client id by
    document) was two dicts of every project and client of the file (the old code held all 12 ids
    at every batch; a second run at 50,000 projects peaked at 96 MB against 71 MB at 10,000). Now
    they are tables of the run's spool: while a batch is written, no dict or set in memory is keyed
    by more projects or documents than the batch carries. An edit still lands, once."""
    monkeypatch.setattr(local_sync, "BATCH_SIZE", 2)
    projects = [projeto(6000 + n, cliente={"doc_pessoal": f"{n:011d}", "nome": f"Cliente {n}"},
                        endereco={"numero": str(n)}) for n in range(12)]
    sync(engine, tmp_path, projects)
    keys = {str(6000 + n) for n in range(12)} | {f"{n:011d}" for n in range(12)}
    held: list[int] = []
    write_batch = local_sync._write_batch

    def counting(*args, **kwargs):
        gc.collect()
        held.append(max(sum(1 for key in obj if isinstance(key, str) and key in keys)
                        for obj in gc.get_objects() if obj is not keys and isinstance(obj, (dict, set, frozenset))))
        return write_batch(*args, **kwargs)

    monkeypatch.setattr(local_sync, "_write_batch", counting)
    projects[5]["cliente"]["email"] = "novo@example.com"
    ctx = sync(engine, tmp_path, projects)
    assert len(held) == 6 and max(held) <= 4, held  # a batch: 2 projects and their 2 documents
    assert ctx.summary.counts["cliente"] == {"atualizados": 1, "sem_alteracao": 11}
    assert [c["email"] for c in rows(engine, t.cliente, t.cliente.c.doc_pessoal == f"{5:011d}")] == ["novo@example.com"]
