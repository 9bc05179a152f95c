"""Injectable faults: which requests they hit (system, route template, method, share or count)
and what they do (status, drop, commit_then_drop, slow, slow_commit, hold, html, malformed).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field

SYSTEMS = ("isales", "fieldcontrol", "nominatim", "google", "shortener")
KINDS = ("status", "drop", "commit_then_drop", "slow", "slow_commit", "hold", "html", "malformed")
# Kinds answered before the request is processed; the others process it first.
SHORT_CIRCUIT = ("status", "drop", "html")
# Kinds that wait BEFORE processing: the write is committed only after the wait, so a client whose
# read timeout is shorter gives up on a write that the server still makes (a real server's habit).
COMMIT_LATE = ("slow_commit", "hold")
HOLD_MAX_SECONDS = 120.0  # a held request is answered anyway after this long (a test that forgot it)


class FaultError(ValueError):
    """A fault that cannot be built; message in pt-BR."""


def split_route(route: str | None, method: str | None) -> tuple[str | None, str | None]:
    """"POST /customers" → ("POST", "/customers"); a bare "/customers" keeps `method`."""
    if route is None:
        return (method.upper() if method else None), None
    route = route.strip()
    head, _, tail = route.partition(" ")
    if tail and not head.startswith("/"):
        if method and method.upper() != head.upper():
            raise FaultError(f"método {method!r} diferente do método da rota {route!r}")
        return head.upper(), tail.strip()
    return (method.upper() if method else None), route


@dataclass
class Fault:
    id: int
    kind: str
    system: str | None = None
    route: str | None = None
    method: str | None = None
    rate: float | None = None
    times: int | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float | None = None
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, system: str, route: str | None, method: str) -> bool:
        return ((self.system is None or self.system == system)
                and (self.route is None or self.route == route)
                and (self.method is None or self.method == method))

    def public(self) -> dict:
        data = asdict(self)
        data.pop("_rng")
        data["remaining"] = None if self.times is None else self.times - self.fired
        return data


class FaultSet:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.next_id = 1
        self.gates: dict[int, threading.Event] = {}  # hold faults: released by release()
        self.waiting: dict[int, int] = {}  # hold faults: requests waiting at the gate now

    def add(self, *, kind: str, system: str | None = None, route: str | None = None,
            method: str | None = None, rate: float | None = None, times: int | None = None,
            status: int | None = None, retry_after: float | None = None,
            delay: float | None = None) -> int:
        if kind not in KINDS:
            raise FaultError(f"tipo de falha desconhecido: {kind!r} (use um de {', '.join(KINDS)})")
        if system is not None and system not in SYSTEMS:
            raise FaultError(f"sistema desconhecido: {system!r} (use um de {', '.join(SYSTEMS)})")
        if kind == "status" and not (status and 400 <= int(status) <= 599):
            raise FaultError("uma falha 'status' precisa de status entre 400 e 599")
        if kind in ("slow", "slow_commit") and (delay is None or float(delay) < 0):
            raise FaultError(f"uma falha {kind!r} precisa de delay (segundos) >= 0")
        if rate is not None and not 0 <= float(rate) <= 1:
            raise FaultError("rate deve estar entre 0 e 1")
        if times is not None and int(times) < 1:
            raise FaultError("times deve ser >= 1")
        method, route = split_route(route, method)
        with self.lock:
            fault = Fault(id=self.next_id, kind=kind, system=system, route=route, method=method,
                          rate=None if rate is None else float(rate),
                          times=None if times is None else int(times),
                          status=None if status is None else int(status),
                          retry_after=retry_after, delay=None if delay is None else float(delay),
                          _rng=random.Random(f"fault:{self.seed}:{self.next_id}"))
            self.faults.append(fault)
            if kind == "hold":
                self.gates[fault.id] = threading.Event()
            self.next_id += 1
            return fault.id

    def pick(self, system: str, route: str | None, method: str) -> Fault | None:
        """The first active fault that fires for this request (a fault with `times` is used up)."""
        with self.lock:
            for fault in self.faults:
                if not fault.matches(system, route, method):
                    continue
                if fault.rate is not None and fault._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                if fault.times is not None and fault.fired >= fault.times:
                    self.faults.remove(fault)
                return fault
            return None

    def wait_at_gate(self, fault: Fault) -> None:
        """A `hold` request waits here until release(fault.id) (or `delay`, at most HOLD_MAX_SECONDS)."""
        gate = self.gates.get(fault.id)
        if gate is None:
            return
        with self.lock:
            self.waiting[fault.id] = self.waiting.get(fault.id, 0) + 1
        try:
            gate.wait(min(fault.delay or HOLD_MAX_SECONDS, HOLD_MAX_SECONDS))
        finally:
            with self.lock:
                self.waiting[fault.id] -= 1

    def release(self, fault_id: int) -> bool:
        """Let the requests held by a `hold` fault (and the later ones it catches) go on."""
        gate = self.gates.get(int(fault_id))
        if gate is None:
            return False
        gate.set()
        return True

    def held(self) -> dict[int, int]:
        """Requests waiting at each `hold` gate right now, by fault id."""
        with self.lock:
            return {fault_id: count for fault_id, count in self.waiting.items() if count}

    def remove(self, fault_id: int) -> bool:
        with self.lock:
            before = len(self.faults)
            self.faults = [f for f in self.faults if f.id != int(fault_id)]
            removed = len(self.faults) != before
        self.release(fault_id)
        return removed

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            gates = list(self.gates.values())
        for gate in gates:  # nobody stays held by a fault that no longer exists
            gate.set()

    def active(self) -> list[dict]:
        with self.lock:
            return [f.public() for f in self.faults]
