"""Normalisation and validation of Brazilian record fields: CPF/CNPJ (also the alphanumeric CNPJ),
phones, CEP, UF, e-mail, money and dates. Pure functions: a bad value raises `InvalidValue`
with a pt-BR reason; an empty value is None.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stdnum.br import cnpj as stdnum_cnpj
from stdnum.br import cpf as stdnum_cpf
from stdnum.exceptions import InvalidChecksum, ValidationError


class InvalidValue(ValueError):
    """A value that cannot be used; its message is the pt-BR reason (without the record's name)."""


STATES = {
    "AC": "Acre", "AL": "Alagoas", "AP": "Amapá", "AM": "Amazonas", "BA": "Bahia", "CE": "Ceará",
    "DF": "Distrito Federal", "ES": "Espírito Santo", "GO": "Goiás", "MA": "Maranhão",
    "MT": "Mato Grosso", "MS": "Mato Grosso do Sul", "MG": "Minas Gerais", "PA": "Pará",
    "PB": "Paraíba", "PR": "Paraná", "PE": "Pernambuco", "PI": "Piauí", "RJ": "Rio de Janeiro",
    "RN": "Rio Grande do Norte", "RS": "Rio Grande do Sul", "RO": "Rondônia", "RR": "Roraima",
    "SC": "Santa Catarina", "SP": "São Paulo", "SE": "Sergipe", "TO": "Tocantins",
}

# Area codes in use (Anatel); a number with any other DDD is a typo, not a phone.
DDDS = frozenset(
    "11 12 13 14 15 16 17 18 19 21 22 24 27 28 31 32 33 34 35 37 38 41 42 43 44 45 46 47 48 49 "
    "51 53 54 55 61 62 63 64 65 66 67 68 69 71 73 74 75 77 79 81 82 83 84 85 86 87 88 89 "
    "91 92 93 94 95 96 97 98 99".split()
)

MONEY_LIMIT = Decimal("1e12")  # Numeric(14, 2)


def fold(text: object) -> str:
    """Lower case, no accents, single spaces: the form in which two spellings compare equal (None → '')."""
    plain = unicodedata.normalize("NFKD", "" if text is None else str(text))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def clean_text(value: Any) -> str | None:
    """Trimmed text with single spaces; empty (or not text) → None. Lists are joined with '; '."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return join_list(value)
    if isinstance(value, bool):
        return None
    # control characters (a NUL byte pasted into a name) are junk: they become spaces, then collapse
    text = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in str(value)).split())
    return text or None


def text_list(value: Any) -> list[str] | None:
    """A multi-select value as a list of non-empty texts (a lone text becomes a list of one)."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    result = [text for text in (clean_text(item) for item in items) if text]
    return result or None


def join_list(values: Any) -> str | None:
    """How a multi-select value reads in a text (ticket, database column): items joined by '; '."""
    items = text_list(values)
    return "; ".join(items) if items else None


# --------------------------------------------------------------------------- CPF / CNPJ

@dataclass(frozen=True)
class Document:
    kind: str  # "cpf" | "cnpj"
    value: str  # 11 digits, or 14 characters (digits and, in the new CNPJ, upper-case letters)

    @property
    def masked(self) -> str:
        return mask_document(self.value)


def mask_document(value: str) -> str:
    """'52998224725' → '529.982.247-25'; 14 characters → CNPJ mask; anything else unchanged."""
    if len(value) == 11:
        return stdnum_cpf.format(value)
    if len(value) == 14:
        return stdnum_cnpj.format(value)
    return value


def document(raw: Any) -> Document:
    """The CPF or CNPJ in `raw` (masked or not), check digits verified; InvalidValue otherwise."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        raw = f"{raw:011d}" if raw < 10**11 else f"{raw:014d}"  # a number lost its leading zeros
    text = clean_text(raw)
    if text is None:
        raise InvalidValue("CPF/CNPJ ausente")
    compact = re.sub(r"[^0-9A-Za-z]", "", text).upper()
    shown = mask_document(compact) if len(compact) in (11, 14) else text
    if len(compact) == 11:
        if not compact.isdigit():
            raise InvalidValue(f"CPF {shown} contém letras")
        _check(stdnum_cpf, compact, "CPF", shown)
        return Document("cpf", compact)
    if len(compact) == 14:
        if not compact[-2:].isdigit():
            raise InvalidValue(f"CNPJ {shown}: os dígitos verificadores devem ser números")
        _check(stdnum_cnpj, compact, "CNPJ", shown)
        return Document("cnpj", compact)
    raise InvalidValue(f"documento {text!r} tem {len(compact)} caracteres (CPF tem 11, CNPJ tem 14)")


def _check(module, compact: str, name: str, shown: str) -> None:
    if len(set(compact)) == 1:  # 111.111.111-11 passes the arithmetic, but the Receita never issues it
        raise InvalidValue(f"{name} {shown} com todos os dígitos iguais")
    try:
        module.validate(compact)
    except InvalidChecksum:
        raise InvalidValue(f"{name} {shown} com dígitos verificadores errados") from None
    except ValidationError:
        raise InvalidValue(f"{name} {shown} em formato inválido") from None


# --------------------------------------------------------------------------- phone

def phone(raw: Any) -> str | None:
    """A Brazilian phone as 10 (landline) or 11 (mobile) digits with its DDD; None when empty.

    Accepts +55/55, a trunk 0 and a carrier code (0 XX DDD ...), and any mask. Never guesses a
    missing DDD or a missing ninth digit: such numbers are InvalidValue.
    """
    text = clean_text(raw)
    if text is None:
        return None
    digits = re.sub(r"\D", "", text)
    if not digits:
        raise InvalidValue("não contém dígitos")
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    elif len(digits) in (11, 12) and digits.startswith("0") and not digits.startswith("0800"):
        digits = digits[1:]
    elif len(digits) in (13, 14) and digits.startswith("0"):
        digits = digits[3:]  # 0 + carrier code + DDD + number
    if len(digits) in (8, 9):
        raise InvalidValue(f"sem DDD ({len(digits)} dígitos)")
    if len(digits) not in (10, 11):
        raise InvalidValue(f"tem {len(digits)} dígitos (esperado DDD + 8 ou 9 dígitos)")
    ddd, number = digits[:2], digits[2:]
    if ddd not in DDDS:
        raise InvalidValue(f"DDD {ddd} não existe")
    if len(set(number)) == 1:
        raise InvalidValue("número com todos os dígitos iguais")
    if len(number) == 9 and number[0] != "9":
        raise InvalidValue("celular de 9 dígitos deve começar com 9")
    if len(number) == 8 and number[0] not in "2345":
        raise InvalidValue("número fixo deve começar com 2, 3, 4 ou 5 (celular sem o nono dígito?)")
    return digits


# --------------------------------------------------------------------------- address

def cep(raw: Any) -> str | None:
    """A CEP as 8 digits; None when empty; InvalidValue when it is not a CEP."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 10**8:
        raw = f"{raw:08d}"  # a number lost its leading zero
    text = clean_text(raw)
    if text is None:
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) != 8 or re.search(r"[^\d\s.\-]", text):
        raise InvalidValue(f"não tem 8 dígitos ({len(digits)})")
    if digits == "0" * 8:
        raise InvalidValue("CEP só de zeros não existe")
    return digits


def format_cep(value: str) -> str:
    return f"{value[:5]}-{value[5:]}" if len(value) == 8 else value


_STATE_BY_NAME = {fold(name): uf for uf, name in STATES.items()}


def uf(raw: Any) -> str | None:
    """The two-letter state code from a code or a full name (any case, with or without accents)."""
    text = clean_text(raw)
    if text is None:
        return None
    key = fold(text).replace("-", " ").strip(" .")
    key = re.sub(r"^(estado|est\.?)\s+(de|do|da)\s+", "", key)
    if key.upper() in STATES:
        return key.upper()
    if key in _STATE_BY_NAME:
        return _STATE_BY_NAME[key]
    raise InvalidValue("não é uma UF nem o nome de um estado brasileiro")


def state_name(code: str) -> str:
    return STATES.get(code, code)


_NO_NUMBER = {"sn", "s n", "s/n", "s/nº", "s/n°", "sem numero", "sem número", "sn°", "snº"}


def house_number(raw: Any) -> str | None:
    """The house number as typed (trimmed); the many spellings of 'sem número' become 's/n'."""
    text = clean_text(raw)
    if text is None:
        return None
    return "s/n" if fold(text).replace(".", "") in _NO_NUMBER else text


# --------------------------------------------------------------------------- e-mail

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,63}$")


def email(raw: Any) -> tuple[str | None, list[str]]:
    """(the first valid address, lower-cased, or None; the other addresses found, discarded).

    InvalidValue when there is text but no valid address in it.
    """
    text = clean_text(raw)
    if text is None:
        return None, []
    candidates = [part.strip(" <>\"'") for part in re.split(r"[\s,;]+", text) if part.strip(" <>\"'")]
    valid = [part.lower() for part in candidates if _EMAIL.match(part) and ".." not in part]
    if not valid:
        if "@" not in text:
            raise InvalidValue("não tem @")
        raise InvalidValue("formato inválido")
    return valid[0], [part for part in candidates if "@" in part and part.lower() != valid[0]]


# --------------------------------------------------------------------------- money and dates

def money(raw: Any) -> Decimal | None:
    """Reais as an exact Decimal with 2 places: '45.900,00', 45900, 'R$ 45.900', 238500.5.

    Nothing is guessed: a negative value and the ambiguous '1,234' (thousands or decimals?) are
    InvalidValue.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, Decimal)):
        return _money_checked(Decimal(raw), raw)
    if isinstance(raw, float):
        return _money_checked(Decimal(repr(raw)), raw)
    text = clean_text(raw)
    if text is None:
        return None
    body = re.sub(r"(?i)^(r\$|brl)\s*", "", text).strip()
    negative = body.startswith("-")
    body = body.lstrip("-").strip()
    if not re.fullmatch(r"[\d.,\s]+", body) or not re.search(r"\d", body):
        raise InvalidValue("não é um valor em reais")
    body = body.replace(" ", "")
    if re.fullmatch(r"\d{1,3},\d{3}", body):
        raise InvalidValue("é ambíguo (a vírgula separa milhares ou centavos?): escreva com os centavos, "
                           "p.ex. 1.234,00 ou 1,23")
    decimal_mark: str | None
    if "," in body and "." in body:
        decimal_mark = "," if body.rfind(",") > body.rfind(".") else "."
    elif "," in body:
        decimal_mark = "," if body.count(",") == 1 else None
    elif "." in body:
        # pt-BR thousands ('45.900', '1.234.567') unless it reads as a decimal ('1234.56')
        decimal_mark = None if re.fullmatch(r"\d{1,3}(\.\d{3})+", body) else "."
    else:
        decimal_mark = None
    thousands = {",": ".", ".": ",", None: ".,"}[decimal_mark]
    integer = body.rsplit(decimal_mark, 1)[0] if decimal_mark else body
    if any(mark in integer for mark in thousands) and not re.fullmatch(r"\d{1,3}([.,]\d{3})+", integer):
        raise InvalidValue("não é um valor em reais")  # '12,5,0': not thousands groups
    for mark in thousands:
        body = body.replace(mark, "")
    if decimal_mark:
        if body.count(decimal_mark) != 1:
            raise InvalidValue("não é um valor em reais")
        body = body.replace(decimal_mark, ".")
    try:
        value = Decimal(body)
    except InvalidOperation:
        raise InvalidValue("não é um valor em reais") from None
    return _money_checked(-value if negative else value, text)


def _money_checked(value: Decimal, raw: Any) -> Decimal:
    if not value.is_finite() or abs(value) >= MONEY_LIMIT:
        raise InvalidValue("fora do intervalo aceito")
    if value < 0:
        raise InvalidValue("valor negativo")
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
                 "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y")


def date_time(raw: Any) -> datetime | None:
    """A date (and time) as iSales or a person writes it → naive datetime; None when empty."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=None, microsecond=0)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    text = clean_text(raw)
    if text is None or text.startswith("0000-00-00"):
        return None
    candidate = re.sub(r"(\.\d+)?(Z|[+-]\d{2}:?\d{2})$", "", text)  # fraction and zone: the local wall time stays
    for fmt in _DATE_FORMATS:
        try:
            moment = datetime.strptime(candidate, fmt)
        except ValueError:
            continue
        if not 1900 <= moment.year <= 2100:
            break
        return moment
    raise InvalidValue("não é uma data válida (use AAAA-MM-DD ou DD/MM/AAAA)")


def iso_date_time(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else None
