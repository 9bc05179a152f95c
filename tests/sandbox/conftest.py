"""Fixtures for the sandbox's own contract tests: a fresh running Sandbox and small HTTP helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox import Sandbox

TOKEN, KEY, GOOGLE_KEY = "token-sandbox", "chave-sandbox", "chave-google-sandbox"
UA = "isales-field-sync/tests"


class Api:
    """requests against one sandbox, with the credentials each system expects by default."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def isales(self, path: str, *, token: str | None = TOKEN, accept_json: bool = True,
               **params: Any) -> requests.Response:
        if token is not None:
            params["api_token"] = token
        headers = {"Accept": "application/json"} if accept_json else {"Accept": "*/*"}
        return self.http.get(f"{self.sb.url}/isales/api{path}", params=params, headers=headers,
                             allow_redirects=False, timeout=10)

    def fc(self, method: str, path: str, *, key: str | None = KEY, **kwargs: Any) -> requests.Response:
        headers = {"User-Agent": UA, **kwargs.pop("headers", {})}
        if key is not None:
            headers["X-Api-Key"] = key
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, f"{self.sb.url}/fieldcontrol{path}", headers=headers, **kwargs)

    def nominatim(self, *, ua: str | None = UA, **params: Any) -> requests.Response:
        params.setdefault("format", "json")
        headers = {"User-Agent": ua} if ua is not None else {"User-Agent": None}
        return self.http.get(f"{self.sb.url}/nominatim/search", params=params, headers=headers, timeout=10)

    def google(self, *, key: str | None = GOOGLE_KEY, **params: Any) -> requests.Response:
        if key is not None:
            params["key"] = key
        return self.http.get(f"{self.sb.url}/google/maps/api/geocode/json", params=params, timeout=10)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 10)
        return self.http.get(self.sb.url + path, **kwargs)


def customer_body(name: str = "Maria da Silva", doc: str | None = "52998224725", **extra: Any) -> dict:
    body = {"name": name, "documentNumber": doc, "external": {"id": "isales:4711"},
            "address": {"zipCode": "01310100", "street": "Avenida Paulista", "number": "1000",
                        "neighborhood": "Bela Vista", "complement": None, "city": "São Paulo",
                        "state": "SP", "coords": {"latitude": -23.5614, "longitude": -46.6559}}}
    body.update(extra)
    return body


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A fresh sandbox with 30 projects and rate limits far out of the way."""
    with Sandbox(projetos=30, seed=7) as running:
        yield running


@pytest.fixture
def api(sb: Sandbox) -> Iterator[Api]:
    client = Api(sb)
    yield client
    client.close()


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    """make_sandbox(**options) → a started Sandbox, stopped at the end of the test."""
    started: list[Sandbox] = []

    def make(**options: Any) -> tuple[Sandbox, Api]:
        options.setdefault("projetos", 30)
        running = Sandbox(**options).start()
        started.append(running)
        return running, Api(running)

    yield make
    for running in started:
        running.stop()
