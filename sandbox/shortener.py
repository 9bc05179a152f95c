"""Link shortener (`/l/<code>`): answers 301/302 with a Location in the formats of geocoding.md,
one hop per request; sandbox-internal hops point at the Host the client used. Also the pages the
generated links lead to without coordinates (`/maps/place/<name>`, `/instagram/p/<code>/`): 200 and
a small HTML page, as the real sites answer, so no link ever leaves the machine.
"""

from __future__ import annotations

from .links import SANDBOX_URL
from .state import State
from .web import Request, Response, Route, Router, Settings, error_page, html_response, redirect

NOT_FOUND_PAGE = ("<!DOCTYPE html><html><head><title>Dynamic Link Not Found</title></head><body>"
                  "<h1>Dynamic Link Not Found</h1><p>It seems that you've encountered a link that "
                  "doesn't exist.</p></body></html>")


PLAIN_PAGE = ("<!DOCTYPE html><html><head><title>Página do sandbox</title></head><body>"
              "<p>Uma página sem coordenadas (mapa só com o nome do lugar, ou uma rede social).</p>"
              "</body></html>")


class Shortener:
    name = "shortener"
    prefixes: tuple[str, ...] = ("/l", "/maps", "/instagram")

    def __init__(self, state: State, settings: Settings) -> None:
        self.state = state
        self.router = Router([Route(self.name, "GET", "", "/l/{code}", self.follow),
                              Route(self.name, "GET", "", "/maps/place/{name}", self.page),
                              Route(self.name, "GET", "", "/instagram/p/{code}", self.page)])

    def guard(self, req: Request) -> Response | None:
        return None

    def not_found(self, req: Request, other_method: bool) -> Response:
        return html_response(404, NOT_FOUND_PAGE)

    def error_response(self, req: Request, status: int) -> Response:
        return html_response(status, error_page(status, "Error"))

    def page(self, req: Request) -> Response:
        """A page without coordinates: what a client that follows such a link finally gets."""
        return html_response(200, PLAIN_PAGE)

    def follow(self, req: Request) -> Response:
        with self.state.lock:
            entry = self.state.shortlinks.get(req.params["code"])
        if entry is None:
            return html_response(404, NOT_FOUND_PAGE)
        return redirect(entry["status"], entry["location"].replace(SANDBOX_URL, req.base_url))
