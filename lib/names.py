"""Whether two names written for one CPF/CNPJ can be the same person (docs/design.md §6, README).

The same person: names that differ only in accents, case, punctuation or spacing; in the particles
de/da/do/das/dos/e (and company suffixes such as Ltda, ME, EIRELI); in initials or common
abbreviations ("A." for Ana, "Ma." for Maria, "Fco" for Francisco, "Antun." for Antunes); or in
added names (one name's words all appear, in order, in the other's: "Ana Antunes" and "Ana Maria
Antunes da Silva"). Clearly different people: anything else — another first name ("Ana Antunes" /
"Bruno Barbosa") or a surname the other name lacks ("Ana Antunes" / "Ana Souza").
"""

from __future__ import annotations

import re
import unicodedata

PARTICLES = frozenset({"de", "da", "do", "das", "dos", "e", "d", "di", "du", "del"})
COMPANY_WORDS = frozenset({"ltda", "me", "epp", "eireli", "sa", "s/a", "mei", "cia", "slu"})
ABBREVIATIONS = {"ma": "maria", "fco": "francisco", "jo": "joao", "jos": "jose", "ant": "antonio",
                 "sta": "santa", "sto": "santo", "sra": "senhora", "sr": "senhor", "mª": "maria"}


def _words(name: str) -> list[tuple[str, bool]]:
    """(word without accents, in lower case; was it written abbreviated, with a final '.')."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(char for char in text if not unicodedata.combining(char)).casefold()
    words = []
    for raw in re.findall(r"[\w/]+\.?", text):
        word = raw.rstrip(".")
        if not word or word in PARTICLES or word in COMPANY_WORDS:
            continue
        words.append((word, raw.endswith(".") or len(word) == 1))
    return words


def _matches(short: tuple[str, bool], long: tuple[str, bool]) -> bool:
    """A word of one name standing for a word of the other: equal, an initial, an abbreviation."""
    (a, a_abbr), (b, b_abbr) = short, long
    if a == b:
        return True
    for (x, x_abbr), (y, _) in (((a, a_abbr), (b, b_abbr)), ((b, b_abbr), (a, a_abbr))):
        if ABBREVIATIONS.get(x) == y or (x_abbr and y.startswith(x)):
            return True
    return False


def same_person(first: str | None, second: str | None) -> bool:
    """True unless the two names clearly belong to different people (an empty name never conflicts)."""
    a, b = _words(first or ""), _words(second or "")
    if not a or not b:
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if not _matches(short[0], long[0]):
        return False  # another first name
    position = 1
    for word in short[1:]:  # every other word of the shorter name, in order, in the longer one
        while position < len(long) and not _matches(word, long[position]):
            position += 1
        if position == len(long):
            return False
        position += 1
    return True
