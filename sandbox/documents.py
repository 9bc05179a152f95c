"""CPF/CNPJ (numeric and the new alphanumeric CNPJ), phone and e-mail generators for test data.

Check digits are computed here on purpose (the sandbox imports nothing from lib/).
"""

from __future__ import annotations

import random
import string
import unicodedata

_CNPJ_W1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
_CNPJ_W2 = [6] + _CNPJ_W1


def _dv(total: int) -> int:
    rest = total % 11
    return 0 if rest < 2 else 11 - rest


def cpf_check_digits(base9: str) -> str:
    d1 = _dv(sum(int(c) * w for c, w in zip(base9, range(10, 1, -1), strict=True)))
    d2 = _dv(sum(int(c) * w for c, w in zip(base9 + str(d1), range(11, 1, -1), strict=True)))
    return f"{d1}{d2}"


def cnpj_check_digits(base12: str) -> str:
    """Check digits of a numeric or alphanumeric CNPJ base (character value = ord(c) - 48)."""
    values = [ord(c) - 48 for c in base12.upper()]
    d1 = _dv(sum(v * w for v, w in zip(values, _CNPJ_W1, strict=True)))
    d2 = _dv(sum(v * w for v, w in zip(values + [d1], _CNPJ_W2, strict=True)))
    return f"{d1}{d2}"


def mask_cpf(d: str) -> str:
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def mask_cnpj(d: str) -> str:
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


def _break_last_digit(doc: str) -> str:
    return doc[:-1] + str((int(doc[-1]) + 1) % 10)


def make_cpf(rng: random.Random, *, valid: bool = True) -> str:
    """An 11-digit CPF (unmasked); invalid ones fail their check digits or are repeated digits."""
    base = "".join(rng.choice(string.digits) for _ in range(9))
    doc = base + cpf_check_digits(base)
    if valid:
        return doc
    if rng.random() < 0.3:
        return rng.choice(string.digits[1:]) * 11
    return _break_last_digit(doc)


def make_cnpj(rng: random.Random, *, valid: bool = True, alphanumeric: bool = False) -> str:
    """A 14-character CNPJ (unmasked); alphanumeric ones follow the 2026 format."""
    if alphanumeric:
        alphabet = string.digits + string.ascii_uppercase
        root = "".join(rng.choice(alphabet) for _ in range(8))
        branch = "".join(rng.choice(alphabet) for _ in range(4))
    else:
        root = "".join(rng.choice(string.digits) for _ in range(8))
        branch = rng.choice(["0001", "0001", "0001", "0002", "0003"])
    doc = root + branch + cnpj_check_digits(root + branch)
    return doc if valid else _break_last_digit(doc)


def document_variant(rng: random.Random, doc: str) -> str:
    """The document as a salesperson typed it: usually masked, sometimes bare or sloppy."""
    roll = rng.random()
    masked = mask_cpf(doc) if len(doc) == 11 else mask_cnpj(doc) if len(doc) == 14 else doc
    if roll < 0.72:
        return masked
    if roll < 0.92:
        return doc
    if roll < 0.96:
        return f" {masked} "
    return masked.replace(".", "").replace("/", " ")


def make_phone(rng: random.Random, ddd: str, *, mobile: bool = True) -> str | None:
    """A Brazilian phone number in one of the shapes seen in CRMs."""
    if mobile:
        body = "9" + "".join(rng.choice(string.digits) for _ in range(8))
        body = body[:1] + rng.choice("6789") + body[2:]
    else:
        body = rng.choice("2345") + "".join(rng.choice(string.digits) for _ in range(7))
    head, tail = body[:-4], body[-4:]
    shapes = [
        f"({ddd}) {head}-{tail}", f"({ddd}) {head}-{tail}", f"({ddd}) {head}-{tail}",
        f"{ddd}{body}", f"+55 {ddd} {head}-{tail}", f"+55 ({ddd}) {head}-{tail}",
        f"({ddd}){head}-{tail}", f"{ddd} {head[:1]} {head[1:]} {tail}" if mobile else f"{ddd} {head} {tail}",
        f"{ddd}{head}-{tail}", f"55{ddd}{body}", f"{head}-{tail}",
    ]
    return rng.choice(shapes)


def junk_phone(rng: random.Random) -> str | None:
    return rng.choice(["", None, "não tem", "0", "99999", "(00) 0000-0000", "ver whatsapp"])


_EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "exemplo.com.br", "mail.example.com"]


def make_email(rng: random.Random, name: str) -> str | None:
    parts = [p for p in ascii_words(name) if len(p) > 2] or ["cliente"]
    local = ".".join(parts[:2]) if rng.random() < 0.6 else parts[0] + str(rng.randint(1, 99))
    email = f"{local}@{rng.choice(_EMAIL_DOMAINS)}"
    roll = rng.random()
    if roll < 0.08:
        return email.title() + " "
    if roll < 0.11:
        return email.split("@")[0] + "@exemplo"
    if roll < 0.14:
        return rng.choice(["", None, "nao tem", "-"])
    if roll < 0.16:
        return f"{email}; {parts[0]}@example.com"
    return email


def ascii_words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if c.isascii() and (c.isalnum() or c == " "))
    return plain.lower().split()
