"""Secret canary: the pipeline 00 → 04 at DEBUG (-v) with canary values for the iSales token, the
FieldControl key, the Google key (step 02 with GEOCODER=google) and the SMTP password (a local
SMTP server receives the report), through its error paths too (refused credentials, 500 storms, a
refused SMTP login). No canary may show up in stdout/stderr, any file under data/, any column of
any table, the e-mails, or the exception texts (run rows, pending items, tracebacks).
"""

from __future__ import annotations

import email
import email.policy
import socket
import uuid
from urllib.parse import quote, quote_plus

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

import lib.db.schema as t
from lib.db.engine import make_engine
from tests.reliability.harness import Runner, fast_sandbox, step_env

pytestmark = pytest.mark.reliability


def canaries() -> dict[str, str]:
    core = uuid.uuid4().hex[:10]
    # '+', '/' and '=' travel percent-encoded in a query string: the encoded form must be masked too
    return {"token": f"canario+tk/{core}a=", "chave": f"canario-fc-{core}b", "google": f"canario-gg/{core}c",
            "smtp": f"canario-smtp-{core}d"}


def forms(secret: str) -> set[str]:
    """The ways a secret can appear in text: as is, URL-encoded, and its random core alone."""
    core = secret.split("-")[-1].split("/")[-1].split("+")[-1].rstrip("=")
    return {secret, quote(secret, safe=""), quote_plus(secret), core}


class Inbox:
    def __init__(self, password: str):
        self.password = password
        self.messages: list[bytes] = []
        self.logins: list[bool] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope.content)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        accepted = auth_data.password.decode() == self.password
        self.logins.append(accepted)
        return AuthResult(success=accepted, handled=False)  # not handled: the server answers 535


@pytest.fixture
def smtp_inbox():
    secrets = canaries()
    inbox = Inbox(secrets["smtp"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                            auth_require_tls=False)
    controller.start()
    inbox.port, inbox.secrets = port, secrets
    yield inbox
    controller.stop()


def database_text(url: str) -> str:
    """Every column of every row of every table, as text."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(repr(tuple(row)) for table in t.metadata.sorted_tables
                             for row in conn.execute(select(table)))
    finally:
        engine.dispose()


def mail_text(raw: bytes) -> str:
    """An e-mail as sent (headers and raw body) and every part decoded (base64/quoted-printable)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [raw.decode("utf-8", "replace")]
    parts += [str(part.get_content()) for part in message.walk() if not part.is_multipart()]
    return "\n".join(parts)


def test_no_secret_leaks_anywhere_even_on_error_paths(smtp_inbox, db_url, tmp_path):
    secrets = smtp_inbox.secrets
    outputs: list[str] = []
    with fast_sandbox(projetos=12, seed=23, token=secrets["token"], chave=secrets["chave"],
                      google_key=secrets["google"]) as sb:
        env = step_env(sb, tmp_path, db_url, GEOCODER="google", GOOGLE_MAPS_API_KEY=secrets["google"],
                       SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_inbox.port, SMTP_STARTTLS="0",
                       SMTP_USER="relatorio", SMTP_PASSWORD=secrets["smtp"], RELATORIO_EMAIL_DE="sync@solar.example",
                       RELATORIO_EMAIL_PARA="operacao@solar.example", HTTP_MAX_TENTATIVAS="2")
        runner = Runner(env, tmp_path)

        def run(step: str, expected: int | tuple[int, ...], **changes: str) -> None:
            result = runner.run(step, "-v", env={**env, **changes}, ok=None)
            outputs.extend([result.stdout, result.stderr])
            codes = expected if isinstance(expected, tuple) else (expected,)
            assert result.returncode in codes, f"etapa {step} {changes}: {result.returncode}\n{result.stderr[-3000:]}"

        run("00", 0)
        run("01", 2, ISALES_API_TOKEN=secrets["token"] + "-errado")
        storm = sb.add_fault(system="isales", status=500)
        run("01", 75)
        sb.remove_fault(storm)
        run("01", (0, 3))
        run("02", 2, GOOGLE_MAPS_API_KEY=secrets["google"] + "-errada")
        storm = sb.add_fault(system="google", status=500)
        run("02", 75)
        sb.remove_fault(storm)
        run("02", (0, 3))
        run("03", (0, 3))
        run("04", 2, FIELDCONTROL_API_KEY=secrets["chave"] + "-errada")
        storm = sb.add_fault(system="fieldcontrol", status=500)
        run("04", 75)
        sb.remove_fault(storm)
        run("04", (0, 3), SMTP_PASSWORD=secrets["smtp"] + "-errada")  # the report fails: a warning
        run("04", (0, 3))  # the report is sent
        google_calls = [c for c in sb.calls("google") if c["status"] == 200]
    assert google_calls, "o geocodificador Google não foi usado: a chave não foi exercitada"
    assert smtp_inbox.messages and True in smtp_inbox.logins and False in smtp_inbox.logins, \
        "o relatório por e-mail não foi enviado com a senha (e recusado com a senha errada)"

    files = {str(path): path.read_bytes().decode("utf-8", "replace")
             for path in (tmp_path / "data").rglob("*") if path.is_file()}
    assert any("/logs/" in name for name in files), "nenhum log em data/logs"
    places = {"saídas (stdout/stderr)": "\n".join(outputs), "banco de dados": database_text(db_url),
              "e-mails": "\n".join(mail_text(raw) for raw in smtp_inbox.messages), **files}
    assert "api_token=***" in places["saídas (stdout/stderr)"], "o log DEBUG das URLs do iSales não apareceu"
    for name, secret in secrets.items():
        for form in forms(secret):
            leaks = [place for place, content in places.items() if form in content]
            assert not leaks, f"segredo {name} ({form!r}) vazou em: {leaks}"
