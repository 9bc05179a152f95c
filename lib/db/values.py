"""Fitting values to columns the same way on SQLite and MySQL, and comparing them for the audit.

SQLite does not enforce VARCHAR lengths or numeric precision and MySQL (strict) does: we check
before writing, so a poisoned record fails the same way on both, with a pt-BR reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, CursorResult, DateTime, Integer, Numeric, String, Table, Text

from lib.errors import RecordError

TEXT_MAX_BYTES = 65535  # MySQL TEXT


def check_fits(table: Table, values: Mapping[str, Any], record: str) -> None:
    """RecordError naming `record` and the field when a value does not fit its column."""
    rules = _rules(table)
    for name, value in values.items():
        if value is None:
            continue
        kind, limit = rules[name]
        if kind is None or (value.__class__ is _FITS.get(kind) and (kind != "string" or len(value) <= limit)):
            continue  # the common cases without a call (step 03 checks every value of every row)
        problem = _problem(kind, limit, value)
        if problem:
            raise RecordError(f"{record}: campo {table.name}.{name}{problem}")


_FITS: dict[str, Any] = {"string": str, "datetime": datetime, "integer": int}  # a value of this very class fits (strings: short)


def _problem(kind: str, limit: Any, value: Any) -> str | None:
    """Why `value` does not fit a column of `kind` (the text after the field's name), or None."""
    if kind == "string":
        if isinstance(value, str) and len(value) > limit:
            return f" tem {len(value)} caracteres; o limite é {limit}"
    elif kind == "text":
        if isinstance(value, str) and len(value) * 4 > TEXT_MAX_BYTES:  # may not fit: count the bytes
            size = len(value.encode("utf-8"))
            if size > TEXT_MAX_BYTES:
                return f" tem {size} bytes; o limite é {TEXT_MAX_BYTES}"
    elif kind == "numeric":
        try:
            number = Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            return f": {value!r} não é um número"
        if not number.is_finite() or abs(number) >= limit:
            return f": {value} está fora do intervalo aceito"
    elif kind == "datetime":
        if not isinstance(value, datetime):
            return f": {value!r} não é uma data/hora"
    elif not isinstance(value, int):  # integer
        return f": {value!r} não é um número inteiro"
    return None


_RULES: dict[Table, dict[str, tuple[str | None, Any]]] = {}


def _rules(table: Table) -> dict[str, tuple[str | None, Any]]:
    """Per column of `table`: what check_fits checks (kind) and against what (limit), worked out once."""
    rules = _RULES.get(table)
    if rules is None:
        rules = {}
        for column in table.c:
            column_type = column.type
            rule: tuple[str | None, Any] = (None, None)
            if isinstance(column_type, String):
                if isinstance(column_type, Text) or column_type.length is None:
                    rule = ("text", TEXT_MAX_BYTES)
                else:
                    rule = ("string", column_type.length)
            elif isinstance(column_type, Numeric) and not isinstance(column_type, Integer):
                rule = ("numeric", Decimal(10) ** ((column_type.precision or 18) - (column_type.scale or 0)))
            elif isinstance(column_type, DateTime):
                rule = ("datetime", None)
            elif isinstance(column_type, Integer):
                rule = ("integer", None)
            rules[column.name] = rule
        _RULES[table] = rules
    return rules


def comparable(table: Table, name: str, value: Any) -> Any:
    """`value` as the database gives it back, so that equal values compare equal."""
    if value is None:
        return None
    column_type = table.c[name].type
    if isinstance(column_type, Numeric) and not isinstance(column_type, Integer):
        scale = column_type.scale or 0
        return Decimal(value).quantize(Decimal(1).scaleb(-scale))
    if isinstance(column_type, DateTime) and isinstance(value, datetime):
        return value.replace(microsecond=0, tzinfo=None)
    if isinstance(column_type, Boolean):
        return bool(value)
    return value


def as_text(value: Any) -> str | None:
    """How a value is written in the change log (alteracao)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def changed_fields(table: Table, current: Mapping[Any, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (old, new)} for every field of `new` whose value differs from `current`."""
    changes = {}
    for name, value in new.items():
        old = comparable(table, name, current.get(name))
        fresh = comparable(table, name, value)
        if old != fresh:
            changes[name] = (current.get(name), value)
    return changes


IN_CHUNK = 500  # ids per IN (...) when reading existing rows in batches


def chunks(values: Iterable[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    """`values` without None and duplicates (order kept), in lists of at most `size`."""
    unique = list(dict.fromkeys(value for value in values if value is not None))
    for start in range(0, len(unique), size):
        yield unique[start:start + size]


def change_log_rows(table: Table, row_id: int, changes: Mapping[str, tuple[Any, Any]], *,
                    run_id: int | None, origin: str, moment: datetime) -> list[dict[str, Any]]:
    """The `alteracao` rows of `changes` ({field: (old, new)}) made to row `row_id` of `table`."""
    return [
        {"tabela": table.name, "registro_id": row_id, "campo": name, "valor_anterior": as_text(old),
         "valor_novo": as_text(new), "execucao_id": run_id, "origem": origin, "alterado_em": moment}
        for name, (old, new) in changes.items()
    ]


def inserted_id(result: CursorResult[Any]) -> int:
    """The id of the row an INSERT created (every supported driver reports it)."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("o banco não informou o id da linha criada")
    return int(key[0])
