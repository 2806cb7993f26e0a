"""go-plugin's AutoMTLS, for providers run with `auto_mtls: true`.

Both ends make a throwaway self-signed certificate: opsgit's goes to the plugin in
`PLUGIN_CLIENT_CERT`, the plugin's comes back in the handshake line, and each side trusts only
the other's. go-plugin's certificates are ECDSA P-521, which grpcio's BoringSSL cannot handshake
with (the reference, section 1.4), so opsgit ends the TLS session itself, with Python's `ssl`
(OpenSSL), and gives grpcio a plaintext socket of its own in an owner-only directory: every byte
between that socket and the plugin travels over the verified TLS connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 16


@dataclass(frozen=True)
class ClientCertificate:
    pem: str        # what PLUGIN_CLIENT_CERT carries
    key_pem: str


def client_certificate() -> ClientCertificate:
    """A self-signed CA certificate for `localhost` with the client and server key usages that
    go-plugin checks (P-256: any curve Go accepts will do on this side)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "opsgit")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_agreement=True,
                                     key_cert_sign=True, content_commitment=False, data_encipherment=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ClientCertificate(
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode())


def server_certificate_pem(field: str) -> str:
    """The handshake's sixth field (DER, base64 without padding) as PEM."""
    der = base64.b64decode(field + "=" * (-len(field) % 4))
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


class TlsRelay:
    """A plaintext unix socket for grpcio; each connection to it is carried to the plugin over
    mutually authenticated TLS (HTTP/2 negotiated by ALPN, as gRPC requires)."""

    def __init__(self, target: str, server_pem: str, client: ClientCertificate) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="opsgit-plugin-")  # 0700: only this user
        folder = Path(self._directory.name)
        (folder / "client.pem").write_text(client.pem)
        (folder / "client.key").write_text(client.key_pem)
        self.context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=server_pem)
        self.context.load_cert_chain(folder / "client.pem", folder / "client.key")
        (folder / "client.key").unlink()
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["h2"])
        self.target = target
        self.last_error = ""  # why the last connection to the plugin failed, for the error message
        self.path = str(folder / "relay.sock")
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="opsgit-plugin-tls", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._server is None:
            raise OSError(f"cannot listen on {self.path}")

    @property
    def address(self) -> str:
        return f"unix:{self.path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        with contextlib.suppress(OSError):
            self._server = self._loop.run_until_complete(asyncio.start_unix_server(self._carry, path=self.path))
        self._ready.set()
        if self._server is not None:
            self._loop.run_forever()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.target.startswith("unix:"):
            return await asyncio.open_unix_connection(self.target[len("unix:"):], ssl=self.context,
                                                      server_hostname="localhost")
        host, _, port = self.target.rpartition(":")
        return await asyncio.open_connection(host, int(port), ssl=self.context, server_hostname="localhost")

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await self._open()
        except (OSError, ssl.SSLError) as error:
            self.last_error = str(error)
            writer.close()
            return
        await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))

    def close(self) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        if self._loop.is_running():
            self._loop.call_soon_threadsafe(stop)
            self._thread.join(timeout=2)
        self._directory.cleanup()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
            sink.close()
