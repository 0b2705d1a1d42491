"""The local HTTP front door: function routes with keys and App Service authentication, the Durable
extension's HTTP API, the managed-identity endpoint, and an HTTPS Event Grid topic. Loopback only."""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from azure.functions import meta
from azure.functions.http import HttpRequestConverter, HttpResponseConverter

from local.runtime.identity import same
from local.tls import LocalCA


class Served(Protocol):
    """What the front door asks of the runtime it serves (LocalHost): no import of the host, so no cycle."""

    auth_enabled: bool
    master_key: str
    system_key: str
    topic_key: str
    functions: dict[str, Any]
    identity: Any  # LocalIdentity
    durable: Any  # DurableEngine

    def invoke(self, name: str, **inputs: Any) -> Any: ...

    def durable_client_binding(self) -> dict[str, Any]: ...

    def publish(self, events: list[dict[str, Any]]) -> Any: ...


log = logging.getLogger("tandem.local.http")
_PRINCIPAL_HEADERS = ("x-ms-client-principal", "x-ms-client-principal-id", "x-ms-client-principal-name", "x-ms-client-principal-idp")
_KEYS = re.compile(r"((?:code|sig)=)[^&\s\"]+", re.IGNORECASE)
MAX_BODY = 100 * 1024 * 1024  # the Functions host's default maxRequestBodySize (104857600 bytes)
_STATUS_CODES = {"Completed": 200, "Running": 202, "Pending": 202, "Failed": 500, "Terminated": 200}


def _route_regex(template: str) -> re.Pattern[str]:
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{([^}]*)\})?", template.strip("/")):
        pattern += re.escape(literal)
        if not name:
            continue
        optional = name.endswith("?")
        name = name.rstrip("?")
        if name.startswith("*"):
            pattern += f"(?P<{name[1:]}>.*)"
            continue
        name, _, constraint = name.partition(":")
        body = r"\d+" if constraint == "int" else r"[^/]+"
        pattern += f"(?P<{name}>{body})" + ("?" if optional else "")
    return re.compile(f"^{pattern}/?$", re.IGNORECASE)


def _payload(body: bytes) -> str | None:
    """The JSON text of a start or raise-event body.

    The Python SDK posts `json.dumps(value)` as a JSON string (JSON inside JSON); other clients post the
    JSON value itself. Both arrive at the orchestrator as the same value.
    """
    if not body:
        return None
    decoded = json.loads(body)
    if isinstance(decoded, str):
        try:
            json.loads(decoded)
            return decoded
        except json.JSONDecodeError:
            pass
    return json.dumps(decoded)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False


class FrontDoor:
    """HTTP on 127.0.0.1 for the app and the extension, as `func start` serves them; HTTPS on 127.0.0.1 for the same
    app as a deployed site answers at its defaultHostName, and for the Event Grid topic."""

    def __init__(self, host: Served, *, host_port: int = 0, topic_port: int = 0) -> None:
        self.host = host
        self.routes: list[tuple[re.Pattern[str], str]] = []
        self.durable_unavailable = False  # a test control: the Durable extension's HTTP API answers 503
        self._http = _Server(("127.0.0.1", host_port), self._handler(self._handle_app))
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.ca = LocalCA.shared()
        self._https = _Server(("127.0.0.1", 0), self._handler(self._handle_app_https))
        self._https.socket = self.ca.server_context().wrap_socket(self._https.socket, server_side=True)
        self.https_host = f"127.0.0.1:{self._https.server_address[1]}"  # the site's defaultHostName
        self._topic = _Server(("127.0.0.1", topic_port), self._handler(self._handle_topic))
        self._topic.socket = self.ca.server_context().wrap_socket(self._topic.socket, server_side=True)
        self.topic_url = f"https://127.0.0.1:{self._topic.server_address[1]}/api/events"

    def start(self) -> None:
        """Index the HTTP routes and start serving."""
        for name, spec in self.host.functions.items():
            if spec.kind == "httpTrigger":
                self.routes.append((_route_regex(spec.trigger.get("route") or name), name))
        for server in (self._http, self._https, self._topic):
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        """Stop the servers."""
        for server in (self._http, self._https, self._topic):
            server.shutdown()
            server.server_close()

    def _handler(self, dispatch: Any) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # the request line's keys are redacted
                log.debug("%s %s", self.address_string(), _KEYS.sub(r"\1REDACTED", format % args))

            def _any(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:  # what the host's request limits refuse before any function runs
                    self.send_error(413 if length > MAX_BODY else 400)
                    return
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = dispatch(self.command, self.path, dict(self.headers.items()), body)
                except Exception:  # never a stack trace on the wire
                    log.exception("local front door failed on %s %s", self.command, urlsplit(self.path).path)
                    status, headers, payload = 500, {"Content-Type": "application/json"}, b'{"error":"internal"}'
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        return Handler

    # ----------------------------------------------------------------- the app and the extension

    def _handle_app_https(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        return self._handle_app(method, raw_path, headers, body, base=f"https://{self.https_host}")

    def _handle_app(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, base: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)  # segments are decoded once, after splitting: %2F stays inside its segment
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        lower = {k.lower(): v for k, v in headers.items()}
        if path.startswith("/durabletask/"):  # the worker's RPC endpoint: the host keeps it inside the sandbox,
            # here it shares loopback with everything else, so its path carries the system key
            key, _, rest = path.removeprefix("/durabletask/").partition("/")
            if not same(key, self.host.system_key):
                return 401, {}, b""
            return self._durable(method, rest, query, body)
        if path.startswith("/runtime/webhooks/durabletask/"):
            if not same(query.get("code", ""), self.host.system_key):
                return 401, {}, b""
            return self._durable(method, path.removeprefix("/runtime/webhooks/durabletask/"), query, body)
        if path == "/msi/token":
            return self._msi(lower, query)
        if path == "/.local/token":  # stands in for Entra ID's token endpoint for outside clients (master key)
            return self._user_token(lower, query)
        if path.startswith("/api/"):
            return self._function(
                method, path.removeprefix("/api/"), f"{base or self.base_url}{raw_path}", query, headers, lower, body
            )
        return 404, {}, b""

    def _function(
        self,
        method: str,
        route: str,
        url: str,
        query: dict[str, str],
        headers: dict[str, str],
        lower: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        for pattern, name in self.routes:
            match = pattern.match(route)
            if match is None:
                continue
            spec = self.host.functions[name]
            methods = [m.upper() for m in spec.trigger.get("methods") or []]
            if methods and method not in methods:
                continue
            level = str(spec.trigger.get("authLevel", "FUNCTION")).upper()
            key = lower.get("x-functions-key") or query.get("code", "")
            allowed = {
                "ANONYMOUS": None,
                "FUNCTION": {self.host.function_keys.get(name), self.host.master_key},
                "ADMIN": {self.host.master_key},
            }[level]
            if allowed is not None and not any(k and same(key, k) for k in allowed):
                return 401, {}, b""
            headers = (
                {k: v for k, v in headers.items() if k.lower() not in _PRINCIPAL_HEADERS} if self.host.auth_enabled else dict(headers)
            )
            if self.host.auth_enabled:
                bearer = lower.get("authorization", "")
                claims = self.host.identity.validate(bearer[7:], "api://tandem") if bearer.lower().startswith("bearer ") else None
                if claims is not None:  # what App Service authentication injects for a signed-in caller
                    headers["X-MS-CLIENT-PRINCIPAL"] = self.host.identity.client_principal(claims)
                    headers["X-MS-CLIENT-PRINCIPAL-ID"] = claims["oid"]
                    headers["X-MS-CLIENT-PRINCIPAL-NAME"] = claims["name"]
                    headers["X-MS-CLIENT-PRINCIPAL-IDP"] = "aad"
            request = HttpRequestConverter.decode(
                meta.Datum(
                    type="http",
                    value={
                        "method": meta.Datum(type="string", value=method),
                        "url": meta.Datum(type="string", value=url),
                        "headers": {k: meta.Datum(type="string", value=v) for k, v in headers.items()},
                        "query": {k: meta.Datum(type="string", value=v) for k, v in query.items()},
                        "params": {
                            k: meta.Datum(type="string", value=unquote(v)) for k, v in match.groupdict().items() if v is not None
                        },
                        "body": meta.Datum(type="bytes", value=body),
                    },
                ),
                trigger_metadata=None,
            )
            result = self.host.invoke(name, **{spec.trigger["name"]: request})
            datum = HttpResponseConverter.encode(result, expected_type=None)
            if datum.type == "http":
                value = datum.value
                out_headers = {k: v.value for k, v in value["headers"].items()}
                payload = value["body"].value
                return int(value["status_code"].value), out_headers, payload if isinstance(payload, bytes) else str(payload).encode()
            return 200, {"Content-Type": "text/plain"}, str(datum.value).encode()
        return 404, {}, b""

    def _user_token(self, lower: dict[str, str], query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        key = lower.get("x-functions-key") or query.get("code", "")
        if not same(key, self.host.master_key):
            return 401, {}, b""
        roles = [r for r in query.get("roles", "").split(",") if r]
        name = query.get("name", "operator@contoso.com")[:256]
        token = self.host.identity.user_token(name, roles)
        return 200, {"Content-Type": "application/json"}, json.dumps({"access_token": token, "token_type": "Bearer"}).encode()

    def _msi(self, lower: dict[str, str], query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        status, answer = self.host.identity.answer_msi(lower, query)
        return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _durable(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.durable_unavailable:  # an injected fault: the extension's HTTP API is down
            return 503, {"Content-Type": "text/plain"}, b"Service Unavailable"
        engine = self.host.durable
        parts = [unquote(p) for p in path.strip("/").split("/")]
        as_json = {"Content-Type": "application/json"}
        if parts[0] == "orchestrators" and method == "POST" and len(parts) in (2, 3):
            input_json = _payload(body)
            try:
                instance_id = engine.start_new(parts[1], parts[2] if len(parts) == 3 else None, input_json)
            except KeyError as exc:
                return 400, as_json, json.dumps({"ExceptionMessage": str(exc.args[0])}).encode()
            except ValueError as exc:
                return 400, as_json, json.dumps({"ExceptionMessage": str(exc)}).encode()
            links = self._links(instance_id)
            return 202, {**as_json, "Location": links["statusQueryGetUri"]}, json.dumps(links).encode()
        if parts[0] != "instances":
            return 404, as_json, b'{"error":"unknown durable API path"}'
        if len(parts) == 1 or parts[1] == "":
            if method == "GET":
                return 200, as_json, json.dumps(engine.list_statuses()).encode()
            return 405, as_json, b"{}"
        instance_id = parts[1]
        if len(parts) == 2 and method == "GET":
            status = engine.status(
                instance_id, show_history=query.get("showHistory") == "True", show_input=query.get("showInput", "True") != "False"
            )
            if status is None:
                return 404, as_json, b""
            return _STATUS_CODES[status["runtimeStatus"]], as_json, json.dumps(status).encode()
        if len(parts) == 2 and method == "DELETE":
            deleted = engine.purge(instance_id)
            return (200 if deleted else 404), as_json, json.dumps({"instancesDeleted": int(deleted)}).encode()
        operation = parts[2] if len(parts) > 2 else ""
        if operation == "raiseEvent" and method == "POST" and len(parts) == 4:
            outcome = engine.raise_event(instance_id, parts[3], _payload(body))
        elif operation == "terminate" and method == "POST":
            outcome = engine.terminate(instance_id, query.get("reason", ""))
        else:
            return 501, as_json, json.dumps({"error": f"{operation} is not supported locally"}).encode()
        return {"ok": 202, "missing": 404, "gone": 410}[outcome], as_json, b""

    def _links(self, instance_id: str) -> dict[str, str]:
        urls = self.host.durable_client_binding()["managementUrls"]
        return {k: (instance_id if k == "id" else v.replace("INSTANCEID", quote(instance_id, safe=""))) for k, v in urls.items()}

    # ----------------------------------------------------------------- the Event Grid topic

    def _handle_topic(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        as_json = {"Content-Type": "application/json"}
        lower = {k.lower(): v for k, v in headers.items()}
        if method != "POST" or urlsplit(raw_path).path != "/api/events":
            return 404, as_json, b'{"error":{"code":"NotFound","message":"POST /api/events"}}'
        key_ok = same(lower.get("aeg-sas-key", ""), self.host.topic_key)
        bearer = lower.get("authorization", "")
        token_ok = (
            bearer.lower().startswith("bearer ") and self.host.identity.validate(bearer[7:], "https://eventgrid.azure.net") is not None
        )
        if not (key_ok or token_ok):
            return 401, as_json, b'{"error":{"code":"Unauthorized","message":"missing or invalid key or token"}}'
        try:
            events = json.loads(body or b"null")
        except json.JSONDecodeError:
            return 400, as_json, b'{"error":{"code":"BadRequest","message":"body is not JSON"}}'
        events = events if isinstance(events, list) else [events]
        if not events or not all(isinstance(e, dict) and e.get("id") and (e.get("type") or e.get("eventType")) for e in events):
            return 400, as_json, b'{"error":{"code":"BadRequest","message":"each event needs id and type"}}'
        self.host.publish(events)
        return 200, as_json, b""
