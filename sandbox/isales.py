"""iSales simulator (docs/api/isales.md): token in the query, Laravel-style auth failures,
per-token rate limit, plural keys holding one object, plain or paginated funnel.
"""

from __future__ import annotations

import math
import time
from datetime import date
from typing import Any
from urllib.parse import urlencode

from .limits import WindowLimiter
from .links import SANDBOX_URL
from .state import State
from .web import Request, Response, Route, Router, Settings, error_page, html_response, json_response, redirect

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>iSales - Login</title></head>
<body><form method="POST" action="/isales/login"><h1>iSales</h1>
<input type="email" name="email" placeholder="E-mail"><input type="password" name="password">
<button type="submit">Entrar</button></form></body></html>"""


def wants_json(req: Request) -> bool:
    """Laravel's expectsJson(): an AJAX request, or JSON as the first acceptable type."""
    if (req.header("X-Requested-With") or "").lower() == "xmlhttprequest":
        return True
    first = (req.header("Accept") or "").split(",")[0].split(";")[0].strip().lower()
    return "/json" in first or "+json" in first


def with_sandbox_url(value: Any, base_url: str) -> Any:
    """Short links live on this sandbox: fill in the address the client used to reach us."""
    if isinstance(value, str):
        return value.replace(SANDBOX_URL, base_url)
    if isinstance(value, dict):
        return {k: with_sandbox_url(v, base_url) for k, v in value.items()}
    if isinstance(value, list):
        return [with_sandbox_url(v, base_url) for v in value]
    return value


class ISales:
    name = "isales"
    prefixes: tuple[str, ...] = ("/isales",)

    def __init__(self, state: State, settings: Settings) -> None:
        self.state, self.settings = state, settings
        self.limiter = WindowLimiter(lambda: self.settings.isales_rpm)
        api = "/isales/api"
        self.router = Router([
            Route(self.name, "GET", api, "/funil-clientes", self.funil_clientes),
            Route(self.name, "GET", api, "/clientes", self.clientes),
            Route(self.name, "GET", api, "/propostas", self.propostas),
            Route(self.name, "GET", api, "/campo-customizado", self.campo_customizado),
            Route(self.name, "GET", "/isales", "/login", self.login_page),
        ])

    @staticmethod
    def _json(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        # Laravel's JsonResponse: json_encode defaults (\u escapes, escaped slashes)
        return json_response(status, obj, ensure_ascii=True, escape_slashes=True, headers=headers)

    # -- middleware ------------------------------------------------------------------------------
    def guard(self, req: Request) -> Response | None:
        if req.route == "/login":
            return None
        token = req.query.get("api_token", "")
        if not token or token != self.settings.token:
            if wants_json(req):
                return self._json(401, {"message": "Unauthenticated."})
            return redirect(302, f"{req.base_url}/isales/login")
        allowed, remaining, retry_after = self.limiter.check(token)
        limit = str(self.settings.isales_rpm)
        if not allowed:
            return self._json(429, {"message": "Too Many Attempts."}, [
                ("Retry-After", str(retry_after)), ("X-RateLimit-Limit", limit),
                ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(int(time.time()) + retry_after))])
        req.meta["ratelimit"] = (limit, str(remaining))
        return None

    def _ok(self, req: Request, obj: Any) -> Response:
        headers = []
        if "ratelimit" in req.meta:
            limit, remaining = req.meta["ratelimit"]
            headers = [("X-RateLimit-Limit", limit), ("X-RateLimit-Remaining", remaining)]
        return self._json(200, with_sandbox_url(obj, req.base_url), headers)

    def not_found(self, req: Request, other_method: bool) -> Response:
        status, title = (405, "Method Not Allowed") if other_method else (404, "Not Found")
        if wants_json(req):
            return self._json(status, {"message": f"The route {req.path.lstrip('/')} could not be found."
                                       if status == 404 else "Method not allowed."})
        return html_response(status, error_page(status, title))

    def error_response(self, req: Request, status: int) -> Response:
        if status == 429:
            return self._json(429, {"message": "Too Many Attempts."})
        if status >= 500:
            return html_response(status, error_page(status, _TITLES.get(status, "Server Error")))
        return self._json(status, {"message": _TITLES.get(status, "Error")})

    # -- routes ----------------------------------------------------------------------------------
    def login_page(self, req: Request) -> Response:
        return html_response(200, LOGIN_PAGE)

    def funil_clientes(self, req: Request) -> Response:
        errors: dict[str, list[str]] = {}
        funil = req.query.get("funil_id", "").strip()
        if not funil:
            errors["funil_id"] = ["The funil id field is required."]
        elif not funil.lstrip("-").isdigit():
            errors["funil_id"] = ["The funil id field must be an integer."]
        window = {}
        for name in ("desde", "ate"):
            raw = req.query.get(name, "").strip()
            try:
                window[name] = date.fromisoformat(raw) if raw else None
            except ValueError:
                errors[name] = [f"The {name} field must be a valid date."]
        if errors:
            first = next(iter(errors.values()))[0]
            extra = f" (and {len(errors) - 1} more error)" if len(errors) > 1 else ""
            return self._json(422, {"message": first + extra, "errors": errors})
        cards = self.state.cards(window["desde"], window["ate"]) if int(funil) == self.state.funnel_id else []
        if not self.settings.paginado:
            return self._ok(req, {"funil_clientes": cards})
        return self._ok(req, self._page(req, cards))

    def _page(self, req: Request, cards: list[dict]) -> dict:
        size = self.settings.page_size
        try:
            page = max(1, int(req.query.get("page", "1")))
        except ValueError:
            page = 1
        total = len(cards)
        last = max(1, math.ceil(total / size))
        items = cards[(page - 1) * size: page * size]
        path = f"{req.base_url}/isales/api/funil-clientes"

        def url(n: int) -> str:
            query = {k: v for k, v in req.query.items() if k != "page"}
            return f"{path}?{urlencode({**query, 'page': n})}"

        return {"current_page": page, "funil_clientes": items, "first_page_url": url(1),
                "from": (page - 1) * size + 1 if items else None, "last_page": last,
                "last_page_url": url(last), "next_page_url": url(page + 1) if page < last else None,
                "path": path, "per_page": size, "prev_page_url": url(page - 1) if page > 1 else None,
                "to": (page - 1) * size + len(items) if items else None, "total": total}

    def _missing(self, req: Request, key: str) -> Response:
        if self.settings.cliente_inexistente == "null":
            return self._ok(req, {key: None})
        cliente_id = req.query.get("cliente_id", "")
        if wants_json(req):
            return self._json(404, {"message": f"No query results for model [App\\Models\\Cliente] {cliente_id}"})
        return html_response(404, error_page(404, "Not Found"))

    def clientes(self, req: Request) -> Response:
        project = self.state.project(req.query.get("cliente_id", ""))
        if project is None:
            return self._missing(req, "clientes")
        return self._ok(req, {"clientes": project["cliente"]})

    def propostas(self, req: Request) -> Response:
        project = self.state.project(req.query.get("cliente_id", ""))
        if project is None:
            return self._missing(req, "propostas")
        return self._ok(req, {"propostas": project["proposta"]})

    def campo_customizado(self, req: Request) -> Response:
        project = self.state.project(req.query.get("cliente_id", ""))
        if project is None:
            return self._missing(req, "clientes")
        return self._ok(req, {"clientes": project["campos"]})


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 419: "Page Expired",
           422: "Unprocessable Content", 429: "Too Many Requests", 500: "Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
