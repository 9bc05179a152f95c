"""The HTTP server: one port, one path prefix per simulated system; applies latency and faults,
logs every call, and can really cut a TCP connection (stdlib http.server, so we own the socket).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .calllog import CallLog
from .faults import Fault, FaultSet
from .web import Request, Response, Route, Router, Settings, html_response, json_response, text_response

CONTROL_PREFIX = "/_sandbox/"
FAKE_PORTAL = ("<!DOCTYPE html><html><head><title>Aviso</title></head><body><h1>Sessão expirada</h1>"
               "<p>Faça login novamente para continuar.</p></body></html>")


class System(Protocol):
    name: str
    prefixes: tuple[str, ...]
    router: Router

    def guard(self, req: Request) -> Response | None: ...
    def not_found(self, req: Request, other_method: bool) -> Response: ...
    def error_response(self, req: Request, status: int) -> Response: ...


class Control(Protocol):
    def handle(self, req: Request) -> Response: ...


class Dispatcher:
    """Request → system → (fault, latency, guard, handler) → response or None (drop the connection)."""

    def __init__(self, systems: list[System], faults: FaultSet, calls: CallLog, settings: Settings,
                 control: Control | None = None) -> None:
        self.systems = sorted(systems, key=lambda s: -max(len(p) for p in s.prefixes))
        self.faults, self.calls, self.settings, self.control = faults, calls, settings, control

    def system_for(self, path: str) -> System | None:
        for system in self.systems:
            if any(path == p or path.startswith(p + "/") for p in system.prefixes):
                return system
        return None

    def handle(self, req: Request) -> Response | None:
        if req.path.startswith(CONTROL_PREFIX) and self.control is not None:
            try:
                return self.control.handle(req)
            except Exception as exc:  # a sandbox bug: show it, answer it
                traceback.print_exc(file=sys.stderr)
                return json_response(500, {"erro": f"erro interno do sandbox: {exc}"})
        started = time.time()
        system = self.system_for(req.path)
        if system is None:
            return text_response(404, "Not Found")
        route, params, other_method = system.router.match(req.method, req.path)
        req.system, req.params = system.name, params
        req.route = route.template if route else None
        fault = self.faults.pick(system.name, req.route, req.method)
        latency = self.settings.latency_ms.get(system.name, 0)
        if latency:
            time.sleep(latency / 1000)
        response, status = self._answer(system, route, other_method, req, fault)
        self.calls.add(system=system.name, method=req.method, route=req.route, path=req.target,
                       status=status, t=started, fault=fault.kind if fault else None,
                       user_agent=req.header("User-Agent"))
        return response

    def _answer(self, system: System, route: Route | None, other_method: bool, req: Request,
                fault: Fault | None) -> tuple[Response | None, int | None]:
        kind = fault.kind if fault else None
        if kind == "drop":
            return None, None
        if kind == "status":
            assert fault is not None and fault.status is not None
            response = system.error_response(req, fault.status)
            if fault.retry_after is not None:
                response.headers.append(("Retry-After", _seconds(fault.retry_after)))
            return response, response.status
        if kind == "html":
            return html_response(200, FAKE_PORTAL), 200
        if kind == "slow_commit":
            assert fault is not None
            time.sleep(fault.delay or 0)
        elif kind == "hold":
            assert fault is not None
            self.faults.wait_at_gate(fault)
        response = self._process(system, route, other_method, req)
        if kind == "commit_then_drop":
            return None, response.status
        if kind == "slow":
            assert fault is not None
            time.sleep(fault.delay or 0)
        if kind == "malformed":
            response = truncate(response)
        return response, response.status

    def _process(self, system: System, route: Route | None, other_method: bool, req: Request) -> Response:
        try:
            if route is None:
                return system.not_found(req, other_method)
            return system.guard(req) or route.handler(req)
        except Exception:  # a sandbox bug must show, but as an HTTP 500 like a real server
            traceback.print_exc(file=sys.stderr)
            return system.error_response(req, 500)


def truncate(response: Response) -> Response:
    """The same answer with its JSON cut in half (never valid JSON)."""
    body = response.body or b'{"items": ['
    cut = body[: max(1, len(body) // 2)]
    while cut:
        try:
            json.loads(cut)
        except ValueError:
            break
        cut = cut[:-1]
    return Response(response.status, cut or b"{", response.content_type, response.headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox"
    sys_version = ""
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        req = Request(method=self.command, path=unquote(split.path) or "/", raw_query=split.query,
                      query=dict(parse_qsl(split.query, keep_blank_values=True)),
                      headers=self.headers, body=body, client_ip=self.client_address[0])
        response = self.server.dispatcher.handle(req)
        if self.server.verbose:
            status = response.status if response else "conexão cortada"
            sys.stderr.write(f"{self.command} {req.target[:200]} → {status}\n")
        if response is None:
            self._drop()
        else:
            self._send(response)

    def _drop(self) -> None:
        """Close the TCP connection without a single byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {formatdate(usegmt=True)}",
                 "Server: sandbox", f"Content-Length: {len(response.body)}"]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        for name, value in response.headers:
            if name.lower() == "location":
                value = quote(value, safe=":/?#[]@!$&'()*+,;=%~")
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head if self.command == "HEAD" else head + response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher, verbose: bool = False) -> None:
        self.dispatcher = dispatcher
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout, reset) is normal here; anything else is a sandbox bug."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Cut every open (keep-alive) connection, so a stop really releases everything."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_in_thread(server: SandboxHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="sandbox-http", daemon=True)
    thread.start()
    return thread
