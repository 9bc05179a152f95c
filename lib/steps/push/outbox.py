"""The outbox of FieldControl writes (acao_field, docs/design.md §7): recorded before sent, receipt
committed with the local update. States: nova → enviando (claimed and committed BEFORE the request) →
concluida | incerta (ambiguous: looked up before any resend) | rejeitada (4xx: pending item acao:<chave>).

Claiming is atomic (a conditional UPDATE on state and attempt count, or the INSERT of the unique key):
of two runs that both got in, one sends and the other leaves the action alone. An action left
`enviando`/`incerta` is never sent again before the settle period has passed since its attempt
(`atualizada_em`) AND a look-up made after it found nothing: the real server may commit a write
long after the client gave up.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

import lib.db.schema as t
from lib.clock import db_now
from lib.db import pending
from lib.db.schema import CONCLUIDA, ENVIANDO, INCERTA, NOVA, REJEITADA, pendencia
from lib.db.schema import OutboxState as State
from lib.db.values import chunks
from lib.errors import AmbiguousWrite, BadResponse, ConfigError, RecordError, TransientError
from lib.logs import redact

log = logging.getLogger(__name__)

STEP = "04"
OPEN: tuple[State, ...] = (ENVIANDO, INCERTA)
RETRY_REJECTED_AFTER = timedelta(hours=6)
SETTLE_SECONDS = 600.0  # FIELDCONTROL_ESPERA_INCERTA_SEGUNDOS
CLOCK_GRAIN = timedelta(seconds=1)  # db_now() drops the fraction: one more second so the wait is never short
MAX_KEY = 191
PAGE = 500  # open actions of earlier runs read at a time


# --------------------------------------------------------------------------- keys

def canonical(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def digest(payload: Any) -> str:
    return hashlib.sha1(canonical(payload).encode("utf-8")).hexdigest()[:12]


def _fit(key: str) -> str:
    """Keys longer than the column keep their head and a hash of the whole (still unique)."""
    return key if len(key) <= MAX_KEY else f"{key[:MAX_KEY - 13]}#{digest(key)}"


def customer_key(cliente_id: int) -> str:
    return f"customer:{cliente_id}"


def customer_put_key(cliente_id: int, payload: dict) -> str:
    return f"customer-put:{cliente_id}:{digest(payload)}"


def location_key(endereco_id: int, address: dict) -> str:
    return f"location:{endereco_id}:{digest(address)}"


def phone_key(cliente_id: int, digits: str) -> str:
    return _fit(f"phone:{cliente_id}:{digits}")


def email_key(cliente_id: int, address: str) -> str:
    return _fit(f"email:{cliente_id}:{address.strip().casefold()}")


def ticket_key(historico_id: int) -> str:
    return f"ticket:{historico_id}"


def ticket_put_key(historico_id: int, payload: dict) -> str:
    return f"ticket-put:{historico_id}:{digest(payload)}"


def location_put_key(endereco_id: int, payload: dict) -> str:
    return f"location-put:{endereco_id}:{digest(payload)}"


def pending_key(chave: str) -> str:
    return f"acao:{chave}"


# --------------------------------------------------------------------------- statements

# built once (their compiled form and cache key are kept with them); values come at execution
_row = t.acao_field.c
INSERT = t.acao_field.insert()
CLAIM = t.acao_field.update().where(  # the row changes only from the state and attempt count this run saw
    _row.chave == bindparam("chave_"), _row.estado == bindparam("estado_"),
    _row.tentativas == bindparam("tentativas_")).values(tentativas=_row.tentativas + 1)
COMPLETE = t.acao_field.update().where(_row.chave == bindparam("chave_")).values(estado=CONCLUIDA, ultimo_erro=None)
BY_KEY = select(t.acao_field).where(_row.chave == bindparam("chave_"))


# --------------------------------------------------------------------------- rows

@dataclass
class Action:
    id: int
    chave: str
    tipo: str
    estado: State
    cliente_id: int | None
    endereco_id: int | None
    historico_id: int | None
    payload: Any
    field_id: str | None
    tentativas: int
    atualizada_em: datetime | None
    concluida_em: datetime | None
    execucao_id: int | None = None  # the run that concluded it last

    @property
    def order(self) -> tuple:
        """When it was concluded: the run first (a PUT sent again in a later run of the same second
        comes after), then the moment, then the row."""
        return (self.execucao_id or 0, self.concluida_em or datetime.min, self.id)


def _action(row: Any) -> Action:
    payload = json.loads(row.payload) if row.payload else None
    return Action(id=row.id, chave=row.chave, tipo=row.tipo, estado=row.estado, cliente_id=row.cliente_id,
                  endereco_id=row.endereco_id, historico_id=row.historico_id, payload=payload,
                  field_id=row.field_id, tentativas=row.tentativas or 0, atualizada_em=row.atualizada_em,
                  concluida_em=row.concluida_em, execucao_id=row.execucao_id)


def _new_id(inserted: Any) -> int:
    """The id of the row an INSERT of one row made."""
    key = inserted.inserted_primary_key
    assert key is not None  # one row inserted: the dialects give its key
    return int(key[0])


class Outcome(Enum):
    DONE = "já feito"
    CREATED = "criado"
    RECOVERED = "conferido"  # an earlier ambiguous send had worked
    ADOPTED = "adotado"
    BLOCKED = "aguardando"  # rejected earlier, not due for a retry yet
    REJECTED = "recusado"
    UNCERTAIN = "incerto"  # could not be looked up: a pending item, nothing sent
    SETTLING = "em conferência"  # ambiguous write within its settle period: never resent yet
    ELSEWHERE = "com outra execução"  # another run claimed it first: not an error, not ours to send
    PLANNED = "previsto"  # the plan's (plan.py): what a real run would do


SUCCESS = (Outcome.DONE, Outcome.CREATED, Outcome.RECOVERED, Outcome.ADOPTED, Outcome.PLANNED)


@dataclass
class Result:
    outcome: Outcome
    field_id: str | None = None
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.outcome in SUCCESS


@dataclass
class Spec:
    """One remote write: how to send it, how to look it up, and what to record when it is done."""

    chave: str
    tipo: str  # customer | customer-put | location | location-put | phone | email | ticket | ticket-put
    kind: str  # summary kind (cliente, local, telefone, email, ticket_instalacao, ...)
    label: str  # pt-BR, names the project and client: "projeto 4711 (Maria da Silva): telefone ..."
    request: str  # "POST /customers" (the plan)
    payload: Any
    send: Callable[[], Any]
    receipt: Callable[[Connection, Any], None]
    find: Callable[[], Any] | None = None  # None: resending is harmless (PUT)
    # the look-up before the first send, when it may use what was read earlier in the run; an open
    # action (after an ambiguous write) is always looked up with `find`, which asks FieldControl now
    find_first: Callable[[], Any] | None = None
    look_first: bool = False  # look it up before the first send (objects made by hand may exist)
    lookup_note: str = ""
    lookup_cost: int = 1  # requests a lookup takes (the plan's estimate)
    isales_id: str | None = None
    cliente_id: int | None = None
    endereco_id: int | None = None
    historico_id: int | None = None
    done_outcome: str = "criados"


@dataclass
class Keys:
    """What the outbox actions of some clients are recorded under: the clients' ids, their addresses'
    and their projects' history rows (customer/phone/e-mail, location, ticket actions)."""

    cliente_ids: set[int] = field(default_factory=set)
    endereco_ids: set[int] = field(default_factory=set)
    historico_ids: set[int] = field(default_factory=set)


class Outbox:
    """The acao_field rows of a run (cached) and the protocol that sends each one effectively once."""

    def __init__(self, engine: Engine, run_id: int | None, summary: Any, *, force_retry: bool = False,
                 settle_seconds: float = SETTLE_SECONDS):
        self.engine, self.run_id, self.summary = engine, run_id, summary
        self.force_retry = force_retry
        self.settle = timedelta(seconds=settle_seconds)
        self.actions: dict[str, Action] = {}
        self.of_client: dict[int | None, set[str]] = {}
        self.settling: dict[str, str] = {}  # chave → label: ambiguous writes waiting for their settle period
        self._read = Keys()  # the ids whose actions are held
        # the `acao:` pending items open when the last batch was loaded, plus those this run opened since:
        # a receipt closes its item only when it may be open (None: not read yet, always close). One
        # opened by another run after the load is closed by `close_concluded` at the end of the run.
        self.open_pending: set[str] | None = None

    @property
    def db(self) -> Engine:
        """The database of a real run (a plan-only outbox has none and never writes)."""
        if self.engine is None:
            raise RuntimeError("outbox without a database: only the plan reads it")
        return self.engine

    def _keep(self, action: Action) -> None:
        self.actions[action.chave] = action
        self.of_client.setdefault(action.cliente_id, set()).add(action.chave)

    def load(self, conn: Connection, keys: Keys, *, keep: Iterable[Action] = (), add: bool = False) -> None:
        """Hold the actions of one batch only (the previous batch's are dropped, unless `add`): those of
        `keys` — every key a client's actions can have — and `keep`. With `add`, only ids not read yet
        are read."""
        if not add:
            self.actions, self.of_client, self._read = {}, {}, Keys()
            self.open_pending = pending.open_keys(conn, STEP, prefix=pending_key(""))
        for name in ("cliente_id", "endereco_id", "historico_id"):
            done: set[int] = getattr(self._read, f"{name}s")
            wanted = [value for value in getattr(keys, f"{name}s") if value not in done]
            done.update(wanted)
            for chunk in chunks(wanted):
                for found in conn.execute(select(t.acao_field).where(t.acao_field.c[name].in_(chunk))):
                    self._keep(_action(found))
        for action in keep:
            if action.chave not in self.actions:
                self._keep(action)

    def get(self, chave: str) -> Action | None:
        return self.actions.get(chave)

    def open_pages(self, size: int | None = None) -> Iterator[list[Action]]:
        """The actions left `enviando`/`incerta` by earlier runs, in id order, `size` (PAGE) at a time."""
        last, size = 0, size or PAGE
        while True:
            with self.db.connect() as conn:
                page = [_action(row) for row in conn.execute(
                    select(t.acao_field).where(t.acao_field.c.estado.in_(OPEN), t.acao_field.c.id > last)
                    .order_by(t.acao_field.c.id).limit(size))]
            if not page:
                return
            yield page
            last = page[-1].id

    def done(self, tipo: str, cliente_id: int | None) -> list[Action]:
        """The concluded actions of one kind of a client, in the order they were concluded."""
        actions = (self.actions[chave] for chave in self.of_client.get(cliente_id, ()))
        chosen = [a for a in actions if a.tipo == tipo and a.estado == CONCLUIDA]
        return sorted(chosen, key=lambda a: a.order)

    # -- state changes (each one committed on its own) --------------------------------------------
    def _drop(self, chave: str) -> None:
        action = self.actions.pop(chave, None)
        if action is not None:
            self.of_client.get(action.cliente_id, set()).discard(chave)

    def _reload(self, conn: Connection, chave: str) -> None:
        row = conn.execute(BY_KEY, {"chave_": chave}).first()
        if row is not None:
            self._keep(_action(row))

    def insert_done(self, conn: Connection, chave: str, tipo: str, field_id: str, *, cliente_id: int | None,
                    endereco_id: int | None = None, historico_id: int | None = None) -> None:
        """Record, inside the caller's transaction, an object that exists already (adopted, primary location)."""
        if chave in self.actions:
            return
        now = db_now()
        inserted = conn.execute(INSERT, {
            "chave": chave, "tipo": tipo, "estado": CONCLUIDA, "cliente_id": cliente_id, "endereco_id": endereco_id,
            "historico_id": historico_id, "field_id": field_id, "payload": None, "tentativas": 0, "criada_em": now,
            "atualizada_em": now, "concluida_em": now, "execucao_id": self.run_id})
        self._keep(Action(id=_new_id(inserted), chave=chave, tipo=tipo, estado=CONCLUIDA,
                          cliente_id=cliente_id, endereco_id=endereco_id, historico_id=historico_id, payload=None,
                          field_id=field_id, tentativas=0, atualizada_em=now, concluida_em=now,
                          execucao_id=self.run_id))

    def claim(self, spec: Spec) -> bool:
        """Take the action for one send and commit `enviando` BEFORE the request (a crash leaves a trace
        to reconcile). Atomic: the row changes only from the state and attempt count this run saw, or
        is inserted under its unique key; False when another run got there first."""
        now = db_now()
        text = canonical(spec.payload)
        values = {"estado": ENVIANDO, "payload": text, "atualizada_em": now, "execucao_id": self.run_id,
                  "cliente_id": spec.cliente_id, "endereco_id": spec.endereco_id, "historico_id": spec.historico_id}
        current = self.actions.get(spec.chave)
        try:
            with self.db.begin() as conn:
                if current is None:
                    inserted = conn.execute(INSERT, {**values, "chave": spec.chave, "tipo": spec.tipo, "tentativas": 1,
                                                     "criada_em": now, "field_id": None, "concluida_em": None})
                    claimed = Action(id=_new_id(inserted), chave=spec.chave, tipo=spec.tipo,
                                     estado=ENVIANDO, cliente_id=spec.cliente_id, endereco_id=spec.endereco_id,
                                     historico_id=spec.historico_id, payload=json.loads(text), field_id=None,
                                     tentativas=1, atualizada_em=now, concluida_em=None, execucao_id=self.run_id)
                else:
                    changed = conn.execute(CLAIM, {**values, "chave_": spec.chave, "estado_": current.estado,
                                                   "tentativas_": current.tentativas}).rowcount
                    if changed != 1:
                        self._reload(conn, spec.chave)
                        return False
                    # the row is what this run just wrote (the conditional UPDATE saw the rest unchanged)
                    claimed = replace(current, estado=ENVIANDO, cliente_id=spec.cliente_id,
                                      endereco_id=spec.endereco_id, historico_id=spec.historico_id,
                                      payload=json.loads(text), tentativas=current.tentativas + 1,
                                      atualizada_em=now, execucao_id=self.run_id)
        except IntegrityError:  # the unique key: another run inserted it between our read and our write
            with self.db.connect() as conn:
                self._reload(conn, spec.chave)
            return False
        self._keep(claimed)
        return True

    def settled(self, action: Action) -> bool:
        """The settle period has passed since the action's last attempt (a look-up now is conclusive)."""
        return action.atualizada_em is not None and db_now() - action.atualizada_em >= self.settle + CLOCK_GRAIN

    def settles_at(self, action: Action | None) -> str:
        moment = (action.atualizada_em if action and action.atualizada_em else db_now()) + self.settle + CLOCK_GRAIN
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC"

    def set_state(self, chave: str, estado: State, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.acao_field.update().where(t.acao_field.c.chave == chave).values(
                estado=estado, atualizada_em=db_now(), ultimo_erro=None if error is None else redact(error)[:4000]))
            self._reload(conn, chave)

    def complete(self, spec: Spec, value: Any) -> str:
        """Commit the receipt: the action `concluida` with its id, the domain update, the pending item closed."""
        field_id = value.id
        now = db_now()
        key = pending_key(spec.chave)
        may_be_open = self.open_pending is None or key in self.open_pending
        current = self.actions.get(spec.chave)
        try:
            with self.db.begin() as conn:
                if current is None:  # adopted without a send: the receipt still goes in the outbox
                    self.insert_done(conn, spec.chave, spec.tipo, field_id, cliente_id=spec.cliente_id,
                                     endereco_id=spec.endereco_id, historico_id=spec.historico_id)
                    done = self.actions[spec.chave]
                else:
                    conn.execute(COMPLETE, {"chave_": spec.chave, "field_id": field_id, "atualizada_em": now,
                                            "concluida_em": now, "execucao_id": self.run_id})
                    done = replace(current, estado=CONCLUIDA, field_id=field_id, atualizada_em=now,
                                   concluida_em=now, execucao_id=self.run_id)
                spec.receipt(conn, value)
                if may_be_open:
                    pending.resolve(conn, STEP, [key], run_id=self.run_id)
        except IntegrityError:  # another run recorded the same adoption first: its receipt stands
            self._drop(spec.chave)
            with self.db.connect() as conn:
                self._reload(conn, spec.chave)
            log.info("%s: registrado ao mesmo tempo por outra execução", spec.label)
            current = self.actions.get(spec.chave)
            return current.field_id if current is not None and current.field_id else field_id
        except BaseException:
            if current is not None:
                self._keep(current)  # the transaction was rolled back: the action is as it was
            else:
                self._drop(spec.chave)
            raise
        self._keep(done)
        if self.open_pending is not None:
            self.open_pending.discard(key)
        return field_id

    def record_pending(self, spec: Spec, reason: str, *, estado: State | None = None) -> None:
        """Open the pending item of the action (and, when it was sent, record its new state)."""
        with self.engine.begin() as conn:
            if estado is not None and spec.chave in self.actions:
                conn.execute(t.acao_field.update().where(t.acao_field.c.chave == spec.chave).values(
                    estado=estado, atualizada_em=db_now(), ultimo_erro=redact(reason)[:4000]))
            pending.record(conn, STEP, pending_key(spec.chave), reason, isales_id=spec.isales_id, run_id=self.run_id)
            self._reload(conn, spec.chave)
        if self.open_pending is not None:
            self.open_pending.add(pending_key(spec.chave))

    def retry_due(self, action: Action, payload: Any) -> bool:
        """A rejected action is tried again when its payload changed, after 6 hours, or on request."""
        if self.force_retry or canonical(action.payload) != canonical(payload):
            return True
        return action.atualizada_em is None or db_now() - action.atualizada_em >= RETRY_REJECTED_AFTER

    # -- the protocol -------------------------------------------------------------------------------
    def _count(self, spec: Spec, outcome: Outcome) -> None:
        mapping = {Outcome.CREATED: spec.done_outcome, Outcome.RECOVERED: spec.done_outcome,
                   Outcome.ADOPTED: "adotados", Outcome.BLOCKED: "pendentes", Outcome.REJECTED: "pendentes",
                   Outcome.UNCERTAIN: "falhas", Outcome.SETTLING: "incertos",
                   Outcome.ELSEWHERE: "em_outra_execucao"}
        if outcome in mapping:
            self.summary.add(spec.kind, mapping[outcome])

    def _finish(self, spec: Spec, outcome: Outcome, value: Any = None, field_id: str | None = None) -> Result:
        if value is not None:
            field_id = self.complete(spec, value)
            # a PUT updates; a person reads FieldControl by its human number, the API id is for -v
            word = "atualizado" if spec.done_outcome == "atualizados" and outcome is Outcome.CREATED else outcome.value
            human = getattr(value, "identifier", None)
            log.info("%s: %s%s", spec.label, word, f" ({human})" if human else "")
            log.debug("%s: id no FieldControl %s", spec.label, field_id)
        self._count(spec, outcome)
        return Result(outcome, field_id, value)

    def perform(self, spec: Spec, *, redo: bool = False) -> Result:
        """Send `spec` effectively once (see the module docstring); TransientError stops the run.

        `redo` sends a concluded action again (an idempotent PUT whose payload came back to an old value).
        """
        action = self.actions.get(spec.chave)
        if action is not None and action.estado == CONCLUIDA and not redo:
            return Result(Outcome.DONE, action.field_id)
        if action is not None and action.estado in OPEN:
            if spec.chave in self.settling:  # looked up already in this run, still within its settle period
                return self._finish(spec, Outcome.SETTLING)
            if spec.find is not None:
                found, failure = self._lookup(spec)  # an earlier run may have sent it: look before sending again
                if failure:
                    return self._unchecked(spec, failure)
                if found is not None:
                    return self._finish(spec, Outcome.RECOVERED, found)
                if not self.settled(action):
                    return self._wait_settle(spec, action, "ainda não apareceu no FieldControl")
        elif action is not None and action.estado == REJEITADA and not self.retry_due(action, spec.payload):
            log.info("%s: recusada antes pelo FieldControl; nova tentativa quando os dados mudarem, "
                     "após 6 horas ou com --reprocessar-pendentes", spec.label)
            return self._finish(spec, Outcome.BLOCKED)
        if spec.look_first and spec.find is not None and (action is None or action.estado not in OPEN):
            found, failure = self._lookup(spec, first=True)
            if failure:
                return self._unchecked(spec, failure)
            if found is not None:
                return self._finish(spec, Outcome.ADOPTED, found)
        return self._send(spec)

    def _wait_settle(self, spec: Spec, action: Action | None, why: str) -> Result:
        """An ambiguous write within its settle period: not resent; a pending item says until when."""
        self.settling[spec.chave] = spec.label
        reason = (f"{spec.label}: envio com resultado incerto ({why}); o FieldControl pode gravá-lo depois de "
                  f"responder, então nada é reenviado antes de {self.settles_at(action)}: a próxima execução "
                  "depois disso confere e só reenvia se não estiver lá")
        log.warning("%s", reason)
        self.record_pending(spec, reason)
        return self._finish(spec, Outcome.SETTLING)

    @staticmethod
    def _lookup(spec: Spec, *, first: bool = False) -> tuple[Any, str | None]:
        """(what FieldControl holds, None), or (None, why it could not be looked up) for this record."""
        find = (spec.find_first if first else None) or spec.find
        assert find is not None  # callers look up only specs that have a finder
        try:
            return find(), None
        except (RecordError, BadResponse) as exc:  # TransientError and AuthError stop the run
            return None, exc.message

    def _unchecked(self, spec: Spec, failure: str) -> Result:
        """Without a conclusive lookup nothing is sent: a pending item, and the next run looks again."""
        reason = f"{spec.label}: não foi possível conferir no FieldControl antes de enviar ({failure}); nada foi enviado"
        log.warning("%s", reason)
        self.record_pending(spec, reason)
        return self._finish(spec, Outcome.UNCERTAIN)

    def reconcile(self, spec: Spec) -> bool:
        """Look up an action left `enviando`/`incerta` by an earlier run; not there → `nova` (safe to send)."""
        found, failure = self._lookup(spec) if spec.find is not None else (None, None)
        if failure:  # left as it is: the action's own turn looks again and never sends blind
            log.warning("%s: não foi possível conferir no FieldControl: %s", spec.label, failure)
            return False
        if found is not None:
            self._finish(spec, Outcome.RECOVERED, found)
            return True
        action = self.actions.get(spec.chave)
        if action is None or action.estado not in OPEN:
            return False
        if spec.find is not None and not self.settled(action):
            self.settling[spec.chave] = spec.label  # its own turn reports it, without a second look-up
            log.info("%s: ainda não apareceu no FieldControl; aguarda até %s antes de qualquer reenvio",
                     spec.label, self.settles_at(action))
            return False
        if not self.release(action, "conferido no FieldControl depois da espera: o envio anterior não chegou lá"):
            return False
        log.info("%s: o envio anterior não chegou ao FieldControl; pode ser enviado de novo", spec.label)
        return False

    def release(self, action: Action, note: str) -> bool:
        """An open action found absent after its settle period goes back to `nova` (if no other run moved it)."""
        with self.db.begin() as conn:
            row = t.acao_field.c
            changed = conn.execute(t.acao_field.update().where(
                row.chave == action.chave, row.estado == action.estado, row.tentativas == action.tentativas,
            ).values(estado=NOVA, atualizada_em=db_now(), ultimo_erro=note)).rowcount
            self._reload(conn, action.chave)
        return changed == 1

    def _send(self, spec: Spec, *, again: bool = False) -> Result:
        """One send per run: after an ambiguous outcome the write waits for its settle period (a PUT,
        harmless to repeat, is sent once more at once)."""
        if not self.claim(spec):
            log.info("%s: outra execução já está cuidando desta ação; nada enviado por esta", spec.label)
            return self._finish(spec, Outcome.ELSEWHERE)
        try:
            value = spec.send()
        except (AmbiguousWrite, BadResponse) as exc:
            error = exc.message
            log.warning("%s: %s; conferindo no FieldControl antes de qualquer reenvio", spec.label, error)
            self.set_state(spec.chave, INCERTA, error)
            if spec.find is None:  # a PUT: the same body again is harmless
                if not again:
                    return self._send(spec, again=True)
                reason = (f"{spec.label}: resultado incerto no FieldControl ({error}); será enviado de novo "
                          "na próxima execução")
                log.warning("%s", reason)
                self.record_pending(spec, reason)
                return self._finish(spec, Outcome.UNCERTAIN)
            found, failure = self._lookup(spec)
            if failure:
                return self._unchecked(spec, failure)
            if found is not None:
                return self._finish(spec, Outcome.CREATED, found)
            return self._wait_settle(spec, self.actions.get(spec.chave), error)
        except RecordError as exc:  # 422 and friends (RemoteRejected), or a 404 of its customer
            reason = (f"{spec.label}: {exc.message}; será tentado de novo quando os dados mudarem, "
                      "em 6 horas ou com --reprocessar-pendentes")
            log.warning("%s", reason)
            self.record_pending(spec, reason, estado=REJEITADA)
            return self._finish(spec, Outcome.REJECTED)
        except (TransientError, ConfigError) as exc:  # surely not taken: 429/refused/401
            self.set_state(spec.chave, NOVA, exc.message)
            raise
        return self._finish(spec, Outcome.CREATED, value)


class Obsolete:
    """The open pending items of actions (`acao:<chave>`) when the run starts; the run marks each action
    it still needs, and at the end the others still open are closed (address edited, project
    cancelled…). Only those items are held, never every key of the run: an item opened during the run
    is for an action the run needed."""

    def __init__(self, outbox: Outbox, isales_ids: set[str] | None, page: int = PAGE):
        self.outbox, self.page = outbox, page
        self.unseen: set[str] = set()
        for _conn, items in self._pages(select(pendencia.c.chave, pendencia.c.isales_id)):
            self.unseen.update(row.chave for row in items if isales_ids is None or row.isales_id in isales_ids)

    def need(self, chave: str) -> None:
        self.unseen.discard(pending_key(chave))

    def _pages(self, query: Any) -> Iterator[tuple[Connection, list[Any]]]:
        """The open `acao:` items of step 04 (columns of `query`), `page` at a time in id order, each
        page with the transaction it was read in (where the caller closes what it closes)."""
        last = 0
        while True:
            with self.outbox.db.begin() as conn:
                rows = list(conn.execute(query.add_columns(pendencia.c.id).where(
                    pendencia.c.etapa == STEP, pendencia.c.resolvida_em.is_(None), pendencia.c.id > last,
                    pendencia.c.chave.startswith(pending_key(""), autoescape=True))
                    .order_by(pendencia.c.id).limit(self.page)))
                if not rows:
                    return
                yield conn, rows
            last = rows[-1].id

    def resolve(self) -> int:
        """Close the items of actions the run did not need, and those of actions concluded since the item
        was last recorded (a receipt closes its item only when the outbox knew it open: one another run
        opened meanwhile is closed here). Read and closed `page` items at a time: a first load may leave
        thousands open (issue 14 §2)."""
        closed = 0
        for conn, items in self._pages(select(pendencia.c.chave, pendencia.c.ultima_vez)):
            stale = [row.chave for row in items if row.chave in self.unseen]
            concluded = self._concluded(conn, {row.chave[len(pending_key("")):]: row.ultima_vez
                                                     for row in items if row.chave not in self.unseen})
            if stale or concluded:
                pending.resolve(conn, STEP, stale + concluded, run_id=self.outbox.run_id)
            for key in stale:
                log.info("pendência %s encerrada: a ação não é mais necessária", key)
            for key in concluded:
                log.info("pendência %s encerrada: a ação foi concluída", key)
            closed += len(stale) + len(concluded)
        return closed

    @staticmethod
    def _concluded(conn: Connection, recorded: dict[str, datetime]) -> list[str]:
        """The items (of `recorded`: action key → when its item was last recorded) whose action was
        concluded at or after that moment."""
        found: list[str] = []
        for chunk in chunks(recorded):
            rows = conn.execute(select(_row.chave, _row.concluida_em).where(
                _row.chave.in_(chunk), _row.estado == CONCLUIDA, _row.concluida_em.isnot(None)))
            found += [pending_key(row.chave) for row in rows if row.concluida_em >= recorded[row.chave]]
        return found
