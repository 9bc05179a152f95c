"""lib/documents: CPF/CNPJ (numeric and alphanumeric), phones, CEP, UF, e-mail, money, dates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from lib import documents as d
from lib.documents import InvalidValue

# --------------------------------------------------------------------------- CPF / CNPJ

VALID_DOCUMENTS = [
    ("529.982.247-25", "cpf", "52998224725"),
    ("52998224725", "cpf", "52998224725"),
    (" 529.982.247-25 ", "cpf", "52998224725"),
    ("529 982 247 25", "cpf", "52998224725"),
    ("11.222.333/0001-81", "cnpj", "11222333000181"),
    ("11222333000181", "cnpj", "11222333000181"),
    ("11.222.333 0001-81", "cnpj", "11222333000181"),
    ("12.ABC.345/01DE-35", "cnpj", "12ABC34501DE35"),  # alphanumeric CNPJ (July 2026)
    ("12abc34501de35", "cnpj", "12ABC34501DE35"),
    ("A1.B2C.3D4/0001-93", "cnpj", "A1B2C3D4000193"),
    (52998224725, "cpf", "52998224725"),
    (4806551031, "cpf", "04806551031"),  # a JSON number lost the leading zero
    (11222333000181, "cnpj", "11222333000181"),
]


@pytest.mark.parametrize(("raw", "kind", "value"), VALID_DOCUMENTS)
def test_valid_documents(raw, kind, value):
    assert d.document(raw) == d.Document(kind, value)


INVALID_DOCUMENTS = [
    ("123.456.789-00", "CPF 123.456.789-00 com dígitos verificadores errados"),
    ("529.982.247-24", "CPF 529.982.247-24 com dígitos verificadores errados"),
    ("111.111.111-11", "CPF 111.111.111-11 com todos os dígitos iguais"),
    ("00000000000", "CPF 000.000.000-00 com todos os dígitos iguais"),
    ("11.222.333/0001-82", "CNPJ 11.222.333/0001-82 com dígitos verificadores errados"),
    ("12.ABC.345/01DE-36", "CNPJ 12.ABC.345/01DE-36 com dígitos verificadores errados"),
    ("12.ABC.345/01DE-3X", "CNPJ 12.ABC.345/01DE-3X: os dígitos verificadores devem ser números"),
    ("529.982.24A-25", "CPF 529.982.24A-25 contém letras"),
    ("123.456.789", "documento '123.456.789' tem 9 caracteres (CPF tem 11, CNPJ tem 14)"),
    ("", "CPF/CNPJ ausente"),
    ("   ", "CPF/CNPJ ausente"),
    (None, "CPF/CNPJ ausente"),
]


@pytest.mark.parametrize(("raw", "reason"), INVALID_DOCUMENTS)
def test_invalid_documents_name_the_masked_value(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        d.document(raw)
    assert str(caught.value) == reason


def test_mask_document():
    assert d.mask_document("52998224725") == "529.982.247-25"
    assert d.mask_document("12ABC34501DE35") == "12.ABC.345/01DE-35"
    assert d.mask_document("123") == "123"


# --------------------------------------------------------------------------- phones

PHONES = [
    ("(11) 98765-4321", "11987654321"),
    ("+55 11 3456-7890", "1134567890"),
    ("+55 (11) 98765-4321", "11987654321"),
    ("5511987654321", "11987654321"),
    ("551134567890", "1134567890"),
    ("11 9 8765 4321", "11987654321"),
    ("(64)99999-0000", "64999990000"),
    ("6499999-0000", "64999990000"),
    ("011 98765-4321", "11987654321"),
    ("0 21 11 98765-4321", "11987654321"),  # carrier code
    ("(51) 3206-3350", "5132063350"),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), PHONES)
def test_phones(raw, expected):
    assert d.phone(raw) == expected


JUNK_PHONES = [
    ("98765-4321", "sem DDD (9 dígitos)"),
    ("3456-7890", "sem DDD (8 dígitos)"),
    ("99999", "tem 5 dígitos (esperado DDD + 8 ou 9 dígitos)"),
    ("0", "tem 1 dígitos (esperado DDD + 8 ou 9 dígitos)"),
    ("não tem", "não contém dígitos"),
    ("ver whatsapp", "não contém dígitos"),
    ("(00) 0000-0000", "DDD 00 não existe"),
    ("(20) 98765-4321", "DDD 20 não existe"),
    ("(11) 88765-4321", "celular de 9 dígitos deve começar com 9"),
    ("(11) 8765-4321", "número fixo deve começar com 2, 3, 4 ou 5 (celular sem o nono dígito?)"),
    ("(11) 99999-9999", "número com todos os dígitos iguais"),
    ("123456789012345", "tem 15 dígitos (esperado DDD + 8 ou 9 dígitos)"),
]


@pytest.mark.parametrize(("raw", "reason"), JUNK_PHONES)
def test_junk_phones_are_refused_never_invented(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        d.phone(raw)
    assert str(caught.value) == reason


# --------------------------------------------------------------------------- CEP, UF, number

@pytest.mark.parametrize(("raw", "expected"), [
    ("01310-100", "01310100"), ("01310100", "01310100"), (1310100, "01310100"), ("01.310-100", "01310100"), (" 75900000 ", "75900000"),
    ("", None), (None, None),
])
def test_cep(raw, expected):
    assert d.cep(raw) == expected


@pytest.mark.parametrize("raw", ["01310", "00000-000", "0131010", "CEP 01310-100", "013101000"])
def test_bad_cep(raw):
    with pytest.raises(InvalidValue):
        d.cep(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("SP", "SP"), ("sp", "SP"), ("São Paulo", "SP"), ("sao paulo", "SP"), ("SÃO PAULO", "SP"),
    ("Goiás", "GO"), ("goias", "GO"), ("santa catarina", "SC"), ("Rio Grande do Sul", "RS"),
    ("Espirito Santo", "ES"), ("Estado de Minas Gerais", "MG"), (" DF ", "DF"), ("Distrito Federal", "DF"),
    ("", None), (None, None),
])
def test_uf(raw, expected):
    assert d.uf(raw) == expected


@pytest.mark.parametrize("raw", ["XX", "Paulista", "Brasil", "S. Paulo"])
def test_bad_uf(raw):
    with pytest.raises(InvalidValue):
        d.uf(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1000", "1000"), (" 12A ", "12A"), ("s/n", "s/n"), ("S/N", "s/n"), ("SN", "s/n"), ("sem número", "s/n"),
    ("", None), (None, None),
])
def test_house_number(raw, expected):
    assert d.house_number(raw) == expected


# --------------------------------------------------------------------------- e-mail

@pytest.mark.parametrize(("raw", "expected", "others"), [
    ("Maria.Silva@Example.com ", "maria.silva@example.com", []),
    ("joao@exemplo.com.br", "joao@exemplo.com.br", []),
    ("a@b.co; c@example.com", "a@b.co", ["c@example.com"]),
    ("Fulano <fulano@example.org>", "fulano@example.org", []),
    ("", None, []),
    (None, None, []),
])
def test_email(raw, expected, others):
    assert d.email(raw) == (expected, others)


@pytest.mark.parametrize(("raw", "reason"), [
    ("jose@exemplo", "formato inválido"), ("nao tem", "não tem @"), ("-", "não tem @"),
    ("a..b@example.com", "formato inválido"), ("@example.com", "formato inválido"),
])
def test_bad_email(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        d.email(raw)
    assert str(caught.value) == reason


# --------------------------------------------------------------------------- money and dates

MONEY = [
    ("45.900,00", "45900.00"), (45900, "45900.00"), ("R$ 45.900", "45900.00"), ("R$ 890,00", "890.00"),
    (238500.5, "238500.50"), ("238500.5", "238500.50"), ("1.234.567,89", "1234567.89"), ("1,234,567.89", "1234567.89"),
    ("45,9", "45.90"), ("R$45.900,00", "45900.00"), ("BRL 10", "10.00"), ("1,5", "1.50"),
    (Decimal("1.005"), "1.01"), ("0,00", "0.00"), ("", None), (None, None), ("1,23", "1.23"),
    ("1.234", "1234.00"), ("1,234.00", "1234.00"), ("1.234,00", "1234.00"), ("12,345,678", "12345678.00"),
    ("-0,00", "0.00"),
]


@pytest.mark.parametrize(("raw", "expected"), MONEY)
def test_money_is_an_exact_decimal(raw, expected):
    value = d.money(raw)
    assert value == (None if expected is None else Decimal(expected))
    if value is not None:
        assert isinstance(value, Decimal) and value.as_tuple().exponent == -2


@pytest.mark.parametrize("raw", ["não contratou", "-", "1.234.56", "R$", "12,5,0", "1e12", "9999999999999"])
def test_bad_money(raw):
    with pytest.raises(InvalidValue):
        d.money(raw)


@pytest.mark.parametrize("raw", ["-12,50", "R$ -1.000,00", -5, -0.01, Decimal("-3")])
def test_negative_money_is_refused(raw):
    with pytest.raises(InvalidValue, match="valor negativo"):
        d.money(raw)


@pytest.mark.parametrize("raw", ["1,234", "R$ 1,234", "12,345", "999,000"])
def test_ambiguous_thousands_are_refused_not_guessed(raw):  # "1,234" used to become R$ 1,23
    with pytest.raises(InvalidValue, match="ambíguo"):
        d.money(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-03-14 10:22:00", datetime(2025, 3, 14, 10, 22)),
    ("2025-04-02", datetime(2025, 4, 2)),
    ("2025-03-14T10:22:00Z", datetime(2025, 3, 14, 10, 22)),
    ("2025-03-14T10:22:00.123-03:00", datetime(2025, 3, 14, 10, 22)),
    ("14/03/2025", datetime(2025, 3, 14)),
    ("14/03/2025 10:22", datetime(2025, 3, 14, 10, 22)),
    (date(2025, 1, 2), datetime(2025, 1, 2)),
    ("0000-00-00 00:00:00", None),
    ("", None),
    (None, None),
])
def test_dates(raw, expected):
    assert d.date_time(raw) == expected


@pytest.mark.parametrize("raw", ["31/02/2025", "amanhã", "2025-13-01", "1800-01-01"])
def test_bad_dates(raw):
    with pytest.raises(InvalidValue):
        d.date_time(raw)


def test_iso_date_time():
    assert d.iso_date_time(datetime(2025, 3, 14, 10, 22)) == "2025-03-14T10:22:00"
    assert d.iso_date_time(None) is None


# --------------------------------------------------------------------------- text

def test_text_helpers():
    assert d.clean_text("  Bela   Vista ") == "Bela Vista"
    assert d.clean_text("   ") is None
    assert d.clean_text(["a", " ", "b"]) == "a; b"
    assert d.text_list(["Escada necessária", "", None, "Cão no local"]) == ["Escada necessária", "Cão no local"]
    assert d.text_list("Portão estreito") == ["Portão estreito"]
    assert d.text_list([]) is None
    assert d.join_list(["Escada", "Cão"]) == "Escada; Cão"
    assert d.fold("  São   PAULO ") == "sao paulo"
