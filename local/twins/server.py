"""The HTTPS server both twins stand on: loopback TLS, injected latency and faults, an outage switch, a request log."""

from __future__ import annotations

import json
import logging
import math
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from local.tls import LocalCA

log = logging.getLogger("tandem.local.twin")
FaultKind = Literal["throttle", "error", "proxy", "reset", "timeout"]


@dataclass
class Request:
    """One request as a twin's dispatcher sees it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    """What a dispatcher answers: a status, an optional body (JSON, or bytes sent as they are) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedRequest:
    """One line of the request log: what was asked and what was answered (status 0 = no answer)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    fault: str | None = None


@dataclass
class Fault:
    """Inject `kind` into a share `rate` of requests whose 'METHOD /path' matches `pattern`.

    `limit` caps how many times it fires (None = unlimited); `retry_after_s` is what a throttle asks for.
    """

    kind: FaultKind
    rate: float = 1.0
    pattern: str = ".*"
    retry_after_s: float = 1.0
    limit: int | None = None
    fired: int = 0

    def matches(self, line: str) -> bool:
        """Does this fault apply to the request line 'METHOD /path'?"""
        return re.search(self.pattern, line, re.IGNORECASE) is not None and (self.limit is None or self.fired < self.limit)


ErrorBody = Callable[[int, str, str], Any]
Dispatch = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128


class TwinServer:
    """Serves a dispatcher over HTTPS on 127.0.0.1, with the faults, latency and outage a test asks for.

    `error_body(status, code, message)` renders the service's error shape for injected faults.
    """

    def __init__(
        self,
        dispatch: Dispatch,
        *,
        error_body: ErrorBody,
        port: int = 0,
        ca: LocalCA | None = None,
        latency_s: float = 0.0,
        hang_s: float = 30.0,
        seed: int = 0,
        name: str = "twin",
    ) -> None:
        self.dispatch = dispatch
        self.error_body = error_body
        self.ca = ca or LocalCA.shared()
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.name = name
        self.faults: list[Fault] = []
        self.outage: Literal["hang", "reset"] | None = None
        self.requests: list[LoggedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at once: evidence of client-side parallelism
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._charge: tuple[Any, timedelta] | None = None
        self._arrivals = threading.local()  # when the request this handler thread serves arrived, in the clock's time
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._server.socket = self.ca.server_context().wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def charge(self, clock: Any, seconds: float, *, real_s: float = 0.05) -> None:
        """Every request takes `seconds` of the virtual `clock`: time moves on to its arrival plus `seconds` before
        it is answered (a benchmark's model of service latency; 0 turns it off). Each request is also held `real_s`
        of wall time, so requests a client sends at once are all in flight together and overlap in virtual time too,
        while requests sent one after another add up."""
        self._charge = (clock, timedelta(seconds=seconds)) if seconds > 0 else None
        if self._charge is not None:
            self.latency_s = max(self.latency_s, real_s)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> TwinServer:
        """Serve on a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}-https", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests hanging on an injected timeout are released."""
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TwinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- test controls

    def inject(
        self, kind: FaultKind, *, rate: float = 1.0, pattern: str = ".*", retry_after_s: float = 1.0, limit: int | None = None
    ) -> Fault:
        """Add a fault rule; rules are tried in the order added."""
        fault = Fault(kind, rate, pattern, retry_after_s, limit)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault rule and end any outage."""
        with self._lock:
            self.faults.clear()
            self.outage = None

    def log(self, method: str | None = None, pattern: str | None = None) -> list[LoggedRequest]:
        """A copy of the request log, optionally filtered by method and a path regex."""
        with self._lock:
            entries = list(self.requests)
        return [
            e
            for e in entries
            if (method is None or e.method == method) and (pattern is None or re.search(pattern, e.path, re.IGNORECASE))
        ]

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._lock:
            self.requests.clear()

    # ----------------------------------------------------------------- serving

    def _pick_fault(self, line: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(line) and self._rng.random() < fault.rate:
                    fault.fired += 1
                    return fault
        return None

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)
        if self._charge is not None:  # every request, answered or dropped, ends `cost` after it arrived; calls
            clock, cost = self._charge  # made at once overlap, calls made one after another add up
            clock.at_least(getattr(self._arrivals, "at", clock.now()) + cost)

    def _arrived(self) -> None:
        if self._charge is not None:
            self._arrivals.at = self._charge[0].now()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        twin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as ARM and Qumulo clients pool connections
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (delayed ACK)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", twin.name, format % args)

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                request = Request(self.command, unquote(parts.path), query, {k.lower(): v for k, v in self.headers.items()}, body)
                with twin._lock:
                    twin.in_flight += 1
                    twin.max_in_flight = max(twin.max_in_flight, twin.in_flight)
                twin._arrived()
                try:
                    self._serve(request, query)
                finally:
                    with twin._lock:
                        twin.in_flight -= 1

            def _serve(self, request: Request, query: dict[str, str]) -> None:
                if twin.latency_s:
                    time.sleep(twin.latency_s)
                if twin.outage is not None:
                    self._drop(request, twin.outage, "outage")
                    return
                fault = twin._pick_fault(f"{request.method} {request.path}")
                if fault is not None and fault.kind in ("reset", "timeout"):
                    self._drop(request, "reset" if fault.kind == "reset" else "hang", fault.kind)
                    return
                if fault is not None:
                    response = twin._fault_response(fault)
                else:
                    try:
                        response = twin.dispatch(request)
                    except Exception:  # a twin bug must surface as a 500 and in the log, not a dropped socket
                        log.exception("%s failed on %s %s", twin.name, request.method, request.path)
                        response = Response(500, twin.error_body(500, "InternalServerError", "the twin failed"))
                twin._record(LoggedRequest(request.method, request.path, query, response.status, fault.kind if fault else None))
                self._send(response)

            def _send(self, response: Response) -> None:
                body = response.body
                data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
                self.send_response(response.status)
                headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _drop(self, request: Request, how: str, why: str) -> None:
                twin._record(LoggedRequest(request.method, request.path, request.query, 0, why))
                if how == "hang":
                    twin._closed.wait(twin.hang_s)
                self.close_connection = True
                raw = self.connection
                try:  # RST rather than FIN: what a client sees when a path dies mid-request
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    raw.close()
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        return Handler

    def _fault_response(self, fault: Fault) -> Response:
        if fault.kind == "throttle":
            headers = {"Retry-After": str(max(1, math.ceil(fault.retry_after_s)))}
            if fault.retry_after_s < 1 or fault.retry_after_s != int(fault.retry_after_s):
                headers["retry-after-ms"] = str(int(fault.retry_after_s * 1000))
            return Response(429, self.error_body(429, "TooManyRequests", "The request is being throttled."), headers)
        if fault.kind == "proxy":  # a load balancer or gateway in front of the service answers, in HTML
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            return Response(502, page, {"Content-Type": "text/html"})
        return Response(500, self.error_body(500, "InternalServerError", "An injected server error."))


class Twin:
    """Lifecycle shared by the twins: each owns a `server` (TwinServer) and serves until closed."""

    server: TwinServer

    def start(self) -> Self:
        """Serve on 127.0.0.1."""
        self.server.start()
        return self

    def close(self) -> None:
        """Stop serving."""
        self.server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
