"""The local Functions runtime: runs function_app's timers, Event Grid, HTTP and Durable Functions."""

from local.runtime.clock import VirtualClock, WallClock
from local.runtime.host import LocalHost

__all__ = ["LocalHost", "VirtualClock", "WallClock"]
