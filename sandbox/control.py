"""HTTP control of a running sandbox under /_sandbox/: the same names as the Python API,
GET for reads (arguments in the query string), POST for changes (arguments as a JSON object).
"""

from __future__ import annotations

import inspect
from typing import Any

from .faults import FaultError
from .state import StateError
from .web import BadJsonError, Request, Response, json_response

READS = ("health", "env", "projects", "fc_customers", "fc_locations", "fc_phones", "fc_emails",
         "fc_tickets", "fc_services", "fc_orders", "fc_tasks", "calls", "call_counts", "faults", "held",
         "settings")
WRITES = ("move_card", "remove_card", "edit_cliente", "edit_proposta", "edit_campos", "add_projects",
          "fc_add_customer", "fc_convert_ticket", "fc_move_task", "fc_archive", "fc_edit", "fc_delete",
          "add_fault", "remove_fault", "release_fault", "clear_faults", "reset_calls", "reset",
          "configure")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"erro": message})


class ControlRoutes:
    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def _method(self, name: str) -> Any:
        if name == "health":
            return lambda: {"ok": True}
        if name == "settings":
            return self.sandbox.settings_now
        return getattr(self.sandbox, name)

    def handle(self, req: Request) -> Response:
        name = req.path[len("/_sandbox/"):].strip("/")
        if name not in READS + WRITES:
            return _error(404, f"rota de controle desconhecida: /_sandbox/{name} "
                               f"(leitura: {', '.join(READS)}; alteração: {', '.join(WRITES)})")
        expected = "GET" if name in READS else "POST"
        if req.method != expected:
            return _error(405, f"use {expected} em /_sandbox/{name}")
        if expected == "GET":
            kwargs: dict[str, Any] = dict(req.query)
        else:
            try:
                kwargs = req.json() or {}
            except BadJsonError:
                return _error(400, "o corpo deve ser JSON válido")
            if not isinstance(kwargs, dict):
                return _error(400, "o corpo deve ser um objeto JSON com os argumentos")
        method = self._method(name)
        try:
            inspect.signature(method).bind(**kwargs)
        except TypeError as exc:
            return _error(400, f"argumentos inválidos para {name}: {exc}")
        try:
            result = method(**kwargs)
        except (StateError, FaultError, ValueError) as exc:
            return _error(400, str(exc))
        return json_response(200, {"ok": True} if result is None else result)
