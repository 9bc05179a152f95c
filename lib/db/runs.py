"""The run table (execucao): one row per run of a step, with its counts and exit code."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime

from sqlalchemy.engine import Engine

from lib.db.schema import execucao
from lib.jsonfiles import utcnow


def db_now() -> datetime:
    """Now as stored in the database: naive UTC, whole seconds (MySQL DATETIME keeps no fraction)."""
    return utcnow().replace(tzinfo=None, microsecond=0)


def start(engine: Engine, step: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(execucao.insert().values(
            etapa=step, iniciada_em=db_now(), pid=os.getpid(), maquina=socket.gethostname()[:255]))
        return int(result.inserted_primary_key[0])


def finish(engine: Engine, run_id: int, exit_code: int, counts: dict, message: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(execucao.update().where(execucao.c.id == run_id).values(
            terminada_em=db_now(), codigo_saida=exit_code,
            contagens=json.dumps(counts, ensure_ascii=False, sort_keys=True), mensagem=message))

