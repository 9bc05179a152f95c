"""The exception tree of the project and the exit code each branch maps to.

SyncError                       exit 1   the step failed
├── ConfigError                 exit 2   missing/malformed setting, bad usage, schema not current
│   └── AuthError               exit 2   token/key refused, login redirect, HTML where JSON expected
├── InputFileError              exit 1   a data/ file is missing, truncated or of the wrong step
├── TransientError              exit 75  remote unreachable after retries; try later
│   └── LockHeld                exit 75  another run of the same step holds the lock
├── RecordError                 (→ pending item) one record cannot go on; the run continues
│   └── RemoteRejected          (→ pending item) the API refused the record (e.g. FieldControl 422)
├── BadResponse                 a remote answer of an unexpected shape (HTML, truncated JSON, ...)
└── AmbiguousWrite              a write whose remote outcome is unknown: reconcile before re-sending

Every message is pt-BR and already redacted: no secret reaches an exception text.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_PENDING = 3
EXIT_TEMPFAIL = 75
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM: stopped by cron's timeout, systemd, a container platform


class SyncError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str):
        from lib.logs import redact  # late import: logs imports nothing from here

        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(SyncError):
    """A setting is missing or malformed, or the command line is wrong."""

    exit_code = EXIT_CONFIG


class AuthError(ConfigError):
    """The remote refused our credentials or answered a login page."""


class InputFileError(SyncError):
    """A file in data/ cannot be used (missing, not JSON, wrong step, wrong format)."""


class TransientError(SyncError):
    """Temporary failure (network, remote down, lock): running again later should work."""

    exit_code = EXIT_TEMPFAIL


class LockHeld(TransientError):
    """Another run of the same step is in progress."""


class RecordError(SyncError):
    """One record cannot go on. The caller turns it into a pending item and continues."""


class RemoteRejected(RecordError):
    """The remote API refused the record (validation error); carries its status and details."""

    def __init__(self, message: str, *, status: int | None = None, details: object = None):
        super().__init__(message)
        self.status = status
        self.details = details


class BadResponse(SyncError):
    """A remote answer we cannot read: HTML instead of JSON, truncated JSON, unknown shape."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class AmbiguousWrite(SyncError):
    """A write (POST/PUT) whose outcome is unknown: look the object up before creating it again."""

    exit_code = EXIT_TEMPFAIL

