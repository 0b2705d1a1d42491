"""A throwaway certificate authority for loopback HTTPS servers; clients trust it through a CA bundle."""

from __future__ import annotations

import functools
import ssl
import tempfile
from pathlib import Path

import certifi
import trustme


class LocalCA:
    """A CA that issues server certificates for 127.0.0.1 and localhost."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._ca = trustme.CA(organization_name="Tandem local CA")
        self._dir = Path(directory or tempfile.mkdtemp(prefix="tandem-ca-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self.ca_path = str(self._dir / "tandem-local-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        # The public roots plus this CA: what REQUESTS_CA_BUNDLE points at, so Azure SDK clients trust the
        # local servers without turning verification off, and still trust everything else.
        self.bundle_path = str(self._dir / "tandem-local-bundle.pem")
        public = Path(certifi.where()).read_bytes()
        Path(self.bundle_path).write_bytes(public + b"\n" + self._ca.cert_pem.bytes())

    @classmethod
    @functools.cache
    def shared(cls) -> LocalCA:
        """The process's CA: the runtime and every twin share it, so one bundle trusts them all."""
        return cls()

    def issue_server_cert(self) -> trustme.LeafCert:
        """A fresh server certificate for the loopback names (for servers that read PEM files, like Azurite)."""
        return self._ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context with a fresh certificate for the loopback names."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.issue_server_cert().configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (for tests that speak raw HTTPS)."""
        return ssl.create_default_context(cafile=self.ca_path)
