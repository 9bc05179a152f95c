"""Step 00: create the local database, or upgrade it in place (the previous version's MySQL included)."""

from __future__ import annotations

from lib import panel
from lib.config import Settings
from lib.db import migrate
from lib.db.engine import make_engine
from lib.errors import SyncError
from lib.logs import redact
from lib.run import RunContext

STEP = "00"


def run(ctx: RunContext[Settings]) -> None:
    """The body of 00_schema_banco.py: runs without the run machinery's engine (it may not exist yet)."""
    engine = make_engine(ctx.settings.database_url, for_migrations=True)
    try:
        try:
            report = migrate.upgrade(engine)
        except SyncError:
            raise
        except Exception as exc:
            raise migrate.database_unavailable(exc) from None
        panel.refresh(engine, ctx.data_dir)  # the page exists from the start, every step "never ran"
    finally:
        engine.dispose()
    ctx.summary.extra["migracao"] = report.action
    print(f"{redact(ctx.settings.database_url)}: {report.describe()}")
