"""`Sandbox`: the simulators on one port in a background thread, and the Python API that tests
and benchmarks use to read and change the remote state, inject faults and read the call log.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from typing import Any

from .calllog import CallLog
from .control import ControlRoutes
from .data import COL_AUMENTO, COL_CANCELADO, COL_INSTALACAO
from .faults import FaultError, FaultSet
from .fcstore import COLLECTIONS, TASK_STATUSES, iso_ms
from .fieldcontrol import FieldControl, validate_address
from .isales import ISales, with_sandbox_url
from .nominatim import Google, Nominatim
from .server import Dispatcher, SandboxHTTPServer, System, serve_in_thread
from .shortener import Shortener
from .state import State, StateError
from .web import Settings

DEFAULT_TOKEN, DEFAULT_KEY, DEFAULT_GOOGLE_KEY = "token-sandbox", "chave-sandbox", "chave-google-sandbox"
USER_AGENT = "isales-field-sync/sandbox"
LATENCY_KEYS = ("isales", "fieldcontrol", "nominatim", "google", "shortener")
DESDE_DAYS = 365


def _latency(latency_ms: dict[str, float] | None) -> dict[str, float]:
    result: dict[str, float] = {}
    for key, value in (latency_ms or {}).items():
        targets = ("nominatim", "google", "shortener") if key == "geo" else (key,)
        for target in targets:
            if target not in LATENCY_KEYS:
                raise ValueError(f"latência para sistema desconhecido: {key!r}")
            result[target] = float(value)
    return result


class Sandbox:
    """The fake iSales, FieldControl, Nominatim, Google geocoder and link shortener.

    Python defaults are fast (tests); the CLI defaults are the real rates.
    """

    def __init__(self, projetos: int = 50, seed: int = 7, *, host: str = "127.0.0.1", port: int = 0,
                 paginado: bool = False, fc_rps: float = 1000.0, isales_rpm: int = 100000,
                 nominatim_rps: float = 1000.0, google_rps: float = 1000.0,
                 latency_ms: dict[str, float] | None = None, token: str = DEFAULT_TOKEN,
                 chave: str = DEFAULT_KEY, google_key: str = DEFAULT_GOOGLE_KEY, estado: Any = None,
                 cliente_inexistente: str = "404", fc_retry_after: bool = False,
                 hoje: date | str | None = None, verbose: bool = False, persistir: bool = True) -> None:
        if cliente_inexistente not in ("404", "null"):
            raise ValueError("cliente_inexistente deve ser '404' ou 'null'")
        if isinstance(hoje, str):
            hoje = date.fromisoformat(hoje)
        self.host, self.port, self.verbose = host, port, verbose
        self.settings = Settings(token=token, chave=chave, google_key=google_key, paginado=paginado,
                                 cliente_inexistente=cliente_inexistente, fc_rps=fc_rps,
                                 fc_retry_after=fc_retry_after, isales_rpm=isales_rpm,
                                 nominatim_rps=nominatim_rps, google_rps=google_rps,
                                 latency_ms=_latency(latency_ms))
        self.state = State(seed, projetos, hoje or date.today(), estado)
        if not persistir:  # start from `estado` but never write it back (trials share one file)
            self.state.path = None
        self.faults_set = FaultSet(seed)
        self.call_log = CallLog()
        self.systems: list[System] = [cls(self.state, self.settings)
                        for cls in (ISales, FieldControl, Nominatim, Google, Shortener)]
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def snapshot(self, path: str | os.PathLike) -> Path:
        """Write the whole state in the `estado` file format; `Sandbox(estado=path)` starts from it."""
        target = Path(path)
        target.write_text(json.dumps(self.state.dump(), ensure_ascii=False), encoding="utf-8")
        return target

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        dispatcher = Dispatcher(self.systems, self.faults_set, self.call_log, self.settings,
                                ControlRoutes(self))
        self._server = SandboxHTTPServer((self.host, self.port), dispatcher, self.verbose)
        self.port = self._server.server_address[1]
        self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def loaded_from_file(self) -> bool:
        return self.state.loaded_from_file

    def env(self) -> dict[str, str]:
        """The .env lines a user of this sandbox needs."""
        services = self.state.fc.service_ids()
        desde = date.fromordinal(self.state.hoje.toordinal() - DESDE_DAYS)
        return {
            "ISALES_API_URL": f"{self.url}/isales/api", "ISALES_API_TOKEN": self.settings.token,
            "ISALES_FUNIL_ID": str(self.state.funnel_id), "ISALES_DESDE": desde.isoformat(),
            "ISALES_COLUNA_INSTALACAO": str(COL_INSTALACAO), "ISALES_COLUNA_AUMENTO": str(COL_AUMENTO),
            "ISALES_COLUNA_CANCELADO": str(COL_CANCELADO),
            "FIELDCONTROL_API_URL": f"{self.url}/fieldcontrol", "FIELDCONTROL_API_KEY": self.settings.chave,
            "FIELDCONTROL_SERVICO_INSTALACAO": services["Instalação"],
            "FIELDCONTROL_SERVICO_AUMENTO": services["Aumento de Sistema"],
            "FIELDCONTROL_SERVICO_CANCELAMENTO": services["Cancelamento"],
            "GEOCODER_URL": f"{self.url}/nominatim", "GEOCODER_USER_AGENT": USER_AGENT,
            "GOOGLE_GEOCODER_URL": f"{self.url}/google",
            "FIELDCONTROL_RATE_PER_SECOND": f"{self.settings.fc_rps:g}",
            "GEOCODER_MIN_DELAY_SECONDS": f"{1 / self.settings.nominatim_rps:g}" if self.settings.nominatim_rps > 0 else "0",
            "GOOGLE_MAPS_API_KEY": self.settings.google_key,
        }

    def configure(self, **changes: Any) -> dict:
        """Change run-time settings (rates, latency_ms, paginado, cliente_inexistente, …)."""
        known = {f.name for f in fields(Settings)}
        unknown = set(changes) - known
        if unknown:
            raise StateError(f"configuração desconhecida: {sorted(unknown)}")
        if "latency_ms" in changes:
            changes["latency_ms"] = _latency(changes["latency_ms"])
        if changes.get("cliente_inexistente", "404") not in ("404", "null"):
            raise StateError("cliente_inexistente deve ser '404' ou 'null'")
        for name, value in changes.items():
            setattr(self.settings, name, value)
        return self.settings_now()

    def settings_now(self) -> dict:
        return copy.deepcopy(asdict(self.settings))

    # -- iSales side ---------------------------------------------------------------------------
    def move_card(self, cliente_id: int, coluna_id: int) -> None:
        self.state.move_card(cliente_id, coluna_id)

    def remove_card(self, cliente_id: int) -> None:
        """The card leaves the funnel (the client, proposal and custom fields stay)."""
        self.state.remove_card(cliente_id)

    def edit_cliente(self, cliente_id: int, **fields: Any) -> dict:
        return self.state.edit_cliente(cliente_id, fields)

    def edit_proposta(self, cliente_id: int, value: Any) -> None:
        self.state.edit_proposta(cliente_id, value)

    def edit_campos(self, cliente_id: int, mapping: dict[str, Any], *, replace: bool = False,
                    remove: list[str] | tuple[str, ...] = ()) -> dict:
        """Merge (or with replace=True, replace) custom fields by label; `remove` drops labels."""
        return self.state.edit_campos(cliente_id, dict(mapping), replace, list(remove))

    def add_projects(self, n: int, **overrides: Any) -> list[int]:
        """n new projects (card date today); overrides: client fields, coluna_id, vendedor,
        data_card, proposta, campos, and link_format (one of sandbox.links.ALL_FORMATS)."""
        return self.state.add_projects(n, overrides)

    def projects(self) -> list[dict]:
        """Everything iSales holds, per card: card (with its hidden date), cliente, proposta, campos."""
        result = []
        for p in self.state.all_projects():
            card = {"id": p["card_id"], "cliente_id": p["cliente_id"], "coluna_id": p["coluna_id"],
                    "funil_id": p.get("funil_id", self.state.funnel_id), "vendedor": p["vendedor"],
                    "data_card": p["data_card"]}
            result.append(with_sandbox_url({"card": card, "cliente": p["cliente"], "proposta": p["proposta"],
                                            "campos": p["campos"]}, self.url))
        return result

    # -- FieldControl side ---------------------------------------------------------------------
    def _fc(self, collection: str) -> list[dict]:
        with self.state.lock:
            return self.state.fc.all(collection)

    def fc_customers(self) -> list[dict]:
        return self._fc("customers")

    def fc_locations(self) -> list[dict]:
        return self._fc("locations")

    def fc_phones(self) -> list[dict]:
        return self._fc("phones")

    def fc_emails(self) -> list[dict]:
        return self._fc("emails")

    def fc_tickets(self) -> list[dict]:
        return self._fc("tickets")

    def fc_services(self) -> list[dict]:
        return self._fc("services")

    def fc_add_customer(self, name: str, document_number: str | None = None, *,
                        address: dict | None = None, code: str | None = None,
                        external_id: str | None = None, contact: dict | None = None) -> dict:
        """A customer typed by hand in FieldControl (stored exactly as given)."""
        if address is not None:
            errors: list[dict] = []
            validate_address(errors, address)
            if errors:
                raise StateError("endereço inválido: " + "; ".join(f"{e['field']} {e['message']}" for e in errors))
        with self.state.lock:
            customer = self.state.fc.create_customer({"name": name, "documentNumber": document_number,
                                                      "code": code, "external": {"id": external_id},
                                                      "address": address, "contact": contact})
            self.state.save()
            return copy.deepcopy(customer)

    def fc_orders(self) -> list[dict]:
        return self._fc("orders")

    def fc_tasks(self, order_id: str | None = None) -> list[dict]:
        return [t for t in self._fc("tasks") if order_id is None or t["order"]["id"] == order_id]

    # -- what FieldControl staff, technicians and people do by hand ----------------------------
    def _fc_object(self, collection: str, obj_id: str) -> dict:
        if collection not in COLLECTIONS:
            raise StateError(f"coleção desconhecida: {collection!r} (use uma de {', '.join(COLLECTIONS)})")
        found = self.state.fc.get(collection, obj_id)
        if found is None:
            raise StateError(f"{collection}: id desconhecido {obj_id!r}")
        return found

    @staticmethod
    def _moment(at: str | None) -> str:
        try:
            return iso_ms(at)
        except (TypeError, ValueError):
            raise StateError(f"data/hora inválida: {at!r} (use ISO-8601, ex.: 2025-01-01T12:00:00Z)") from None

    @staticmethod
    def _status(status: str) -> str:
        if status not in TASK_STATUSES:
            raise StateError(f"status de atividade desconhecido: {status!r} (use um de {', '.join(TASK_STATUSES)})")
        return status

    def fc_convert_ticket(self, ticket_id: str, tasks: int = 1, status: str = "scheduled",
                          scheduling: dict | None = None, at: str | None = None,
                          employee_id: str | None = None) -> dict:
        """Staff turn a `pending` ticket into an order with `tasks` tasks (status `status`, scheduled
        on the day of `at` at 08:00 unless `scheduling` says otherwise); the order, with its tasks."""
        moment, status = self._moment(at), self._status(status)
        if int(tasks) < 1:
            raise StateError("tasks deve ser >= 1")
        with self.state.lock:
            ticket = self._fc_object("tickets", ticket_id)
            if ticket.get("status") != "pending":
                raise StateError(f"o ticket {ticket.get('identifier')} não está pendente "
                                 f"(status {ticket.get('status')!r}): já convertido ou fechado")
            order = self.state.fc.convert_ticket(ticket_id, int(tasks), status, scheduling, moment,
                                                 employee_id)
            self.state.save()
            return copy.deepcopy({**order, "tasks": self.state.fc.tasks_of(order["id"])})

    def fc_move_task(self, task_id: str, status: str, at: str | None = None,
                     description: str | None = None) -> dict:
        """A technician moves a task to `status` at `at` (default now): `startedAt` on starting,
        `completedAt` on `done`, `statusDescription` = `description`; the order's updatedAt follows."""
        moment, status = self._moment(at), self._status(status)
        with self.state.lock:
            self._fc_object("tasks", task_id)
            task = self.state.fc.move_task(task_id, status, moment, description)
            self.state.save()
            return copy.deepcopy(task)

    def fc_archive(self, collection: str, obj_id: str, archived: bool = True) -> dict:
        """A person archives (or with archived=False, restores) any object in FieldControl."""
        return self.fc_edit(collection, obj_id, {"archived": bool(archived)})

    def fc_edit(self, collection: str, obj_id: str, fields: dict) -> dict:
        """A person edits an object by hand: `fields` replace the stored ones as given (no validation,
        no side effects such as moving the primary location); orders and tasks get a new updatedAt."""
        if not isinstance(fields, dict) or "id" in fields:
            raise StateError("fields deve ser um objeto com os campos a alterar (o id não muda)")
        with self.state.lock:
            self._fc_object(collection, obj_id)
            stored = self.state.fc.edit(collection, obj_id, copy.deepcopy(fields))
            if collection in ("orders", "tasks") and "updatedAt" not in fields:
                stored["updatedAt"] = self._moment(None)
                if collection == "tasks":
                    order = self.state.fc.get("orders", stored["order"]["id"])
                    if order is not None:
                        order["updatedAt"] = stored["updatedAt"]
            self.state.save()
            return copy.deepcopy(stored)

    def fc_delete(self, collection: str, obj_id: str) -> None:
        """A person deletes one object in FieldControl (only that one: its sub-objects stay)."""
        with self.state.lock:
            self._fc_object(collection, obj_id)
            self.state.fc.delete(collection, obj_id)
            self.state.save()

    # -- faults and calls ----------------------------------------------------------------------
    def add_fault(self, system: str | None = None, route: str | None = None, method: str | None = None,
                  kind: str | None = None, rate: float | None = None, times: int | None = None,
                  status: int | None = None, retry_after: float | None = None,
                  delay: float | None = None) -> int:
        """Inject a fault (kinds: status, drop, commit_then_drop, slow, slow_commit, hold, html,
        malformed); returns its id.

        `route` is a template such as "POST /customers" or "/clientes"; `rate` a seeded probability;
        `times` the next N matching requests (without rate/times: every matching request).
        Without `kind`, a fault with a `status` is a "status" fault. `slow` processes, then waits
        `delay`; `slow_commit` waits `delay`, then processes (commits) and answers; `hold` waits
        until `release_fault(id)` (at most `delay` s, default 120), then processes and answers.
        """
        if kind is None:
            if status is None:
                raise FaultError("informe kind (status, drop, commit_then_drop, slow, slow_commit, hold, html, "
                                 "malformed)")
            kind = "status"
        return self.faults_set.add(kind=kind, system=system, route=route, method=method, rate=rate,
                                   times=times, status=status, retry_after=retry_after, delay=delay)

    def remove_fault(self, fault_id: int) -> bool:
        return self.faults_set.remove(fault_id)

    def release_fault(self, fault_id: int) -> bool:
        """Let the requests held by a `hold` fault go on (and every later one it catches)."""
        return self.faults_set.release(fault_id)

    def held(self) -> dict[str, int]:
        """Requests waiting at each `hold` gate right now: {fault id (text): count}."""
        return {str(fault_id): count for fault_id, count in self.faults_set.held().items()}

    def clear_faults(self) -> None:
        self.faults_set.clear()

    def faults(self) -> list[dict]:
        return self.faults_set.active()

    def calls(self, system: str | None = None, route: str | None = None,
              method: str | None = None) -> list[dict]:
        return self.call_log.calls(system, route, method)

    def call_counts(self) -> dict[str, int]:
        return self.call_log.call_counts()

    def reset_calls(self) -> None:
        self.call_log.reset()

    def reset(self) -> None:
        """Everything back to what the seed generates: state, faults, call log, rate limits."""
        self.state.regenerate()
        self.faults_set.clear()
        self.call_log.reset()
        for system in self.systems:
            limiter = getattr(system, "limiter", None)
            if limiter is not None:
                limiter.reset()
