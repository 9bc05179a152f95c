"""Logging set-up (stderr + data/logs/), the secret-redacting formatter, and progress bars.

`redact()` is the one place that knows how secrets look in text; every log line (our own,
urllib3's, tracebacks included), every exception message and every file we write passes through it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values would mask innocent text everywhere

_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# Secrets that travel inside text we do not control (URLs, headers, DSNs).
_PATTERNS = [
    # query parameters: iSales api_token, Google key, any *token*/*key*/password
    (re.compile(r"(?i)([?&;](?:api_token|token|key|api_key|apikey|access_token|password|senha)=)[^&#\s'\"]*"),
     r"\1" + MASK),
    # headers as text
    (re.compile(r"(?i)((?:x-api-key|authorization)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"), r"\1" + MASK),
    # user:password@ in database / SMTP URLs (the scheme starts a word and is short: a long run of
    # letters, e.g. a 100 000-character field, must not cost quadratic backtracking)
    (re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,30}://[^:/@\s]+:)[^@/\s]+@"), r"\1" + MASK + "@"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so that redact() masks it wherever it shows up."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)
            # the URL-encoded form travels in query strings
            from urllib.parse import quote, quote_plus

            _secrets.update({quote(value, safe=""), quote_plus(value)})


def clip(text: object, size: int) -> str:
    """Text from outside (a response body, a driver's error) cut to `size` characters, redacted
    FIRST: cut first, a secret split at the edge would keep its first part unmasked."""
    return redact(text)[:size]


def redact(text: object) -> str:
    """Text with every registered secret and every token-looking parameter masked."""
    s = text if isinstance(text, str) else str(text)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for value in secrets:
        if value in s:
            s = s.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        s = pattern.sub(repl, s)
    return s


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, arguments, traceback) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return redact(super().formatException(ei))


class _TqdmAwareHandler(logging.StreamHandler):
    """Writes through tqdm when a progress bar may be on screen, so lines do not tear it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            if _is_tty(self.stream):
                from tqdm import tqdm

                tqdm.write(msg, file=self.stream)
            else:
                self.stream.write(msg + "\n")
            self.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_configured_handlers: list[logging.Handler] = []


def setup_logging(step: str, data_dir: Path | None, *, verbose: bool = False, run_tag: str = "") -> Path | None:
    """Log to stderr and to data/logs/<step>-<date>.log; return the log file's path.

    Without `data_dir` (settings not loaded yet) only stderr is set up. The level is DEBUG with
    --verbose (or LOG_LEVEL=DEBUG), else INFO. Calling it again replaces the handlers of an
    earlier call (tests run several steps in one process).
    """
    import os

    level_name = "DEBUG" if verbose else os.environ.get("LOG_LEVEL", "INFO").upper()
    level = getattr(logging, level_name, logging.INFO)
    root = logging.getLogger()
    for handler in _configured_handlers:
        root.removeHandler(handler)
        handler.close()
    _configured_handlers.clear()

    stderr_handler = _TqdmAwareHandler(sys.stderr)
    stderr_handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    handlers: list[logging.Handler] = [stderr_handler]
    log_file = None
    if data_dir is not None:
        log_file = _file_handler(Path(data_dir), step, run_tag, stderr_handler, handlers)
    for handler in handlers:
        handler.setLevel(level)
        root.addHandler(handler)
        _configured_handlers.append(handler)
    root.setLevel(level)
    # third-party chatter stays quiet unless we are debugging
    for noisy in ("urllib3", "geopy", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return log_file


def _file_handler(data_dir: Path, step: str, run_tag: str, stderr_handler: logging.Handler,
                  handlers: list[logging.Handler]) -> Path:
    log_dir = data_dir / "logs"
    log_file = log_dir / f"{step}-{datetime.now():%Y-%m-%d}.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        tag = f" [{run_tag}]" if run_tag else ""
        file_handler.setFormatter(
            RedactingFormatter(f"%(asctime)s %(levelname)s [pid %(process)d]{tag} %(name)s: %(message)s")
        )
        handlers.append(file_handler)
    except OSError as exc:
        stderr_handler.handle(
            logging.makeLogRecord(
                {"levelno": logging.WARNING, "levelname": "WARNING",
                 "msg": f"não foi possível abrir o arquivo de log {log_file}: {exc}"}
            )
        )
    return log_file


def install_excepthook() -> None:
    """Redact tracebacks that escape everything else (last line of defence)."""
    default = sys.excepthook

    def hook(exc_type, exc, tb):
        import traceback

        text = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(redact(text))

    if sys.excepthook is default:
        sys.excepthook = hook


def human_duration(seconds: float) -> str:
    """A duration as people read it: 42 s, 3 min 05 s, 1 h 12 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


T = TypeVar("T")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """A tqdm progress bar on a terminal; the plain iterable otherwise (cron, pipes, tests)."""
    if not _is_tty(sys.stderr):
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)
