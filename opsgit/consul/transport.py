"""The transport seam of the Consul client: requests go out as plain values, responses come back
as plain values, and a test can answer them with a function (`MockTransport`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from opsgit.errors import ConsulUnavailable

# Timeouts by default: a connect that hangs must not hang opsgit. Blocking queries add their wait.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    read_timeout: float = DEFAULT_READ_TIMEOUT

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" if v else k for k, v in self.params if k != "token")
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def index(self) -> int:
        raw = self.header("X-Consul-Index")
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Transport(Protocol):
    """Sends one request and returns the response; raises ConsulUnavailable when there is none."""

    def handle(self, request: Request) -> Response: ...

    def close(self) -> None: ...


class RequestsTransport:
    """HTTP(S) through a pooled `requests.Session` (keep-alive: a watch loop reuses its connection)."""

    def __init__(self, base_url: str, *, verify: bool | str = True, cert: tuple[str, str] | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        import requests  # imported here: `opsgit --help` must not pay for it

        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.session = requests.Session()
        self.session.verify = verify
        # On loopback no proxy applies, and looking them up in the environment costs a third of
        # each call; a watch or a lock loop makes many.
        host = (urlsplit(self.base_url).hostname or "").lower()
        if host in ("127.0.0.1", "localhost", "::1"):
            self.session.trust_env = False
        if cert:
            self.session.cert = cert
        self._errors = (requests.ConnectionError, requests.Timeout)

    def handle(self, request: Request) -> Response:
        try:
            answer = self.session.request(
                request.method, self.base_url + request.path, params=list(request.params), data=request.body,
                headers=dict(request.headers), timeout=(self.connect_timeout, request.read_timeout),
                allow_redirects=False)
        except self._errors as error:
            raise ConsulUnavailable(f"cannot reach Consul at {self.base_url}: {_reason(error)}",
                                    request=request,
                                    hint="start it with `opsgit agent --dev`, or set CONSUL_HTTP_ADDR") from None
        return Response(status=answer.status_code, body=answer.content, headers=dict(answer.headers))

    def close(self) -> None:
        self.session.close()


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if marker in text:
            return marker.lower()
    return type(error).__name__


class MockTransport:
    """Answers every request with `handler(request)`; for unit tests."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    def handle(self, request: Request) -> Response:
        self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        pass
