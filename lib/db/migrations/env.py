"""Alembic environment: uses the connection handed over by lib/db/migrate.py, or DATABASE_URL."""

from alembic import context

from lib.db.schema import metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: Alembic's batch mode recreates tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:  # plain `alembic upgrade head` from the command line
    from lib import config
    from lib.db.engine import make_engine

    engine = make_engine(config.load().database_url, for_migrations=True)
    with engine.connect() as conn:
        run_migrations(conn)
        conn.commit()
    engine.dispose()
