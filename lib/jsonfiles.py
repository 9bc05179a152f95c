"""The envelope of the JSON files in data/ and the one way to write them (atomically) and read them.

Big arrays (the projects) are streamed both ways: written item by item from an iterator, in the
same human-readable layout as a whole-file dump, and read item by item with ijson, so that no step
holds a whole file in memory."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import ijson

from lib.clock import utcnow
from lib.errors import InputFileError, SyncError
from lib.logs import redact

FORMAT_VERSION = 1

FILE_01 = "01_projetos_isales.json"
FILE_02 = "02_projetos_tratados.json"
FILE_PENDENCIAS = "pendencias.json"


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a Z, to the second."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"não serializável em JSON: {type(value).__name__}")


def dumps(data: Any) -> str:
    """JSON text as the project writes it (UTF-8, readable, decimals as strings), redacted."""
    return redact(json.dumps(data, ensure_ascii=False, indent=1, default=_default))


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write `text` (or its chunks, as they are produced) to `path` through a temporary file and a
    rename: readers never see half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SyncError(f"não foi possível gravar {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in [text] if isinstance(text, str) else text:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:  # also a failure of the producer of the chunks: never a half file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise SyncError(f"não foi possível gravar {path} (o arquivo anterior foi mantido): "
                            f"{exc.strerror or exc}") from None
        raise


def write_envelope(path: Path, step: str, run_id: int | None, body: dict[str, Any]) -> None:
    """Write a data/ file: the envelope (step, format, run, time) followed by the step's body.

    A value of `body` that is an iterator (e.g. a generator of projects) is written item by item as
    it is produced; the file reads exactly as if the whole list had been dumped at once. A callable
    value is called when its turn comes (counts that are known only after the projects)."""
    envelope = {"etapa": step, "formato": FORMAT_VERSION, "execucao_id": run_id, "gerado_em": iso(utcnow())}
    envelope.update(body)
    write_atomic(path, _envelope_chunks(envelope))


def _envelope_chunks(envelope: dict[str, Any]) -> Iterator[str]:
    """dumps(envelope) + newline, in pieces: an iterator value becomes a JSON array item by item,
    and a callable value is called when its turn comes (what is known only after the arrays)."""
    if not any(isinstance(value, Iterator) for value in envelope.values()):
        yield dumps({key: value() if callable(value) else value for key, value in envelope.items()}) + "\n"
        return
    separator = "{"
    for key, value in envelope.items():
        yield f"{separator}\n {json.dumps(key, ensure_ascii=False)}: "
        separator = ","
        if callable(value):
            value = value()
        if not isinstance(value, Iterator):
            yield _indent(dumps(value), 1)
            continue
        opening = "["
        for item in value:
            yield f"{opening}\n  {_indent(dumps(item), 2)}"
            opening = ","
        yield "[]" if opening == "[" else "\n ]"
    yield "\n}\n"


def _indent(text: str, spaces: int) -> str:
    """A nested value's JSON text: its lines after the first moved right (strings hold no newline)."""
    return text.replace("\n", "\n" + " " * spaces)


def read_envelope(path: Path, step: str, *, produced_by: str) -> dict[str, Any]:
    """Read a data/ file written by step `step`; InputFileError with a pt-BR reason otherwise.

    `produced_by` names the script to run when the file is missing (e.g. "01_get_projetos_isales.py").
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"arquivo {path} não encontrado: rode {produced_by} antes") from None
    except OSError as exc:
        raise InputFileError(f"não foi possível ler {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"arquivo {path} não está em UTF-8 (byte inválido na posição {exc.start}): rode {produced_by} novamente"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"arquivo {path} não é JSON válido (linha {exc.lineno}, coluna {exc.colno}: {exc.msg}); "
            f"está truncado ou corrompido: rode {produced_by} novamente"
        ) from None
    _check_envelope(path, data, step, produced_by)
    return data


@dataclass
class Envelope:
    """A data/ file read in a streaming way: every top-level field but the streamed arrays, which
    are read item by item (`items`), as often as needed, each time from the file."""

    path: Path
    header: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)  # items of each streamed array

    def items(self, name: str) -> Iterator[Any]:
        """The items of the array `name` (numbers as json.loads gives them)."""
        if name not in self.sizes:
            return
        with open(self.path, "rb") as handle:
            yield from ijson.items(handle, f"{name}.item", use_float=True)

    def data(self) -> dict[str, Any]:
        """The file as read_envelope gives it, with each streamed array as a StreamedArray."""
        return {**self.header, **{name: StreamedArray(self, name) for name in self.sizes}}


@dataclass
class StreamedArray:
    """An array of a data/ file, read from the file each time it is iterated."""

    envelope: Envelope
    name: str

    def __iter__(self) -> Iterator[Any]:
        return self.envelope.items(self.name)

    def __len__(self) -> int:
        return self.envelope.sizes[self.name]


def stream_envelope(path: Path, step: str, *, produced_by: str, arrays: tuple[str, ...]) -> Envelope:
    """Like read_envelope, without loading the top-level `arrays`: the whole file is checked first
    (one pass of the parser, building only the other fields), so that a truncated or corrupted file
    is refused before any of it is used. A top-level field of `arrays` that is not an array stays
    in the header (the step then explains it)."""
    path = Path(path)
    try:
        header, sizes = _scan(path, arrays)
    except FileNotFoundError:
        raise InputFileError(f"arquivo {path} não encontrado: rode {produced_by} antes") from None
    except OSError as exc:
        raise InputFileError(f"não foi possível ler {path}: {exc.strerror or exc}") from None
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        read_envelope(path, step, produced_by=produced_by)  # explains what is wrong, with line and column
        raise InputFileError(f"arquivo {path} não é JSON válido; está truncado ou corrompido: "
                             f"rode {produced_by} novamente") from None
    _check_envelope(path, header, step, produced_by)
    return Envelope(path, header, sizes)


def _scan(path: Path, arrays: tuple[str, ...]) -> tuple[Any, dict[str, int]]:
    """The top-level fields but `arrays` (built), and how many items each of `arrays` has. The whole
    file goes through the parser (trailing text included), as basic events: no path is built for
    each of the arrays' events (what a pass over a big file cost most)."""
    header: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    with open(path, "rb") as handle:
        events = ijson.basic_parse(handle, use_float=True)
        first = next(events, None)
        if first is None or first[0] != "start_map":
            return [], {}
        for event, value in events:
            if event == "end_map":  # the top-level object's end
                break
            key = value
            event, value = _next(events)
            if key in arrays and event == "start_array":
                sizes[key] = sizes.get(key, 0) + _count_items(events)
            else:
                header[key] = _build(event, value, events)
        for _rest in events:  # only a parse error can come after the top-level object
            pass
    return header, sizes


def _next(events: Iterator[tuple[str, Any]]) -> tuple[str, Any]:
    following = next(events, None)
    if following is None:
        raise ValueError("fim inesperado do arquivo")
    return following


_OPENS = frozenset({"start_map", "start_array"})
_CLOSES = frozenset({"end_map", "end_array"})


def _count_items(events: Iterator[tuple[str, Any]]) -> int:
    """The items of the array whose start was just read (its events consumed up to its end)."""
    count = depth = 0
    for event, _value in events:
        if depth == 0:
            if event == "end_array":
                return count
            count += 1
        if event in _OPENS:
            depth += 1
        elif event in _CLOSES:
            depth -= 1
    raise ValueError("fim inesperado do arquivo")


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]]) -> Any:
    """The value that starts with (event, value), its events consumed up to its end."""
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1 if event in _OPENS else 0
    while depth:
        event, value = _next(events)
        builder.event(event, value)
        if event in _OPENS:
            depth += 1
        elif event in _CLOSES:
            depth -= 1
    return builder.value


def _check_envelope(path: Path, data: Any, step: str, produced_by: str) -> None:
    if not isinstance(data, dict) or "etapa" not in data:
        raise InputFileError(f"arquivo {path} não tem o envelope esperado (campo 'etapa'): rode {produced_by} novamente")
    if data.get("etapa") != step:
        raise InputFileError(
            f"arquivo {path} foi gerado pela etapa {data.get('etapa')!r}, esperado {step!r}: rode {produced_by} novamente"
        )
    if data.get("formato") != FORMAT_VERSION:
        raise InputFileError(
            f"arquivo {path} tem formato {data.get('formato')!r}, esta versão lê o formato {FORMAT_VERSION}: "
            f"rode {produced_by} novamente"
        )
