"""The generated iSales data is realistic and messy in the ways the pipeline must survive."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

from sandbox import Sandbox
from sandbox.documents import cnpj_check_digits, cpf_check_digits
from sandbox.links import ALL_FORMATS
from sandbox.places import CITIES, find_city, state_uf

HOJE = date(2025, 6, 1)


@pytest.fixture(scope="module")
def projects() -> list[dict]:
    return Sandbox(200, 7, hoje=HOJE).projects()


def _alnum(doc: str | None) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", doc or "").upper()


def _valid(doc: str) -> bool:
    if len(doc) == 11 and doc.isdigit():
        return len(set(doc)) > 1 and cpf_check_digits(doc[:9]) == doc[9:]
    if len(doc) == 14:
        return doc[12:].isdigit() and cnpj_check_digits(doc[:12]) == doc[12:]
    return False


def test_check_digit_functions_on_known_documents():
    assert cpf_check_digits("529982247") == "25"
    assert cnpj_check_digits("112223330001") == "81"
    assert cnpj_check_digits("12ABC34501DE") == "35"  # alphanumeric CNPJ (Receita Federal example)


def test_columns_ids_and_card_dates(projects):
    columns = Counter(p["card"]["coluna_id"] for p in projects)
    interest = sum(columns[c] for c in (17840, 20024, 20363)) / len(projects)
    assert 0.78 <= interest <= 0.92 and all(columns[c] for c in (17840, 20024, 20363))
    assert set(columns) - {17840, 20024, 20363}
    ids = [p["card"]["cliente_id"] for p in projects]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids) and 4700 < ids[0] < 4720
    assert any(b - a > 1 for a, b in zip(ids, ids[1:]))
    days = [(HOJE - date.fromisoformat(p["card"]["data_card"])).days for p in projects]
    assert min(days) >= 0 and max(days) <= 300


def test_documents_valid_invalid_masked_bare_alphanumeric(projects):
    docs = [p["cliente"]["cpf"] for p in projects]
    cleaned = [_alnum(d) for d in docs]
    assert sum(_valid(d) for d in cleaned) > 0.75 * len(docs)
    assert any(len(d) == 11 and not _valid(d) for d in cleaned)
    assert any(d and re.fullmatch(r"\d{3}\.\d{3}\.\d{3}-\d\d", d) for d in docs)
    assert any(d and re.fullmatch(r"\d{11}", d) for d in docs)
    assert any(d and re.fullmatch(r"\d\d\.\d{3}\.\d{3}/\d{4}-\d\d", d) for d in docs)
    alnum = [d for d in cleaned if len(d) == 14 and not d.isdigit()]
    assert alnum and all(_valid(d) for d in alnum)
    assert Counter(d for d in cleaned if _valid(d)).most_common(1)[0][1] >= 2  # same person, two projects


def test_names_phones_ceps_states(projects):
    clientes = [p["cliente"] for p in projects]
    lengths = [len(c["nome"]) for c in clientes]
    assert any(n > 50 for n in lengths) and any(n > 255 for n in lengths)
    assert any(re.search(r"[áéíóúâêôãõçÁÉÍÓÚÂÊÔÃÕÇ]", c["nome"]) for c in clientes)
    phones = [c["telefone"] for c in clientes]
    assert any(p and p.startswith("+55") for p in phones) and any(p and "(" in p for p in phones)
    assert any(p in ("", None) for p in phones + [c["telefone_secundario"] for c in clientes])
    assert any(p and not re.search(r"\d{8}", re.sub(r"\D", "", p)) for p in phones)  # junk
    ceps = [c["cep"] for c in clientes]
    assert any(c and re.fullmatch(r"\d{5}-\d{3}", c) for c in ceps) and any(c and re.fullmatch(r"\d{8}", c) for c in ceps)
    states = [c["estado"] for c in clientes]
    assert any(len(s) == 2 for s in states) and any(len(s) > 2 for s in states)
    assert all(state_uf(s) for s in states)
    assert any(s.islower() for s in states) and any("ã" in s.lower() or "á" in s.lower() for s in states)


def test_addresses_are_in_their_city(projects):
    for p in projects:
        city = find_city(p["cliente"]["cidade"])
        assert city is not None and city.uf == state_uf(p["cliente"]["estado"])
    assert len(CITIES) >= 30 and len({c.uf for c in CITIES}) >= 20


def test_every_link_format_appears(projects):
    links = [p["cliente"]["link_localizacao"] for p in projects]
    text = [link or "" for link in links]
    assert len(ALL_FORMATS) <= len(projects)
    for pattern in [r"/maps/place/.*/@-?\d", r"/maps/search/-?\d+\.\d+,\+-?\d", r"maps\?q=-?\d", r"&ll=-?\d",
                    r"maps\.google\.com/maps/place/-?\d", r"!3d-?\d+\.\d+!4d-?\d", r"maps\.apple\.com/place\?coordinate=",
                    r"maps\.apple\.com/\?ll=", r"^-?\d+\.\d+, -?\d+\.\d+$", r"%40-?\d", r"%2C%2B", r"/l/\w+",
                    r"/instagram/p/", r"^ver com o vendedor$|whatsapp|^-$|^sem link$", r"Lisboa", r"%3D"]:
        assert any(re.search(pattern, t) for t in text), pattern
    assert None in links and any(t.strip() == "" for t in text)
    assert any(re.fullmatch(r"http://[\d.:]+/maps/place/[^@/]+", t) for t in text)  # name only, served by the sandbox
    viewport_and_place = [t for t in text if "!3d" in t and "/@" in t]
    assert viewport_and_place and all(re.search(r"/@([-\d.]+)", t).group(1) != re.search(r"!3d([-\d.]+)", t).group(1)
                                      for t in viewport_and_place)


def test_proposals_money_dates_and_custom_fields(projects):
    proposals = [p["proposta"] for p in projects]
    assert {} in proposals and None in proposals and [] in proposals
    values = [p["valor_final"] for p in proposals if p]
    assert any(isinstance(v, str) and re.fullmatch(r"[\d.]+,\d\d", v) for v in values)
    assert any(isinstance(v, (int, float)) for v in values)
    assert any(isinstance(v, str) and v.startswith("R$") for v in values)
    closing = [p["cliente"]["data_fechamento"] for p in projects]
    assert None in closing
    assert any(c and re.fullmatch(r"\d{4}-\d\d-\d\d", c) for c in closing)
    assert any(c and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", c) for c in closing)
    campos = [p["campos"] for p in projects]
    assert any("Forma de Pagamento" in c for c in campos) and any("FORMA DE PAGAMENTO" in c for c in campos)
    assert {} in campos and any(None in c.values() for c in campos)
    assert any(isinstance(v, list) for c in campos for v in c.values())
    assert any(c and "OBSERVAÇÕES" not in c for c in campos)
