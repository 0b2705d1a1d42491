"""Start and stop Azurite (from npm, in node_modules) on free loopback ports, telemetry off.

`python -m local.azurite -- CMD...` runs CMD with AzureWebJobsStorage pointing at a fresh Azurite and
stops Azurite afterwards, whatever CMD's outcome.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from local.tls import LocalCA

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's published development-account key; it only ever protects a loopback emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ENV_NAME = "AzureWebJobsStorage"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connection_string(blob: int, queue: int, table: int, scheme: str = "http") -> str:
    """The storage connection string for an Azurite on these ports."""
    base = f"{scheme}://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob}/{ACCOUNT};QueueEndpoint={base}:{queue}/{ACCOUNT};"
        f"TableEndpoint={base}:{table}/{ACCOUNT};"
    )


class Azurite:
    """A running Azurite process with in-memory persistence (its data lives as long as the process).

    With `oauth` (a LocalCA), it serves HTTPS with that CA's certificate and also accepts Entra ID bearer tokens
    (Azurite's `--oauth basic`: issuer, audience and lifetime are checked), as Azure storage with shared keys off
    does; `endpoints` then gives the identity-based settings' service URIs.
    """

    def __init__(self, oauth: LocalCA | None = None) -> None:
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `npm ci` in {ROOT} (the scripts do this for you)")
        self._binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self.connection_string = ""
        self.endpoints: dict[str, str] = {}  # service ('blob', 'queue', 'table') -> URI
        self._tls: list[str] = []
        self._tls_folder: Path | None = None
        self._scheme = "http"
        if oauth is not None:
            folder = self._tls_folder = Path(tempfile.mkdtemp(prefix="tandem-azurite-tls-"))
            issued = oauth.issue_server_cert()
            issued.private_key_pem.write_to_path(str(folder / "key.pem"))
            issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
            self._tls = ["--oauth", "basic", "--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem")]
            self._scheme = "https"

    def start(self, attempts: int = 5) -> Azurite:
        """Start on free ports (retrying if another process takes a port first) and wait until it listens."""
        last_error = ""
        for _ in range(attempts):
            ports = [_free_port() for _ in range(3)]
            errors = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                [
                    str(self._binary),
                    "--silent",
                    "--inMemoryPersistence",
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(ports[0]),
                    "--queueHost",
                    "127.0.0.1",
                    "--queuePort",
                    str(ports[1]),
                    "--tableHost",
                    "127.0.0.1",
                    "--tablePort",
                    str(ports[2]),
                    *self._tls,
                ],
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
            if self._wait(ports):
                errors.close()
                self.connection_string = connection_string(*ports, scheme=self._scheme)
                self.endpoints = {
                    service: f"{self._scheme}://127.0.0.1:{port}/{ACCOUNT}"
                    for service, port in zip(("blob", "queue", "table"), ports, strict=True)
                }
                return self
            self.stop()
            errors.seek(0)
            last_error = errors.read().decode(errors="replace").strip()
            errors.close()
        raise RuntimeError(f"Azurite did not start on loopback after {attempts} attempts: {last_error}")

    def _wait(self, ports: list[int], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if all(_listening(p) for p in ports):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop Azurite and remove its working folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tls_folder is not None:
            shutil.rmtree(self._tls_folder, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str]) -> int:
    """Run a command with a private Azurite; its exit code is ours."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m local.azurite -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with Azurite() as azurite:
        env = dict(os.environ, **{ENV_NAME: azurite.connection_string})
        return subprocess.call(argv, env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
