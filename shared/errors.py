"""Tandem's error tree; every error a caller may act on is one of these.

TandemError
├── ConfigError          the topology or a setting is wrong (names the file and field)
├── InputError           a request or event is malformed or unknown (logged and rejected)
├── AuthorizationError   the caller lacks the platform authentication or a role
└── DependencyError      a dependency (ARM, Qumulo, storage) failed or is unreachable
    ├── LockHeldError    a lock (blob lease) is held by someone else
    ├── QumuloApiError   Qumulo answered with an error (status, error_class, description)
    └── QumuloTransportError  no Qumulo answer: unreachable, timed out, or a proxy's HTML page
"""

from __future__ import annotations


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""


class ConfigError(TandemError):
    """The topology file or an app setting is invalid."""


class InputError(TandemError):
    """A request body or an event payload is malformed, incomplete or of an unknown kind."""


class AuthorizationError(TandemError):
    """The caller is not authenticated by the platform or lacks the required app role."""


class DependencyError(TandemError):
    """A service Tandem depends on failed, timed out or could not be reached."""


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
