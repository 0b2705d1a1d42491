"""Tandem's error tree; every error a caller may act on is one of these.

    TandemError
    ├── ConfigError          the topology or a setting is wrong (names the file and field)
    ├── InputError           a request or event is malformed or unknown (logged and rejected)
    ├── AuthorizationError   the caller lacks the platform authentication or a role
    └── DependencyError      a dependency (ARM, Qumulo, storage) failed or is unreachable
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
