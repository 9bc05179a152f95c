"""lib/logs: secrets never reach a log line, a traceback or an exception message."""

from __future__ import annotations

import logging

from lib.errors import SyncError
from lib.logs import RedactingFormatter, redact, register_secret


def test_token_in_query_is_masked_even_unregistered():
    assert redact("GET https://x/api/clientes?api_token=abc123&cliente_id=4") == \
        "GET https://x/api/clientes?api_token=***&cliente_id=4"
    assert redact("/maps/api/geocode/json?address=x&key=AIzaSy123") == "/maps/api/geocode/json?address=x&key=***"


def test_registered_secret_and_its_url_encoding_are_masked():
    register_secret("s3cr3t/+token")
    assert "s3cr3t" not in redact("valor s3cr3t/+token e s3cr3t%2F%2Btoken")


def test_headers_and_dsn_passwords_are_masked():
    assert "k-999" not in redact("{'X-Api-Key': 'k-999'}")
    assert redact("mysql+pymysql://root:pw@host/db") == "mysql+pymysql://root:***@host/db"


def test_formatter_redacts_arguments_and_tracebacks():
    register_secret("canario-logs-42")
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("falhou com canario-logs-42")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", ("?api_token=canario-logs-42",),
                                   sys.exc_info())
    text = formatter.format(record)
    assert "canario-logs-42" not in text and "RuntimeError" in text


def test_exception_messages_are_redacted():
    register_secret("canario-exc-77")
    assert "canario-exc-77" not in str(SyncError("falha em https://x/?api_token=canario-exc-77"))
