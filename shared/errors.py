"""Tandem's error tree; every error a caller may act on is one of these. Each carries the HTTP answer it maps to
(`http_status`, `title`: an RFC 9457 problem body, built by functions/http.py), so a handler never maps errors.

TandemError
├── ConfigError          the topology or a setting is wrong (names the file and field)
├── InputError           a request or event is malformed or unknown (logged and rejected)          400
│   └── NotFoundError    what the request names does not exist                                    404
├── ConflictError        the request is valid but the thing it acts on is not in a state to take it  409
├── AuthorizationError   the caller lacks the platform authentication or a role                    401/403
└── DependencyError      a dependency (ARM, Qumulo, storage) failed or is unreachable               503
    ├── LockHeldError    a lock (blob lease) is held by someone else
    ├── QumuloApiError   Qumulo answered with an error (status, error_class, description)
    └── QumuloTransportError  no Qumulo answer: unreachable, timed out, or a proxy's HTML page
"""

from __future__ import annotations


class TandemError(Exception):
    """Base of every error Tandem raises on purpose; `title` and `http_status` override the class's answer."""

    http_status = 500
    title = "Internal error"

    def __init__(self, message: str = "", *, title: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        if title is not None:
            self.title = title
        if http_status is not None:
            self.http_status = http_status


class ConfigError(TandemError):
    """The topology file or an app setting is invalid."""

    title = "Configuration error"


class InputError(TandemError):
    """A request body or an event payload is malformed, incomplete or of an unknown kind."""

    http_status, title = 400, "Invalid request"


class NotFoundError(InputError):
    """The pool, instance or action a request names does not exist."""

    http_status, title = 404, "Not found"


class ConflictError(TandemError):
    """The request is valid, but what it acts on cannot take it now (an instance that is not running)."""

    http_status, title = 409, "Conflict"


class AuthorizationError(TandemError):
    """The caller is not authenticated by the platform (401) or lacks the required app role (403)."""

    http_status, title = 403, "Forbidden"


class DependencyError(TandemError):
    """A service Tandem depends on failed, timed out or could not be reached."""

    http_status, title = 503, "A dependency did not answer"


class LockHeldError(DependencyError):
    """Someone else holds the lock (a blob lease) and did not let go in time."""


class QumuloApiError(DependencyError):
    """A Qumulo REST error: its HTTP status and the `error_class` and `description` of its body."""

    def __init__(self, status: int, error_class: str, description: str, *, cluster: str = "") -> None:
        super().__init__(f"Qumulo {cluster or 'cluster'} answered {status} {error_class}: {description}")
        self.status = status
        self.error_class = error_class
        self.description = description


class QumuloTransportError(DependencyError):
    """Qumulo could not be reached or gave no usable answer (timeout, reset, TLS failure, proxy HTML)."""
