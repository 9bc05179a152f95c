"""The run table (execucao): one row per run of a step, with its counts and exit code."""

from __future__ import annotations

import json
import os
import socket

from sqlalchemy.engine import Engine

from lib.clock import db_now
from lib.db.schema import execucao
from lib.db.values import inserted_id


def start(engine: Engine, step: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(execucao.insert().values(
            etapa=step, iniciada_em=db_now(), pid=os.getpid(), maquina=socket.gethostname()[:255]))
        return inserted_id(result)


def finish(engine: Engine, run_id: int, exit_code: int, counts: dict, message: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(execucao.update().where(execucao.c.id == run_id).values(
            terminada_em=db_now(), codigo_saida=exit_code,
            contagens=json.dumps(counts, ensure_ascii=False, sort_keys=True), mensagem=message))

