"""How every standalone local server ends its start-up: one READY line, then serve until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def serve_until_stopped(ready: dict[str, str], close: Callable[[], None]) -> int:
    """Print `READY key=value ...` (what scripts and tests wait for), block until a signal, then `close()`."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("READY " + " ".join(f"{k}={v}" for k, v in ready.items()), flush=True)
    stop.wait()
    close()
    return 0
