"""The envelope of the JSON files in data/ and the one way to write them (atomically) and read them."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SyncError(f"não foi possível gravar {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SyncError(f"não foi possível gravar {path} (o arquivo anterior foi mantido): {exc.strerror or exc}") from None


def write_envelope(path: Path, step: str, run_id: int | None, body: dict[str, Any]) -> None:
    """Write a data/ file: the envelope (step, format, run, time) followed by the step's body."""
    envelope = {"etapa": step, "formato": FORMAT_VERSION, "execucao_id": run_id, "gerado_em": iso(utcnow())}
    envelope.update(body)
    write_atomic(path, dumps(envelope) + "\n")


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
    return data
