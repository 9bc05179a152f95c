"""Checks of the project records that steps 02 and 03 read from data/ files, which a person may
edit by hand: the iSales id, the status against its column (current configuration), and an id
listed twice. Each problem is a pt-BR sentence naming the field; nothing is guessed."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from typing import Any

from lib import status as status_module
from lib.config import ColumnSettings
from lib.logs import clip

_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,18}")


def isales_id(value: Any) -> str | None:
    """The iSales id as its canonical text ('4711'), or None when it is not a positive integer
    written plainly: '05001', 'abc', '-3', '', ' 4711', 4711.0 and True are refused."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, str) and _CANONICAL_ID.fullmatch(value):
        return value
    return None


def id_problem(value: Any, where: str) -> str:
    shown = "ausente" if value is None else clip(repr(value), 40)
    return (f"registro {where} com isales_id {shown} inválido: deve ser um número inteiro positivo, "
            "sem zeros à esquerda, sinais ou espaços (como 4711); o registro não foi usado")


def status_problem(columns: ColumnSettings, coluna_id: Any, status: Any) -> str | None:
    """Why `status` contradicts the status of `coluna_id` by the configuration (None: it agrees)."""
    if isinstance(coluna_id, str) and coluna_id.strip().isdigit():
        coluna_id = int(coluna_id)
    expected = status_module.status_for_column(columns, coluna_id)
    if status == expected:
        return None
    return (f"campo status {status!r} contradiz a coluna_id {coluna_id}, que pela configuração atual "
            f"(ISALES_COLUNA_*) é {expected!r} ({status_module.LABELS[expected]}); o registro não foi usado: "
            "corrija status ou coluna_id no arquivo, ou rode o passo anterior de novo")


def duplicates(numbers: array) -> set[str]:
    """The ids (as canonical text) that occur more than once in `numbers`."""
    twice: set[str] = set()
    previous = None
    for number in sorted(numbers):
        if number == previous:
            twice.add(str(number))
        previous = number
    return twice


def repeated(entries: Iterable[tuple[str, Any]], where: str) -> dict[str, str]:
    """Ids listed more than once among `entries` ((position, raw record)) → the pt-BR problem
    naming every entry of that id. None of them is used: which one is right cannot be known.
    It keeps a line per entry: give it the entries of the ids found listed twice, not a whole file."""
    seen: dict[str, list[str]] = {}
    for position, raw in entries:
        key = isales_id(raw.get("isales_id")) if isinstance(raw, dict) else None
        if key is not None:
            seen.setdefault(key, []).append(f"{position}: coluna_id {raw.get('coluna_id')!r}, "
                                            f"status {raw.get('status')!r}")
    return {key: (f"projeto {key} aparece {len(found)} vezes {where} ({'; '.join(found)}); nenhuma das "
                  "entradas foi usada: corrija o arquivo ou rode o passo anterior de novo")
            for key, found in seen.items() if len(found) > 1}
