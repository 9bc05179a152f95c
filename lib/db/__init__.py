"""The local database: schema (tables), engine, migrations and the queries every step shares."""
