"""The one HTTP session factory: timeouts, retries with backoff, Retry-After, pacing, redaction.

Rules (docs/design.md §2): every call has a connect and a read timeout; GET retries 429/5xx/connection
errors with backoff and honours Retry-After; a POST/PUT is resent only when it surely did not take
effect (429, connection refused, connect timeout); any other failure of a write raises
AmbiguousWrite so that the caller looks the object up before creating it again.
Retries are our own loop (not urllib3's) so that every attempt passes through the pacer and a
Retry-After pauses every thread and process sharing the pacer.
"""

from __future__ import annotations

import email.utils
import fcntl
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from lib import __version__
from lib.config import HttpSettings
from lib.errors import AmbiguousWrite, BadResponse, TransientError
from lib.logs import clip, redact

log = logging.getLogger(__name__)

USER_AGENT = f"isales-field-sync/{__version__} (+integracao iSales-FieldControl)"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # a longer wait is better left to the next cron run
BODY_CHUNK = 1 << 16  # bytes of an answer read at a time when it goes to a file (`into`)
STATE_WIDTH = 24  # characters of one moment in a pacing file: an epoch time with microseconds, right-aligned
STATE_SIZE = 2 * STATE_WIDTH  # a pacing file holds two moments: due and earliest (see Pacer)


class Pacer:
    """Spaces requests at `rate_per_second` and holds everyone during a Retry-After.

    With `state_file`, the schedule lives in that file under flock(2), so every process using
    the same file (the same API key) shares one budget; without it, only this process's threads.
    A small margin keeps client-side jitter from turning into server-side 429s.

    Two moments make the schedule: `due`, where the next call would go at the steady pace
    (`interval`, with the margin), and `earliest`, the previous call plus `min_interval` (a thinner
    margin, never under the limit itself). A caller that comes late (a slow answer, a pause of our
    own) does not lose its slot for good: the next calls go at `min_interval` until `due` is met
    again, so a run keeps its pace and the limit is never passed. A lag longer than `CATCH_UP`
    intervals is idleness, not a slip: the schedule restarts from now without credit.

    Without a configured rate, the server's own limit is learnt from Laravel-style headers
    (`X-RateLimit-Limit` per minute, `X-RateLimit-Remaining`, see `observe`): requests are spread
    evenly over the minute, so a steady run never meets a 429 nor stalls for a whole window.
    """

    WINDOW = 60.0  # Laravel's throttle counts per minute
    RESERVE = 1  # remaining requests below which the next ones are spaced further apart
    MIN_MARGIN = 1.02  # the spacing while catching up: 20 ms over the limit at 1 req/s
    CATCH_UP = 10  # intervals of lag that may be made up; more is idleness

    def __init__(self, rate_per_second: float | None = None, state_file: Path | None = None,
                 margin: float = 1.05):
        self.margin = margin
        self.configured = bool(rate_per_second)
        self.interval = 0.0
        self.min_interval = 0.0
        self._set_interval((margin / rate_per_second) if rate_per_second else 0.0)
        self.state_file = Path(state_file) if state_file else None
        self._lock = threading.Lock()
        self._next: tuple[float, float] = (0.0, 0.0)
        if self.state_file:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)

    def _reserve(self, *, hold_until: float | None = None) -> float:
        """Take the next slot (or push the schedule to `hold_until`); return when we may send."""
        with self._lock:
            if self.state_file is None:
                return self._advance(hold_until, self._next, self._keep)
            fd = os.open(self.state_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, STATE_SIZE + STATE_WIDTH, 0)
                stored = _read_schedule(raw)

                def save(schedule: tuple[float, float]) -> None:
                    # one write in place, always the same width: a truncate per request cost ~2 ms on ext4
                    text = "".join(f"{value:.6f}".rjust(STATE_WIDTH) for value in schedule)
                    os.pwrite(fd, text.encode("ascii"), 0)
                    if len(raw) > STATE_SIZE:  # a file not written by us (or damaged): cut its tail once
                        os.ftruncate(fd, STATE_SIZE)

                return self._advance(hold_until, stored, save)
            finally:
                os.close(fd)  # releases the lock

    def _keep(self, schedule: tuple[float, float]) -> None:
        self._next = schedule

    def _advance(self, hold_until: float | None, stored: tuple[float, float],
                 save: Callable[[tuple[float, float]], None]) -> float:
        """`stored` is (due, earliest); save the pair for the next caller, return this one's slot."""
        now = time.time()
        due, earliest = stored
        if hold_until is not None:
            if hold_until > max(due, earliest):
                save((hold_until, hold_until))
            return now
        if now - due > self.CATCH_UP * self.interval:
            due = now  # idle for a while: nothing to make up
        slot = max(now, due, earliest)
        save((due + self.interval, slot + self.min_interval))
        return slot

    def _set_interval(self, interval: float) -> None:
        self.interval = interval
        self.min_interval = interval * min(self.MIN_MARGIN, self.margin) / self.margin if self.margin else interval

    def wait(self) -> float:
        """Block until this caller may send one request; the moment reserved for it (time.time())."""
        slot = self._reserve()
        delay = slot - time.time()
        if delay > 0:
            time.sleep(delay)
        return slot

    def hold(self, seconds: float) -> None:
        """Nobody sharing this pacer sends for `seconds` (a 429's Retry-After or a backoff)."""
        self._reserve(hold_until=time.time() + seconds)

    def observe(self, limit: int, remaining: int) -> None:
        """Learn the server's limit from its headers; a configured rate always wins (override).

        Pace at `limit` per minute (with the margin); when the answer says almost nothing is left
        (a burst before the limit was known, another client on the same token), space the next
        requests further, one more interval per request below the reserve.
        """
        if self.configured or limit <= 0:
            return
        interval = self.WINDOW * self.margin / limit
        with self._lock:
            if interval != self.interval:
                log.debug("limite do servidor: %d por minuto; uma requisição a cada %.2f s", limit, interval)
            self._set_interval(interval)
        if remaining <= self.RESERVE:
            self.hold(interval * (self.RESERVE + 1 - max(remaining, 0)))


def _read_schedule(raw: bytes) -> tuple[float, float]:
    """(due, earliest) from a pacing file; a one-moment file (the previous format) is both; a
    damaged one is no schedule at all."""
    try:
        values = [float(part) for part in raw.decode("ascii").split()]
    except (UnicodeDecodeError, ValueError):
        return 0.0, 0.0
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    return 0.0, 0.0


def pacer_file(data_dir: Path, service: str, key: str) -> Path:
    """The shared pacing file of one API key (the file name carries a hash, never the key)."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return Path(data_dir) / "ritmo" / f"{service}-{digest}.state"


def _retry_after(response: requests.Response) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date), else from Laravel's X-RateLimit-Reset
    (a Unix time); None when the answer says neither."""
    value = response.headers.get("Retry-After")
    if not value:
        try:
            return max(0.0, float(response.headers["X-RateLimit-Reset"]) - time.time())
        except (KeyError, ValueError):
            return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _rate_limit(response: requests.Response) -> tuple[int, int] | None:
    """(limit, remaining) from Laravel's X-RateLimit-* headers, or None when absent or unreadable."""
    try:
        return int(response.headers["X-RateLimit-Limit"]), int(response.headers["X-RateLimit-Remaining"])
    except (KeyError, ValueError):
        return None


def _surely_not_sent(exc: requests.RequestException) -> bool:
    """True when the request never reached the server (connection refused, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
        return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
    return False


def describe_failure(exc: requests.RequestException) -> str:
    """A short pt-BR description of a network failure (no URL, so no secret)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "tempo de conexão esgotado"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "tempo de resposta esgotado"
    if _surely_not_sent(exc):
        return "conexão recusada ou servidor inalcançável"
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return "conexão interrompida antes da resposta completa"
    return f"falha de rede ({type(exc).__name__})"


def http_status(response: requests.Response) -> int:
    """What an answer means for the retry rules: its HTTP status (see `make_session(answer_status=)`)."""
    return response.status_code


class HttpSession(requests.Session):
    """A requests.Session whose every call follows the project's timeout/retry/pacing rules."""

    def __init__(self, service: str, settings: HttpSettings, *, pacer: Pacer | None = None,
                 user_agent: str = USER_AGENT, pool_size: int = 10,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 answer_status: Callable[[requests.Response], int] = http_status):
        super().__init__()
        self.service = service
        self.answer_status = answer_status
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self.max_attempts = settings.max_attempts
        self.pacer = pacer or Pacer()
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.trust_env = False  # no proxy or .netrc surprises from the environment
        self.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size,
                              max_retries=urllib3.util.Retry(0, read=False, redirect=False))
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.stats = {"requests": 0, "retries": 0, "status_429": 0}
        self._stats_lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """requests' request under the project's rules. With `into` (a binary file), the body of a
        200 answer is written there as it arrives, within the same retries (a big answer is never
        held whole; the response's own content is then empty)."""
        into: IO[bytes] | None = kwargs.pop("into", None)
        if into is not None:
            kwargs["stream"] = True
        method = method.upper()
        kwargs.setdefault("timeout", self.timeout)
        # never follow redirects: a login page must not pass for data, and short links are
        # resolved hop by hop by their caller (requests' get() defaults this to True)
        kwargs["allow_redirects"] = False
        safe = method in SAFE_METHODS
        where = f"{self.service}: {method} {urlsplit(url).path}"
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            self.pacer.wait()
            self._count("requests")
            started = time.monotonic()
            try:
                response = super().request(method, url, **kwargs)
                if into is not None and response.status_code == 200:
                    _save_body(response, into)
            except requests.RequestException as exc:
                what = describe_failure(exc)
                if not safe and not _surely_not_sent(exc):
                    raise AmbiguousWrite(f"{where}: {what}; não se sabe se o servidor gravou") from None
                if last:
                    raise TransientError(f"{where}: {what} (após {attempt} tentativas)") from None
                delay = self._backoff(attempt)
                log.warning("%s: %s; nova tentativa em %.1f s (%d/%d)", where, what, delay, attempt, self.max_attempts)
                self._count("retries")
                time.sleep(delay)
                continue
            if log.isEnabledFor(logging.DEBUG):  # redact() is not free: only when the line is written
                log.debug("%s %s -> %s (%.0f ms)", method, redact(url), response.status_code,
                          (time.monotonic() - started) * 1000)
            status = self.answer_status(response)
            rate_limit = _rate_limit(response)
            if rate_limit:  # a 429's Remaining is 0 by definition: its Retry-After rules the wait
                self.pacer.observe(rate_limit[0], rate_limit[1] if status != 429 else Pacer.RESERVE + 1)
            if status == 429:
                self._count("status_429")
                wait = _retry_after(response)
                if wait is not None and wait > MAX_RETRY_AFTER:
                    raise TransientError(f"{where}: limite de requisições; o servidor pediu {wait:.0f} s de espera")
                delay = wait if wait is not None else self._backoff(attempt)
                if last:
                    raise TransientError(f"{where}: limite de requisições (429) persistente após {attempt} tentativas")
                log.warning("%s: limite de requisições (429); todos aguardam %.1f s", where, delay)
                self.pacer.hold(delay)
                self._count("retries")
                response.close()
                continue
            if status in RETRY_STATUSES:
                if not safe:
                    raise AmbiguousWrite(f"{where}: o servidor respondeu {status}; não se sabe se gravou")
                if last:
                    raise TransientError(f"{where}: o servidor respondeu {status} (após {attempt} tentativas)")
                wait = _retry_after(response)
                delay = min(wait, MAX_RETRY_AFTER) if wait is not None else self._backoff(attempt)
                log.warning("%s: o servidor respondeu %s; nova tentativa em %.1f s", where, status, delay)
                self._count("retries")
                response.close()
                time.sleep(delay)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def _save_body(response: requests.Response, into: IO[bytes]) -> None:
    into.seek(0)
    into.truncate()
    for chunk in response.iter_content(BODY_CHUNK):
        into.write(chunk)
    into.flush()
    into.seek(0)
    response._content = b""  # read into the file: nothing is held, and nothing read twice


def make_session(service: str, settings: HttpSettings, *, rate_per_second: float | None = None,
                 pacer_state: Path | None = None, user_agent: str = USER_AGENT, pool_size: int = 10,
                 answer_status: Callable[[requests.Response], int] = http_status) -> HttpSession:
    """The session every client uses. `rate_per_second` paces; `pacer_state` shares it across processes.

    `answer_status` reads the status an answer really carries, for an API that says "slow down"
    or "try again" in a 200's body (Google's OVER_QUERY_LIMIT → 429): the same retry path applies.
    """
    pacer = Pacer(rate_per_second, pacer_state)
    return HttpSession(service, settings, pacer=pacer, user_agent=user_agent, pool_size=pool_size,
                       answer_status=answer_status)


def json_body(response: requests.Response, what: str) -> Any:
    """The JSON of a response, or BadResponse naming `what` (HTML pages, truncated bodies...)."""
    content_type = response.headers.get("Content-Type", "")
    text = response.text
    try:
        return json.loads(text)
    except ValueError:
        start = " ".join(clip(text, 80).split())
        kind = "uma página HTML" if "html" in content_type.lower() or start.lower().startswith(("<!doctype", "<html")) \
            else "um conteúdo que não é JSON válido"
        raise BadResponse(
            f"{what}: resposta {response.status_code} com {kind} (início: {start!r})", status=response.status_code
        ) from None
