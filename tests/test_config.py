"""lib/config: required and malformed variables stop a step with exit 2 and name the variable."""

from __future__ import annotations

import pytest

from lib import config
from lib.errors import EXIT_CONFIG, ConfigError
from lib.logs import redact

ISALES = {
    "ISALES_API_TOKEN": "tok-123456",
    "ISALES_FUNIL_ID": "9001",
    "ISALES_COLUNA_INSTALACAO": "17840",
    "ISALES_COLUNA_AUMENTO": "20024, 20025",
    "ISALES_COLUNA_CANCELADO": "20363",
}
FIELD = {
    "FIELDCONTROL_API_KEY": "chave-abcdef",
    "FIELDCONTROL_SERVICO_INSTALACAO": "U2Vy",
    "FIELDCONTROL_SERVICO_AUMENTO": "U2Vz",
    "FIELDCONTROL_SERVICO_CANCELAMENTO": "U2Vt",
}


def test_defaults_and_lists():
    settings = config.load("isales", environ=ISALES)
    assert settings.database_url == "sqlite:///data/sync.db"
    assert str(settings.data_dir) == "data"
    assert settings.isales.api_url == "https://app.isales.company/api"
    assert settings.isales.colunas_aumento == (20024, 20025)
    assert settings.isales.desde.isoformat() == "2025-01-01"
    assert settings.isales.max_workers == 4 and settings.isales.refresh_budget == 300 and settings.isales.obsolete == ()
    assert settings.fieldcontrol is None  # a step reads only what it needs


def test_the_settings_of_a_step_carry_its_sections():
    fetch = config.load_for(config.FetchSettings, environ=ISALES)
    assert isinstance(fetch, config.FetchSettings) and fetch.isales.funil_id == 9001 and fetch.fieldcontrol is None
    push = config.load_for(config.PushSettings, environ=FIELD)
    assert push.fieldcontrol.servico_aumento == "U2Vz" and push.isales is None
    with pytest.raises(ConfigError, match="FIELDCONTROL_API_KEY"):
        config.load_for(config.PushSettings, environ=ISALES)
    with pytest.raises(TypeError, match="PushSettings sem a\\(s\\) seção\\(ões\\) fieldcontrol"):
        config.PushSettings(database_url="sqlite://", data_dir=fetch.data_dir, fieldcontrol=None)  # type: ignore[arg-type]


def test_database_default_follows_data_dir():
    assert config.load(environ={"DATA_DIR": "/srv/sync"}).database_url == "sqlite:////srv/sync/sync.db"


@pytest.mark.parametrize("missing", sorted(ISALES))
def test_missing_isales_variable_is_named(missing):
    environ = {k: v for k, v in ISALES.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        config.load("isales", environ=environ)
    assert missing in str(info.value)
    assert info.value.exit_code == EXIT_CONFIG


@pytest.mark.parametrize("name,value", [
    ("ISALES_FUNIL_ID", "abc"),
    ("ISALES_DESDE", "01/02/2025"),
    ("ISALES_API_URL", "app.isales.company/api"),
    ("ISALES_MAX_WORKERS", "0"),
    ("ISALES_REFRESH_BUDGET", "-1"),
    ("ISALES_REFRESH_BUDGET", "cem"),
    ("ISALES_COLUNA_CANCELADO", "17840"),  # the same column with two meanings
    ("ISALES_COLUNA_AUMENTO", "20024;x"),
])
def test_malformed_isales_variable_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        config.load("isales", environ={**ISALES, name: value})


def test_refresh_budget_and_the_obsolete_refresh_days():
    settings = config.load("isales", environ={**ISALES, "ISALES_REFRESH_BUDGET": "0", "ISALES_REFRESH_DAYS": "7"})
    assert settings.isales.refresh_budget == 0 and settings.isales.obsolete == ("ISALES_REFRESH_DAYS",)


@pytest.mark.parametrize("name,value", [
    ("FIELDCONTROL_RATE_PER_SECOND", "0"),
    ("FIELDCONTROL_RATE_PER_SECOND", "rápido"),
    ("FIELDCONTROL_API_URL", "ftp://x"),
    ("FIELDCONTROL_API_KEY", "   "),
    ("FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS", "-1"),
    ("FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS", "dez minutos"),
])
def test_malformed_fieldcontrol_variable_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        config.load("fieldcontrol", environ={**FIELD, name: value})


def test_settle_period_of_an_ambiguous_write_defaults_to_ten_minutes():
    assert config.load("fieldcontrol", environ=FIELD).fieldcontrol.settle_seconds == 600
    changed = config.load("fieldcontrol", environ={**FIELD, "FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS": "2.5"})
    assert changed.fieldcontrol.settle_seconds == 2.5


def test_geocoder_requires_user_agent_for_nominatim_and_key_for_google():
    with pytest.raises(ConfigError, match="GEOCODER_USER_AGENT"):
        config.load("geocoder", environ={})
    with pytest.raises(ConfigError, match="GOOGLE_MAPS_API_KEY"):
        config.load("geocoder", environ={"GEOCODER": "google"})
    with pytest.raises(ConfigError, match="GEOCODER"):
        config.load("geocoder", environ={"GEOCODER": "bing"})
    settings = config.load("geocoder", environ={"GEOCODER_USER_AGENT": "empresa-x", "GEOCODER_MIN_DELAY_SECONDS": "0"})
    assert settings.geocoder.min_delay_seconds == 0.0


def test_custom_field_labels_accept_aliases():
    settings = config.load("campos", environ={"ISALES_CAMPO_FORMA_PAGAMENTO": "PAGAMENTO | FORMA DE PAGAMENTO"})
    assert settings.campos["forma_pgto"] == ("PAGAMENTO", "FORMA DE PAGAMENTO")
    assert settings.campos["valor_seguro"] == ("VALOR DO SEGURO",)


def test_secrets_are_registered_for_redaction():
    config.load(environ={**ISALES, **FIELD, "ISALES_API_TOKEN": "canario-token-xyz",
                         "DATABASE_URL": "mysql+pymysql://app:senha-secreta@db/sync"})
    text = "GET /api/x?api_token=canario-token-xyz e chave-abcdef e mysql+pymysql://app:senha-secreta@db/sync"
    cleaned = redact(text)
    assert "canario-token-xyz" not in cleaned and "chave-abcdef" not in cleaned and "senha-secreta" not in cleaned


def test_dotenv_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("ISALES_FUNIL_ID=1\nDATA_DIR=do-arquivo\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for key in list(ISALES):
        monkeypatch.setenv(key, ISALES[key])
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.delenv("ENV_FILE", raising=False)
    settings = config.load("isales")
    assert settings.isales.funil_id == 9001  # the environment wins over .env
    assert str(settings.data_dir) == "do-arquivo"


def test_schema_script_rejects_a_bad_database_url(run):
    result = run("00", env={"DATABASE_URL": "postgresql://x/y"})
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
