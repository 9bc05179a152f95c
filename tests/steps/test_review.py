"""lib/steps/review.py: "revise no FieldControl" items are listed once, until the operator marks them
done (04 --revisado) or they disappear; once closed they never come back."""

from __future__ import annotations

from sqlalchemy import select

import lib.db.schema as t
from lib.db import pending
from lib.steps import review
from tests.conftest import sandbox_env

KEY = review.key("telefone", "UGhvbmU6MQ==")


def items(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [(r.chave, r.motivo, r.resolvida_em is None) for r in conn.execute(
            select(t.pendencia).where(t.pendencia.c.etapa == "04").order_by(t.pendencia.c.id))]


def test_listed_once_until_done_and_never_again(engine, sandbox, tmp_path, migrated_db, run):
    with engine.begin() as conn:
        assert review.report(conn, KEY, "telefone antigo (11) 9…-…21 do cliente Maria", isales_id=4711)
        assert not review.report(conn, KEY, "telefone antigo (11) 9…-…21 do cliente Maria", isales_id=4711)
        pending.record(conn, "04", "acao:ticket:9", "recusada")  # not a review item: --revisado leaves it
    assert items(engine) == [(KEY, "revise no FieldControl: telefone antigo (11) 9…-…21 do cliente Maria", True),
                             ("acao:ticket:9", "recusada", True)]
    env = sandbox_env(sandbox, tmp_path, migrated_db)
    done = run("04", "--revisado", KEY, "revisar:nada", "acao:ticket:9", env=env)
    assert done.returncode == 3, done.stdout + done.stderr  # the other pending item is still open
    assert f"marcado como revisado: {KEY}" in done.stdout and "'revisar:nada'" in done.stdout
    assert [open_ for _k, _m, open_ in items(engine)] == [False, True]
    with engine.begin() as conn:  # seen again by the next run: it stays closed
        assert not review.report(conn, KEY, "telefone antigo (11) 9…-…21 do cliente Maria", isales_id=4711)
    assert [open_ for _k, _m, open_ in items(engine)] == [False, True]
