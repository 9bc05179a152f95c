"""lib/steps/treat and treat_fields: the fields of a project, custom-field aliases, the reuse of
stored coordinates, and a whole run in-process against the sandbox and a real database."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

import lib.db.schema as t
from lib import config
from lib.config import DEFAULT_CAMPOS
from lib.db import pending, runs
from lib.jsonfiles import FILE_01, FILE_02, write_envelope
from lib.maplinks import Point
from lib.run import RunContext, Summary
from lib.steps import treat as treat_step
from lib.steps.treat_fields import custom_field, treat
from tests.conftest import ROOT, sandbox_env
from tests.steps.input01 import expected_point, hermetic_links, write_01

LABELS = {meaning: tuple(labels) for meaning, (_, labels) in DEFAULT_CAMPOS.items()}
EXAMPLES = json.loads((ROOT / "docs/api/isales_exemplos.json").read_text(encoding="utf-8"))
COLUMNS = {17840: "instalacao", 20024: "aumento", 20363: "cancelado"}


def example(cliente_id: int) -> dict:
    key = str(cliente_id)
    card = next(c for c in EXAMPLES["funil_clientes"]["funil_clientes"] if c["cliente_id"] == cliente_id)
    return {"isales_id": cliente_id, "coluna_id": card["coluna_id"], "status": COLUMNS[card["coluna_id"]],
            "motivo": "novo", "obtido_em": "2026-11-29T13:00:01Z", "card": card,
            "cliente": EXAMPLES["clientes"][key]["clientes"], "proposta": EXAMPLES["propostas"][key]["propostas"],
            "campos": EXAMPLES["campo_customizado"][key]["clientes"]}


def test_example_4711_as_in_the_design():
    project = treat(example(4711), LABELS)
    assert project.problem is None
    assert project.cliente == {"nome": "Maria da Silva", "doc_pessoal": "52998224725", "tipo_documento": "cpf",
                               "email": "maria.silva@example.com", "telefone": "11987654321",
                               "telefone_secundario": "1134567890"}
    assert project.endereco == {"cep": "01310100", "logradouro": "Avenida Paulista", "numero": "1000",
                                "complemento": "ap 12", "bairro": "Bela Vista", "cidade": "São Paulo",
                                "estado": "SP", "link_localizacao": "https://maps.app.goo.gl/AbCdEf123",
                                "latitude": None, "longitude": None, "fonte_coordenadas": None}
    assert project.os == {"vendedor": "João Souza", "data_fechamento": "2025-03-14T10:22:00",
                          "modulos": "12x Módulo 550W Monocristalino", "inversor1": "Inversor 5kW",
                          "inversor2": None, "inversor3": None, "valor": Decimal("45900.00"),
                          "observacoes": "Telhado cerâmico, acesso pela lateral",
                          "acesso": ["Escada necessária", "Cão no local"]}
    assert project.pagamento == {"forma_pgto": "FINANCIAMENTO", "responsavel_financiamento": "Maria da Silva",
                                 "valor_seguro": Decimal("890.00"), "observacoes": "Entrada de 10% + 60x"}
    assert project.avisos == []
    record = project.record()
    assert record["isales_id"] == "4711" and record["bruto"]["cliente"]["cpf"] == "529.982.247-25"


def test_example_4712_cnpj_old_label_and_number_price():
    project = treat(example(4712), LABELS)
    assert project.problem is None
    assert (project.cliente["doc_pessoal"], project.cliente["tipo_documento"]) == ("11222333000181", "cnpj")
    assert project.cliente["telefone"] == "64999990000" and project.cliente["telefone_secundario"] is None
    assert project.endereco["estado"] == "GO" and project.endereco["numero"] == "s/n"
    assert project.endereco["complemento"] is None
    assert project.os["valor"] == Decimal("238500.50") and project.os["data_fechamento"] == "2025-04-02T00:00:00"
    assert project.os["inversor2"] == "Inversor 20kW" and project.os["acesso"] is None
    assert project.pagamento["forma_pgto"] == "À VISTA"  # only the old label is present


def test_example_4713_invalid_document_and_dropped_values():
    project = treat(example(4713), LABELS)
    assert project.problem == "documento inválido: CPF 123.456.789-00 com dígitos verificadores errados"
    assert project.endereco["estado"] == "SC"
    assert project.cliente["email"] is None
    assert "e-mail 'jose@exemplo' descartado: formato inválido" in project.avisos
    assert project.os["modulos"] is None and project.os["valor"] is None  # proposal []


def test_warnings_name_the_dropped_value():
    raw = example(4711)
    raw["cliente"] = dict(raw["cliente"], telefone_secundario="123", cep="0131", estado="Paulista",
                          data_fechamento="31/02/2025")
    raw["campos"] = dict(raw["campos"], **{"VALOR DO SEGURO": "não contratou"})
    project = treat(raw, LABELS)
    assert project.problem is None
    assert project.avisos == [
        "telefone secundário '123' descartado: tem 3 dígitos (esperado DDD + 8 ou 9 dígitos)",
        "CEP '0131' descartado: não tem 8 dígitos (4)",
        "estado 'Paulista' descartado: não é uma UF nem o nome de um estado brasileiro",
        "data de fechamento '31/02/2025' descartado: não é uma data válida (use AAAA-MM-DD ou DD/MM/AAAA)",
        "valor do seguro 'não contratou' descartado: não é um valor em reais",
    ]
    assert project.cliente["telefone_secundario"] is None and project.endereco["cep"] is None


def test_missing_name_and_missing_client():
    raw = example(4711)
    raw["cliente"] = dict(raw["cliente"], nome="  ")
    raw["card"] = {"cliente_id": 4711, "coluna_id": 17840}
    assert treat(raw, LABELS).problem == "cliente sem nome no iSales"
    raw["card"] = {"cliente_id": 4711, "coluna_id": 17840, "cliente": {"nome": "Maria da Silva"}}
    assert treat(raw, LABELS).cliente["nome"] == "Maria da Silva"  # the card's name as fallback
    assert "não vieram do iSales" in treat(dict(raw, cliente=None), LABELS).problem


@pytest.mark.parametrize(("campos", "expected"), [
    ({"FORMA DE PAGAMENTO": "PIX", "Forma de Pagamento": "BOLETO"}, "PIX"),  # new label first
    ({"Forma de Pagamento": "BOLETO"}, "BOLETO"),  # old label as fallback
    ({"FORMA DE PAGAMENTO": "", "Forma de Pagamento": "BOLETO"}, "BOLETO"),  # empty new → old
    ({"forma  de pagamento ": "PIX"}, "PIX"),  # spacing/case of a renamed label
    ({"FORMA DE PAGAMENTO": None}, None),
    ({}, None),
    ([], None),
])
def test_custom_field_aliases(campos, expected):
    assert custom_field(campos, LABELS["forma_pgto"]) == expected


def test_multi_select_stays_a_list_and_texts_are_joined():
    raw = example(4711)
    raw["campos"] = dict(raw["campos"], **{"OBSERVAÇÕES": ["Telhado metálico", "Ligar antes"],
                                           "ACESSO AO LOCAL (marcar todas as opções aplicáveis)": "Portão estreito"})
    project = treat(raw, LABELS)
    assert project.os["observacoes"] == "Telhado metálico; Ligar antes"
    assert project.os["acesso"] == ["Portão estreito"]


def test_stored_coordinates_are_reused_only_for_the_same_address():
    endereco = treat(example(4711), LABELS).endereco
    legacy_row = {"cep": "01310-100", "logradouro": "Avenida  Paulista", "numero": "1000", "cidade": "SÃO PAULO",
                  "estado": "São Paulo", "link_localizacao": "https://maps.app.goo.gl/AbCdEf123 ",
                  "latitude": Decimal("-23.5614000"), "longitude": Decimal("-46.6559000"), "fonte_coordenadas": "legado"}
    assert treat_step.reusable_coordinates(endereco, [legacy_row]) == (Point.of("-23.5614", "-46.6559"), "legado")
    for change in ({"numero": "1001"}, {"link_localizacao": "https://maps.app.goo.gl/Outro"}, {"cep": "01310-200"}):
        assert treat_step.reusable_coordinates(endereco, [dict(legacy_row, **change)]) is None
    outside = dict(legacy_row, latitude=Decimal("38.7"), longitude=Decimal("-9.1"))
    assert treat_step.reusable_coordinates(endereco, [outside]) is None


def test_stored_addresses_are_read_with_one_statement_shape(engine):
    """Issue 14 §2: every query of stored addresses sends the same number of values, so SQLite
    prepares one statement; before, each batch size was a statement of its own, kept by the driver
    (up to 128, ~100 KB each): step 02's RSS grew with the number of batches."""
    from sqlalchemy import event

    now = datetime(2026, 1, 1)
    with engine.begin() as conn:
        cliente_id = conn.execute(t.cliente.insert().values(
            nome="x", doc_pessoal="52998224725", criado_em=now, atualizado_em=now)).inserted_primary_key[0]
        conn.execute(t.endereco.insert().values(cliente_id=cliente_id, cep="01310100", latitude=Decimal("-23.5614"),
                                                longitude=Decimal("-46.6559"), criado_em=now, atualizado_em=now))
    statements: set[str] = set()
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.add(statement))
    for size in (1, 130, 371, 650):
        docs = ["52998224725"] + [f"{n:011d}" for n in range(1, size)]
        found = treat_step.stored_addresses(engine, docs)
        assert list(found) == ["52998224725"] and found["52998224725"][0]["cep"] == "01310100"
    assert len({s for s in statements if "FROM endereco" in s}) == 1


# --------------------------------------------------------------------------- a whole run, in-process

def run_02(sb, tmp_path: Path, engine, db_url: str, **env_changes) -> tuple[RunContext, dict]:
    env = sandbox_env(sb, tmp_path, db_url, **env_changes)
    settings = config.load("geocoder", "campos", environ=env)
    ctx = RunContext(step="02", settings=settings, args=argparse.Namespace(), summary=Summary(), engine=engine,
                     run_id=runs.start(engine, "02"))
    treat_step.run(ctx)
    return ctx, json.loads((settings.data_dir / FILE_02).read_text(encoding="utf-8"))


def open_items(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {item["isales_id"]: item["motivo"] for item in pending.open_items(conn, "02")}


def by_id(output: dict) -> dict[str, dict]:
    return {p["isales_id"]: p for p in output["projetos"]}


def test_run_pending_items_and_their_resolution(sandbox, tmp_path, engine, migrated_db):
    hermetic_links(sandbox)
    projects = write_01_projects(sandbox, tmp_path)
    bad_doc, no_coords, cancelled = pick(projects, "instalacao"), pick(projects, "aumento"), pick(projects, "cancelado")
    sandbox.edit_cliente(bad_doc, cpf="123.456.789-00")
    sandbox.edit_cliente(no_coords, cidade="Cidade Fantasma", cep="", link_localizacao="ver com o vendedor")
    sandbox.edit_cliente(cancelled, cpf="")
    upstream = {"isales_id": 9999, "motivo": "projeto 9999: o iSales respondeu 500"}
    left = {"isales_id": 4000, "coluna_id": 16001, "status": "outro"}
    with engine.begin() as conn:  # a project pending in 02 that has since left the funnel's columns
        pending.record(conn, "02", "isales:4000", "projeto 4000: documento inválido", isales_id=4000)
    write_01(sandbox, tmp_path / "data", pendencias=[upstream], movimentos=[left])

    ctx, output = run_02(sandbox, tmp_path, engine, migrated_db)
    items = open_items(engine)
    assert set(items) == {str(bad_doc), str(no_coords)}  # 4000 left the columns of interest: resolved
    name = sandbox.projects()[[p["card"]["cliente_id"] for p in sandbox.projects()].index(bad_doc)]["cliente"]["nome"]
    assert items[str(bad_doc)] == f"projeto {bad_doc} ({name}): documento inválido: CPF 123.456.789-00 com " \
                                  "dígitos verificadores errados"
    assert items[str(no_coords)].endswith("sem coordenadas: link 'ver com o vendedor' não tem coordenadas, "
                                          "endereço não encontrado, sem CEP")
    assert {(p["isales_id"], p["etapa"]) for p in output["pendencias"]} == \
        {(str(bad_doc), "02"), (str(no_coords), "02"), ("9999", "01")}
    moved = {m["isales_id"]: m for m in output["movimentos"]}
    assert moved.pop("4000") == {"isales_id": "4000", "coluna_id": 16001, "status": "outro"}  # copied through
    assert set(moved) >= {str(bad_doc), str(no_coords), str(cancelled)}  # 03 still records their column
    # a cancelled project with bad data needs no customer: only its move, no pending item
    assert all(m["status"] == "cancelado" for key, m in moved.items() if key not in items)
    assert str(cancelled) not in items and str(cancelled) not in by_id(output)
    assert ctx.summary.counts["projetos"]["pendentes"] == 2

    # every other project has coordinates where the sandbox's map puts its address
    for project in output["projetos"]:
        endereco = project["endereco"]
        if endereco["fonte_coordenadas"] in ("link", "endereco"):
            assert Point.of(endereco["latitude"], endereco["longitude"]) == expected_point(endereco)
        else:
            assert project["status"] == "cancelado" or endereco["fonte_coordenadas"] == "cep"

    sandbox.edit_cliente(bad_doc, cpf="529.982.247-25")
    sandbox.edit_cliente(no_coords, cidade="Campinas", estado="SP")
    write_01(sandbox, tmp_path / "data", run_id=2)
    run_02(sandbox, tmp_path, engine, migrated_db)
    assert open_items(engine) == {}
    with engine.connect() as conn:
        rows = conn.execute(select(t.pendencia.c.chave, t.pendencia.c.resolvida_em)).all()
    assert {row.chave for row in rows} == {f"isales:{bad_doc}", f"isales:{no_coords}", "isales:4000"}
    assert all(row.resolvida_em is not None for row in rows)


def test_stored_address_is_not_geocoded_again(sandbox, tmp_path, engine, migrated_db):
    hermetic_links(sandbox)
    projects = write_01_projects(sandbox, tmp_path)
    target = pick(projects, "instalacao")
    raw = next(p for p in projects if p["isales_id"] == target)
    sandbox.edit_cliente(target, link_localizacao="")  # only the geocoder could find it...
    stored = treat({**raw, "cliente": dict(raw["cliente"], link_localizacao="")}, LABELS)
    now = datetime(2026, 1, 1)
    with engine.begin() as conn:  # ...but step 03 already stored it with coordinates
        cliente_id = conn.execute(t.cliente.insert().values(
            nome="x", doc_pessoal=stored.cliente["doc_pessoal"], criado_em=now, atualizado_em=now)).inserted_primary_key[0]
        conn.execute(t.endereco.insert().values(
            **{k: v for k, v in stored.endereco.items() if k not in ("latitude", "longitude", "fonte_coordenadas")},
            latitude=Decimal("-10.1234567"), longitude=Decimal("-50.7654321"), fonte_coordenadas="endereco",
            cliente_id=cliente_id, criado_em=now, atualizado_em=now))
    write_01(sandbox, tmp_path / "data", ids={target})
    sandbox.reset_calls()
    ctx, output = run_02(sandbox, tmp_path, engine, migrated_db)
    endereco = by_id(output)[str(target)]["endereco"]
    assert (endereco["latitude"], endereco["longitude"], endereco["fonte_coordenadas"]) == \
        ("-10.1234567", "-50.7654321", "endereco")
    assert sandbox.calls() == [] and output["contagens"]["fontes_coordenadas"]["banco"] == 1


def write_01_projects(sb, tmp_path: Path) -> list[dict]:
    write_01(sb, tmp_path / "data")
    return json.loads((tmp_path / "data/01_projetos_isales.json").read_text(encoding="utf-8"))["projetos"]


def pick(projects: list[dict], status: str) -> int:
    return next(p["isales_id"] for p in projects if p["status"] == status)


def test_negative_and_ambiguous_money_are_dropped_with_a_warning_naming_the_field():
    raw = example(4711)
    raw["proposta"] = dict(raw["proposta"], valor_final="1,234")  # used to become R$ 1,23
    raw["campos"] = dict(raw["campos"], **{"VALOR DO SEGURO": "-890,00"})
    project = treat(raw, LABELS)
    assert project.problem is None
    assert project.os["valor"] is None and project.pagamento["valor_seguro"] is None
    assert project.avisos == [
        "valor da proposta '1,234' descartado: é ambíguo (a vírgula separa milhares ou centavos?): "
        "escreva com os centavos, p.ex. 1.234,00 ou 1,23",
        "valor do seguro '-890,00' descartado: valor negativo",
    ]


def test_projects_stream_from_the_01_file_to_the_02_file(sandbox, tmp_path, engine, migrated_db, monkeypatch):
    """At most one batch of treated projects is alive at a time: 02 never holds the whole file."""
    from tests.conftest import AliveCounter

    hermetic_links(sandbox)
    projects = write_01_projects(sandbox, tmp_path)
    assert len(projects) > 12
    monkeypatch.setattr(treat_step, "BATCH_SIZE", 4)
    counter = AliveCounter()
    monkeypatch.setattr(treat_step, "treat", counter.wrap(treat))
    ctx, output = run_02(sandbox, tmp_path, engine, migrated_db)
    assert 4 <= counter.most <= 5  # the batch being located, and the first project of the next one
    assert len(output["projetos"]) + len(output["pendencias"]) + ctx.summary.counts["projetos"].get("ignorados", 0) \
        >= len(projects)
    assert list(output)[-1] == "contagens" and output["contagens"]["tratados"] == len(output["projetos"])


def test_memory_of_a_run_does_not_grow_with_the_projects_set_aside(sandbox, tmp_path, engine, migrated_db):
    """Issue 14 §2: what a run sets aside of its projects (those left pending, cancelled ones
    without data, the open items of earlier runs, the ids of the file) is kept on disk (the spool):
    a first run and a second run hold the same memory for 1,000 and for 3,000 projects left pending.
    Before, each was held in lists and sets: ≈ 950 bytes a project more at the peak (1,150 in a
    second run); now ≈ 115 (the measure's own noise: the same run outside pytest grows by nothing)."""
    import logging
    import tracemalloc

    def project(n: int) -> dict:  # an invalid document: pending, never located (no request)
        status_, coluna = ("cancelado", 20363) if n % 10 == 0 else ("instalacao", 17840)
        return {"isales_id": 100_000 + n, "coluna_id": coluna, "status": status_, "obtido_em": "2026-11-29T13:00:01Z",
                "card": {"cliente_id": 100_000 + n, "coluna_id": coluna},
                "cliente": {"nome": f"Cliente Número {n} da Silva", "cpf": "123.456.789-00", "cep": "01310-100",
                            "logradouro": "Avenida Paulista", "numero": "1000", "cidade": "São Paulo", "estado": "SP"},
                "proposta": {}, "campos": {}}

    def peak_of_run(projects: int) -> int:
        write_envelope(tmp_path / "data" / FILE_01, "01", 1,
                       {"projetos": iter(project(n) for n in range(projects)), "movimentos": [], "pendencias": []})
        logging.disable(logging.WARNING)  # pytest keeps every record it captures: a line per project
        tracemalloc.start()
        try:
            run_02(sandbox, tmp_path, engine, migrated_db)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            logging.disable(logging.NOTSET)

    first, second = {}, {}
    for projects in (1000, 3000):
        with engine.begin() as conn:
            conn.execute(t.pendencia.delete())
        first[projects] = peak_of_run(projects)
        assert len(open_items(engine)) == projects * 9 // 10
        second[projects] = peak_of_run(projects)  # every one of them has an open item
    assert list((tmp_path / "data").glob(".02_*")) == []  # the spool is removed at the end
    growth = {name: (peaks[3000] - peaks[1000]) / 2000 for name, peaks in (("first", first), ("second", second))}
    assert growth["first"] < 300 and growth["second"] < 300, (growth, first, second)  # before: ≈ 950 and 1,150
