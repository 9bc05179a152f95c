"""Settings from the environment and `.env`, validated once, with pt-BR errors naming the variable.

A step asks only for the sections it needs, so a missing FieldControl key never stops step 01:
`load_for(FetchSettings)` gives step 01 its settings with `isales` typed as present (`load(*names)`
is the untyped form for tools and tests). Secrets found in the environment are registered for
redaction at load time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import urlparse

from lib.errors import ConfigError
from lib.logs import register_secret

SECRET_VARIABLES = ("ISALES_API_TOKEN", "FIELDCONTROL_API_KEY", "GOOGLE_MAPS_API_KEY", "SMTP_PASSWORD")

# Custom-field labels of the reference account: new label first, old labels as fallback.
DEFAULT_CAMPOS = {
    "valor_seguro": ("ISALES_CAMPO_VALOR_SEGURO", ["VALOR DO SEGURO"]),
    "forma_pgto": ("ISALES_CAMPO_FORMA_PAGAMENTO", ["FORMA DE PAGAMENTO", "Forma de Pagamento"]),
    "responsavel_financiamento": (
        "ISALES_CAMPO_FINANCIAMENTO",
        ["FINANCIAMENTO NO NOME DE (somente se a FORMA DE PAGMENTO for FINANCIAMENTO)"],
    ),
    "detalhes_pagamento": ("ISALES_CAMPO_DETALHAMENTO_PAGAMENTO", ["DETALHAMENTO DO PAGAMENTO"]),
    "observacoes": ("ISALES_CAMPO_OBSERVACOES", ["OBSERVAÇÕES"]),
    "acesso": ("ISALES_CAMPO_ACESSO", ["ACESSO AO LOCAL (marcar todas as opções aplicáveis)"]),
}


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 5


@dataclass(frozen=True)
class IsalesSettings:
    api_url: str
    token: str
    funil_id: int
    desde: date
    colunas_instalacao: tuple[int, ...]
    colunas_aumento: tuple[int, ...]
    colunas_cancelado: tuple[int, ...]
    max_workers: int = 4
    refresh_budget: int = 300  # detail calls per run for the rolling refresh (3 per card)
    obsolete: tuple[str, ...] = ()  # variables still set that no longer mean anything (warned by 01)
    rate_per_minute: float | None = None  # unknown real limit: unpaced unless configured


@dataclass(frozen=True)
class ColumnSettings:
    """The iSales columns of each status (ISALES_COLUNA_*): step 01 classifies cards by them, and
    steps 02 and 03 check the status written in their input files against them."""

    colunas_instalacao: tuple[int, ...]
    colunas_aumento: tuple[int, ...]
    colunas_cancelado: tuple[int, ...]


@dataclass(frozen=True)
class FieldControlSettings:
    api_url: str
    api_key: str
    servico_instalacao: str
    servico_aumento: str
    servico_cancelamento: str
    rate_per_second: float = 1.0
    # an ambiguous write (timeout, cut connection, 5xx) is never resent before this many seconds
    # have passed since the attempt AND a look-up made after them found nothing: the real server
    # may commit a write long after the client gave up (issue 12 §1)
    settle_seconds: float = 600.0


@dataclass(frozen=True)
class GeocoderSettings:
    provider: str  # "nominatim" or "google"
    url: str
    user_agent: str
    min_delay_seconds: float = 1.0
    google_api_key: str | None = None
    google_url: str = "https://maps.googleapis.com"


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    user: str | None
    password: str | None
    starttls: bool
    sender: str | None
    recipients: tuple[str, ...]


SECTIONS = ("isales", "colunas", "fieldcontrol", "geocoder", "smtp", "campos")


@dataclass(frozen=True)
class Settings:
    """What every step has; a section is None unless it was loaded (see the subclasses below)."""

    SECTIONS: ClassVar[tuple[str, ...]] = ()  # the sections `load_for` loads and the type guarantees

    database_url: str
    data_dir: Path
    http: HttpSettings = field(default_factory=HttpSettings)
    isales: IsalesSettings | None = None
    colunas: ColumnSettings | None = None
    fieldcontrol: FieldControlSettings | None = None
    geocoder: GeocoderSettings | None = None
    smtp: SmtpSettings | None = None
    campos: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [name for name in self.SECTIONS if getattr(self, name) is None]
        if missing:
            raise TypeError(f"{type(self).__name__} sem a(s) seção(ões) {', '.join(missing)}")


# The settings of each step, its required sections typed as present.

@dataclass(frozen=True, kw_only=True)
class FetchSettings(Settings):
    """Step 01."""

    SECTIONS: ClassVar[tuple[str, ...]] = ("isales",)  # "colunas" comes with it
    isales: IsalesSettings
    colunas: ColumnSettings


@dataclass(frozen=True, kw_only=True)
class TreatSettings(Settings):
    """Step 02."""

    SECTIONS: ClassVar[tuple[str, ...]] = ("geocoder", "campos", "colunas")
    geocoder: GeocoderSettings
    colunas: ColumnSettings


@dataclass(frozen=True, kw_only=True)
class LocalSettings(Settings):
    """Step 03."""

    SECTIONS: ClassVar[tuple[str, ...]] = ("colunas",)
    colunas: ColumnSettings


@dataclass(frozen=True, kw_only=True)
class PushSettings(Settings):
    """Step 04 (and --conferir)."""

    SECTIONS: ClassVar[tuple[str, ...]] = ("fieldcontrol",)
    fieldcontrol: FieldControlSettings


@dataclass(frozen=True, kw_only=True)
class ReportSettings(Settings):
    """The e-mail report after a run."""

    SECTIONS: ClassVar[tuple[str, ...]] = ("smtp",)
    smtp: SmtpSettings


S = TypeVar("S", bound=Settings)


Reader = TypeVar("Reader", bound=Callable[..., Any])


def _collected(placeholder: object) -> Callable[[Reader], Reader]:
    """Make a reader record its ConfigError and return `placeholder`, so that one run of a step
    reports every missing or invalid variable at once instead of one per run."""

    def wrap(method: Reader) -> Reader:
        @functools.wraps(method)
        def reader(self: _Env, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except ConfigError as exc:
                self.error(exc.message)
                return placeholder

        return cast(Reader, reader)

    return wrap


class _Env:
    """Reads and validates variables; every error names the variable and is collected in `errors`."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    @_collected(None)
    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(f"configuração ausente: defina a variável {name} (veja .env.example)")
            return default
        return value

    def required(self, name: str) -> str:
        return self.text(name, required=True)  # type: ignore[return-value]

    @_collected("")
    def url(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.text(name, default, required=required)
        if value is None and required:
            return ""  # already reported as missing
        parsed = urlparse(value or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"configuração inválida: {name} deve ser uma URL http(s), p.ex. https://servidor/caminho")
        return value.rstrip("/")  # type: ignore[union-attr]

    @_collected(0)
    def integer(self, name: str, default: int | None = None, *, minimum: int | None = None,
            required: bool = False) -> int:
        value = self.text(name, required=required)
        if value is None:
            return default  # type: ignore[return-value]
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"configuração inválida: {name}={value!r} não é um número inteiro") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"configuração inválida: {name} deve ser no mínimo {minimum}")
        return number

    @_collected(0.0)
    def number(self, name: str, default: float, *, positive: bool = False) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value.replace(",", "."))
        except ValueError:
            raise ConfigError(f"configuração inválida: {name}={value!r} não é um número") from None
        if number < 0 or (positive and number == 0) or number != number:
            raise ConfigError(f"configuração inválida: {name} deve ser um número {'positivo' if positive else '≥ 0'}")
        return number

    @_collected(())
    def int_list(self, name: str) -> tuple[int, ...]:
        value = self.required(name)
        if value is None:
            return ()  # already reported as missing
        try:
            numbers = tuple(int(part) for part in value.replace(";", ",").split(",") if part.strip())
        except ValueError:
            raise ConfigError(
                f"configuração inválida: {name}={value!r} deve ser um id de coluna ou uma lista separada por vírgulas"
            ) from None
        if not numbers:
            raise ConfigError(f"configuração ausente: defina a variável {name}")
        return numbers

    @_collected(date.min)
    def day(self, name: str, default: str) -> date:
        value = self.text(name, default)
        try:
            return date.fromisoformat(value)  # type: ignore[arg-type]
        except ValueError:
            raise ConfigError(f"configuração inválida: {name}={value!r} deve ser uma data AAAA-MM-DD") from None

    @_collected(False)
    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "sim", "s", "yes", "on"):
            return True
        if lowered in ("0", "false", "nao", "não", "n", "no", "off"):
            return False
        raise ConfigError(f"configuração inválida: {name}={value!r} deve ser 1/0, sim/não ou true/false")


def _load_dotenv(environ: dict[str, str]) -> Path | None:
    """Load ENV_FILE or ./.env into `environ`; variables already set win. The file read, if any."""
    from dotenv import dotenv_values

    path = Path(environ.get("ENV_FILE") or ".env")
    if environ.get("ENV_FILE") and not path.is_file():
        raise ConfigError(f"configuração inválida: ENV_FILE aponta para {path}, que não existe")
    if not path.is_file():
        return None
    for key, value in dotenv_values(path).items():
        if value is not None and key not in environ:
            environ[key] = value
    return path


def load(*sections: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings with the given sections ("isales", "colunas", "fieldcontrol", "geocoder", "smtp",
    "campos"); "colunas" is the ISALES_COLUNA_* part of "isales" alone.

    Without `environ`, reads os.environ plus the `.env` file of the working directory.
    Raises ConfigError (exit 2) naming every missing or malformed variable of those sections.
    """
    return _load(Settings, sections, environ)


def load_for(kind: type[S], *, environ: Mapping[str, str] | None = None) -> S:
    """The settings of a step (`FetchSettings`, `PushSettings`…): the sections it requires, typed as present."""
    return _load(kind, kind.SECTIONS, environ)


def _load(kind: type[S], sections: tuple[str, ...], environ: Mapping[str, str] | None) -> S:
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown settings sections: {sorted(unknown)}")
    env_map: dict[str, str] = dict(os.environ if environ is None else environ)
    dotenv = _load_dotenv(env_map) if environ is None else None
    for name in SECRET_VARIABLES:
        register_secret(env_map.get(name))
    env = _Env(env_map)

    data_dir = Path(env.text("DATA_DIR", "data") or "data")
    database_url = _database_url(env, data_dir)
    http = HttpSettings(
        connect_timeout=env.number("HTTP_TIMEOUT_CONEXAO", 5.0, positive=True),
        read_timeout=env.number("HTTP_TIMEOUT_LEITURA", 30.0, positive=True),
        max_attempts=env.integer("HTTP_MAX_TENTATIVAS", 5, minimum=1),
    )
    isales = _isales(env) if "isales" in sections else None
    colunas = (ColumnSettings(isales.colunas_instalacao, isales.colunas_aumento, isales.colunas_cancelado)
               if isales is not None else _columns(env) if "colunas" in sections else None)
    fieldcontrol = _fieldcontrol(env) if "fieldcontrol" in sections else None
    geocoder = _geocoder(env) if "geocoder" in sections else None
    smtp = _smtp(env) if "smtp" in sections else None
    campos = _campos(env) if "campos" in sections else {}
    if env.errors:
        raise ConfigError(_problems_message(env.errors, dotenv if environ is None else False))
    return kind(database_url=database_url, data_dir=data_dir, http=http, isales=isales, colunas=colunas,
                fieldcontrol=fieldcontrol, geocoder=geocoder, smtp=smtp, campos=campos)


def _problems_message(errors: list[str], dotenv: Path | None | bool) -> str:
    """One message for every problem found; says so when no .env was read (`dotenv` is None)."""
    if len(errors) == 1:
        message = errors[0]
    else:
        message = f"{len(errors)} problemas na configuração:\n" + "\n".join(f"  - {error}" for error in errors)
    if dotenv is None:
        message += (f"\nnenhum arquivo .env na pasta de trabalho ({Path.cwd()}): as variáveis vêm só do "
                    "ambiente; copie .env.example para .env e preencha")
    return message


def _database_url(env: _Env, data_dir: Path) -> str:
    """DATABASE_URL (default: sync.db in DATA_DIR), checked by the one parser of database URLs, which
    also registers its password as a secret; a URL it refuses is a problem of the configuration."""
    from lib.db.engine import parse_database_url

    url = env.text("DATABASE_URL") or f"sqlite:///{data_dir.as_posix()}/sync.db"
    try:
        parse_database_url(url)
    except ConfigError as exc:
        env.error(exc.message)
    return url


def _columns(env: _Env) -> ColumnSettings:
    columns = {
        "ISALES_COLUNA_INSTALACAO": env.int_list("ISALES_COLUNA_INSTALACAO"),
        "ISALES_COLUNA_AUMENTO": env.int_list("ISALES_COLUNA_AUMENTO"),
        "ISALES_COLUNA_CANCELADO": env.int_list("ISALES_COLUNA_CANCELADO"),
    }
    seen: dict[int, str] = {}
    for name, ids in columns.items():
        for column in ids:
            if column in seen:
                env.error(f"configuração inválida: a coluna {column} está em {seen[column]} e em {name}; "
                          "cada coluna deve ter um só significado")
            seen[column] = name
    return ColumnSettings(colunas_instalacao=columns["ISALES_COLUNA_INSTALACAO"],
                          colunas_aumento=columns["ISALES_COLUNA_AUMENTO"],
                          colunas_cancelado=columns["ISALES_COLUNA_CANCELADO"])


def _isales(env: _Env) -> IsalesSettings:
    columns = _columns(env)
    return IsalesSettings(
        api_url=env.url("ISALES_API_URL", "https://app.isales.company/api"),
        token=env.required("ISALES_API_TOKEN"),
        funil_id=env.integer("ISALES_FUNIL_ID", required=True),
        desde=env.day("ISALES_DESDE", "2025-01-01"),
        colunas_instalacao=columns.colunas_instalacao,
        colunas_aumento=columns.colunas_aumento,
        colunas_cancelado=columns.colunas_cancelado,
        max_workers=env.integer("ISALES_MAX_WORKERS", 4, minimum=1),
        refresh_budget=env.integer("ISALES_REFRESH_BUDGET", 300, minimum=0),
        obsolete=tuple(name for name in OBSOLETE_ISALES if env.raw(name) is not None),
        rate_per_minute=env.number("ISALES_RATE_PER_MINUTE", 0.0) or None,
    )


OBSOLETE_ISALES = {  # variable → what replaced it (step 01 warns while it is still set)
    "ISALES_REFRESH_DAYS": "a renovação agora é contínua, limitada por ISALES_REFRESH_BUDGET chamadas por execução",
}


def _fieldcontrol(env: _Env) -> FieldControlSettings:
    return FieldControlSettings(
        api_url=env.url("FIELDCONTROL_API_URL", "https://carchost.fieldcontrol.com.br"),
        api_key=env.required("FIELDCONTROL_API_KEY"),
        servico_instalacao=env.required("FIELDCONTROL_SERVICO_INSTALACAO"),
        servico_aumento=env.required("FIELDCONTROL_SERVICO_AUMENTO"),
        servico_cancelamento=env.required("FIELDCONTROL_SERVICO_CANCELAMENTO"),
        rate_per_second=env.number("FIELDCONTROL_RATE_PER_SECOND", 1.0, positive=True),
        settle_seconds=env.number("FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS", 600.0),
    )


def _geocoder(env: _Env) -> GeocoderSettings:
    provider = (env.text("GEOCODER", "nominatim") or "nominatim").lower()
    if provider not in ("nominatim", "google"):
        env.error("configuração inválida: GEOCODER deve ser 'nominatim' ou 'google'")
    google_key = env.text("GOOGLE_MAPS_API_KEY", required=provider == "google")
    return GeocoderSettings(
        provider=provider,
        url=env.url("GEOCODER_URL", "https://nominatim.openstreetmap.org"),
        user_agent=env.text("GEOCODER_USER_AGENT", required=provider == "nominatim")
        or "isales-field-sync",
        min_delay_seconds=env.number("GEOCODER_MIN_DELAY_SECONDS", 1.0),
        google_api_key=google_key,
        google_url=env.url("GOOGLE_GEOCODER_URL", "https://maps.googleapis.com"),
    )


def _smtp(env: _Env) -> SmtpSettings:
    recipients = tuple(
        part.strip() for part in (env.text("RELATORIO_EMAIL_PARA") or "").split(",") if part.strip()
    )
    host = env.text("SMTP_HOST")
    sender = env.text("RELATORIO_EMAIL_DE")
    if host and not recipients:
        env.error("configuração ausente: SMTP_HOST está definido; defina também RELATORIO_EMAIL_PARA")
    if host and not sender:
        env.error("configuração ausente: SMTP_HOST está definido; defina também RELATORIO_EMAIL_DE")
    return SmtpSettings(
        host=host,
        port=env.integer("SMTP_PORT", 587, minimum=1),
        user=env.text("SMTP_USER"),
        password=env.text("SMTP_PASSWORD"),
        starttls=env.flag("SMTP_STARTTLS", True),
        sender=sender,
        recipients=recipients,
    )


def _campos(env: _Env) -> dict[str, tuple[str, ...]]:
    """Custom-field labels per meaning; a variable holds labels separated by '|', new first."""
    result = {}
    for meaning, (variable, default) in DEFAULT_CAMPOS.items():
        value = env.text(variable)
        labels = [part.strip() for part in value.split("|")] if value else default
        result[meaning] = tuple(label for label in labels if label)
    return result
