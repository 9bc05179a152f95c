"""A new operator's first runs, through the numbered scripts: every configuration problem at once,
the missing .env named, MySQL's system schemas refused, the default database inside DATA_DIR, and
no empty .db left behind by a mistyped path or a step run before 00.
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from tests.conftest import ROOT

ISALES_REQUIRED = ("ISALES_API_TOKEN", "ISALES_FUNIL_ID", "ISALES_COLUNA_INSTALACAO",
                   "ISALES_COLUNA_AUMENTO", "ISALES_COLUNA_CANCELADO")
FIELDCONTROL_REQUIRED = ("FIELDCONTROL_API_KEY", "FIELDCONTROL_SERVICO_INSTALACAO",
                         "FIELDCONTROL_SERVICO_AUMENTO", "FIELDCONTROL_SERVICO_CANCELAMENTO")


def test_01_with_nothing_configured_names_every_missing_variable_and_the_missing_env(run, tmp_path):
    result = run("01", env={"DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2, result.stderr
    for name in ISALES_REQUIRED:
        assert f"defina a variável {name}" in result.stderr
    assert "5 problemas na configuração" in result.stderr
    assert f"nenhum arquivo .env na pasta de trabalho ({tmp_path})" in result.stderr


def test_04_reports_missing_and_invalid_variables_together(run, tmp_path):
    (tmp_path / ".env").write_text("FIELDCONTROL_API_KEY=chave\nFIELDCONTROL_RATE_PER_SECOND=depressa\n",
                                   encoding="utf-8")
    result = run("04", env={"DATA_DIR": str(tmp_path / "data"), "FIELDCONTROL_API_URL": "ftp://servidor"})
    assert result.returncode == 2, result.stderr
    for name in FIELDCONTROL_REQUIRED[1:]:
        assert f"defina a variável {name}" in result.stderr
    assert "FIELDCONTROL_RATE_PER_SECOND='depressa' não é um número" in result.stderr
    assert "FIELDCONTROL_API_URL deve ser uma URL http(s)" in result.stderr
    assert "defina a variável FIELDCONTROL_API_KEY" not in result.stderr
    assert "nenhum arquivo .env" not in result.stderr  # there is one; it is just incomplete


def _mysql_url(database: str) -> str:
    """A MySQL URL on the test server when there is one (nothing is sent before the refusal)."""
    import os

    base = os.environ.get("TEST_MYSQL_URL") or "mysql+pymysql://root@127.0.0.1:3306/test"
    return make_url(base).set(database=database).render_as_string(hide_password=False)


@pytest.mark.parametrize("schema", ["mysql", "information_schema", "performance_schema", "sys", "MySQL"])
def test_00_refuses_the_system_schemas(run, tmp_path, schema):
    result = run("00", env={"DATABASE_URL": _mysql_url(schema), "DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2, result.stderr
    assert f"aponta para o banco '{schema}', que é do próprio MySQL/MariaDB" in result.stderr


def test_00_leaves_the_mysql_schema_untouched(run, tmp_path, mysql_server):
    """With the real server: the refusal comes before any table is written."""
    url = _mysql_url("mysql")
    engine = create_engine(url)
    try:
        before = set(inspect(engine).get_table_names())  # the machine's own state, whatever it holds
        result = run("00", env={"DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data")})
        assert result.returncode == 2, result.stderr
        engine.dispose()
        assert set(inspect(engine).get_table_names()) == before
    finally:
        engine.dispose()


def test_default_database_lives_in_data_dir_even_with_the_example_env(run, tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = run("00", env={"DATA_DIR": str(tmp_path / "outra")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outra" / "sync.db").is_file()
    assert not (tmp_path / "data" / "sync.db").exists()


@pytest.mark.parametrize("step", ["01", "03", "04"])
def test_a_step_before_00_leaves_no_empty_database(run, tmp_path, sandbox, step):
    from tests.conftest import sandbox_env

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "02_projetos_tratados.json").write_text("{}", encoding="utf-8")
    database = tmp_path / "data" / "sync.db"
    result = run(step, env=sandbox_env(sandbox, tmp_path, f"sqlite:///{database}"))
    assert result.returncode == 2, result.stderr
    assert f"o banco de dados {database} não existe" in result.stderr
    assert "rode python 00_schema_banco.py antes" in result.stderr
    assert not database.exists()
    assert not list((tmp_path / "data").glob("sync.db*"))


def test_a_mistyped_sqlite_path_leaves_nothing_behind(run, tmp_path, sandbox):
    from tests.conftest import sandbox_env

    mistyped = tmp_path / "dados" / "snyc.db"
    result = run("01", env=sandbox_env(sandbox, tmp_path, f"sqlite:///{mistyped}"))
    assert result.returncode == 2, result.stderr
    assert "confira DATABASE_URL" in result.stderr
    assert not mistyped.exists() and not mistyped.parent.exists()
