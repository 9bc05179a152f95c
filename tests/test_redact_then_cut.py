"""Remote text is redacted BEFORE it is cut to length: a refusal echoing the key, cut at the
edge of the key, must not show the key's first part (lib/logs.clip, used by every client)."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lib.config import HttpSettings
from lib.errors import AuthError, BadResponse, ConfigError, SyncError
from lib.fieldcontrol import FieldControl
from lib.http import make_session
from lib.isales import IsalesClient
from lib.logs import clip, register_secret

KEY = "chave-canario-" + "k7" * 20  # 54 characters
FAST = HttpSettings(connect_timeout=2, read_timeout=5, max_attempts=1)


class Echo(BaseHTTPRequestHandler):
    """Answers every request with the status and body of its path, the key echoed at a cut edge."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        padding = "x" * 170
        status, body, kind = {
            "/fc/services": (401, json.dumps({"message": f"{padding} chave recebida: {KEY}"}), "application/json"),
            # cut at 200 characters: padding (170) + ' chave recebida: ' (17) + the key's first 13
            "/fc/customers": (401, f"{padding} chave recebida: {KEY} negada", "text/plain"),
            # cut at 120: 100 + ' token ' (7) + the token's first 13
            "/isales/api/funil-clientes": (422, f"{'y' * 100} token {KEY}", "text/plain"),
            # cut at 80: '<html>' (6) + 60 + the key's first 14
            "/html": (200, f"<html>{'z' * 60}{KEY}</html>", "text/html"),
        }.get(self.path.split("?")[0], (404, "{}", "application/json"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo():
    register_secret(KEY)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _no_part_of_the_key(text: str) -> None:
    assert KEY[:6] not in text and "k7k7" not in text, text


def test_clip_redacts_then_cuts():
    register_secret(KEY)
    text = "a" * 10 + KEY
    assert text[:20] == "a" * 10 + KEY[:10]  # what cutting first kept
    assert clip(text, 20) == "a" * 10 + "***"


def test_fieldcontrol_refusal_echoing_the_key(echo):
    fc = FieldControl(f"{echo}/fc", make_session("FieldControl", FAST))
    with pytest.raises(AuthError) as json_refusal:
        fc._call("GET", "/services", "FieldControl /services")
    _no_part_of_the_key(json_refusal.value.message)
    with pytest.raises(AuthError) as text_refusal:
        fc._call("GET", "/customers", "FieldControl /customers")
    _no_part_of_the_key(text_refusal.value.message)
    assert "chave recebida" in text_refusal.value.message


def test_isales_refusal_echoing_the_token(echo):
    client = IsalesClient(f"{echo}/isales/api", "outro-token-qualquer", make_session("iSales", FAST))
    with pytest.raises(ConfigError) as refusal:
        client.list_cards(9001, date(2025, 1, 1), date(2025, 2, 1))
    assert "HTTP 422" in refusal.value.message
    _no_part_of_the_key(refusal.value.message)


def test_html_start_shown_by_json_body(echo):
    fc = FieldControl(echo, make_session("FieldControl", FAST))
    with pytest.raises(SyncError) as caught:
        fc._call("GET", "/html", "FieldControl /html")
    assert isinstance(caught.value, BadResponse) and "página HTML" in caught.value.message
    _no_part_of_the_key(caught.value.message)
