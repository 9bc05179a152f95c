"""Small HTTP vocabulary shared by the simulated systems: request, response, route, settings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class BadJsonError(ValueError):
    """The request body is not valid JSON."""


@dataclass
class Settings:
    """Run-time options of the simulators (changeable through Sandbox.configure)."""

    token: str = "token-sandbox"
    chave: str = "chave-sandbox"
    google_key: str = "chave-google-sandbox"
    paginado: bool = False
    page_size: int = 100
    cliente_inexistente: str = "404"
    fc_rps: float = 1.0
    fc_retry_after: bool = False
    isales_rpm: int = 60
    nominatim_rps: float = 1.0
    google_rps: float = 50.0
    latency_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes
    client_ip: str = ""
    system: str = ""
    route: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # set by a system's guard for its handlers

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def base_url(self) -> str:
        """http://<Host> as the client addressed us (so links point back at this sandbox)."""
        return f"http://{self.header('Host') or '127.0.0.1'}"

    @property
    def target(self) -> str:
        return self.path + (f"?{self.raw_query}" if self.raw_query else "")

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadJsonError(str(exc)) from exc


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, obj: Any, *, ensure_ascii: bool = False, escape_slashes: bool = False,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    text = json.dumps(obj, ensure_ascii=ensure_ascii, separators=(",", ":"))
    if escape_slashes:  # PHP's json_encode default; "/" only occurs inside strings
        text = text.replace("/", "\\/")
    return Response(status, text.encode("utf-8"), "application/json; charset=utf-8", list(headers or []))


def html_response(status: int, html: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, html.encode("utf-8"), "text/html; charset=UTF-8", list(headers or []))


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode("utf-8"), "text/plain; charset=utf-8", list(headers or []))


def redirect(status: int, location: str) -> Response:
    html = (f'<!DOCTYPE html><html><head><meta charset="UTF-8" />'
            f'<meta http-equiv="refresh" content="0;url=\'{location}\'" />'
            f"<title>Redirecting to {location}</title></head>"
            f'<body>Redirecting to <a href="{location}">{location}</a>.</body></html>')
    return html_response(status, html, [("Location", location)])


def error_page(status: int, title: str) -> str:
    return (f"<!DOCTYPE html><html><head><title>{status} {title}</title></head>"
            f"<body><center><h1>{status} {title}</h1></center><hr><center>nginx</center></body></html>")


Handler = Callable[[Request], Response]


@dataclass
class Route:
    system: str
    method: str
    prefix: str
    template: str
    handler: Handler
    regex: re.Pattern = field(init=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        self.regex = re.compile(f"^{re.escape(self.prefix)}{pattern}/?$")

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_exists_with_other_method)."""
        other_method = False
        wanted = "GET" if method == "HEAD" else method
        for route in self.routes:
            found = route.regex.match(path)
            if found:
                if route.method == wanted:
                    return route, found.groupdict(), False
                other_method = True
        return None, {}, other_method
