"""A small HTTP/1.1 server on asyncio streams: keep-alive, bounded requests, timeouts.

Every connection is a coroutine, so an idle blocking query costs a socket and a few kilobytes,
not a thread. Requests are bounded (line, headers, body) and slow clients are timed out, so a
misbehaving client can neither exhaust memory nor hold the agent up; a handler that raises
answers 500 and the agent keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger("opsgit.agent")

MAX_LINE = 16 * 1024
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
IDLE_TIMEOUT = 120.0
REQUEST_TIMEOUT = 15.0


@dataclass
class HttpRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes = b""

    def arg(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.query)


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    def __init__(self, handler: Handler, *, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self.connections: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\r\n"), IDLE_TIMEOUT)
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                await self._reply(writer, HttpResponse(414, b"request line too long", content_type="text/plain"),
                                  close=True)
                return
            try:
                request = await asyncio.wait_for(self._read_request(line, reader, writer), REQUEST_TIMEOUT)
            except BadRequest as error:
                await self._reply(writer, HttpResponse(error.status, str(error).encode(),
                                                       content_type="text/plain"), close=True)
                return
            try:
                response = await self.handler(request)
            except Exception:  # one broken request must not take the agent down
                log.exception("handler failed for %s %s", request.method, request.path)
                response = HttpResponse(500, b"internal error", content_type="text/plain")
            close = request.headers.get("connection", "").lower() == "close"
            await self._reply(writer, response, close=close, head=request.method == "HEAD")
            if close:
                return

    async def _read_request(self, line: bytes, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> HttpRequest:
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            raise BadRequest(400, "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(505, "HTTP version not supported")
        headers: dict[str, str] = {}
        total = 0
        while True:
            try:
                raw = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise BadRequest(431, "request header too large") from None
            total += len(raw)
            if raw == b"\r\n":
                break
            if total > MAX_HEADER_BYTES or len(headers) >= MAX_HEADERS:
                raise BadRequest(431, "request headers too large")
            name, separator, value = raw.decode("latin-1").partition(":")
            if not separator or not name.strip():
                raise BadRequest(400, "malformed header")
            key, value = name.strip().lower(), value.strip()
            if key in headers:
                if key == "content-length" and headers[key] != value:
                    raise BadRequest(400, "invalid Content-Length")  # two lengths: a smuggling attempt
                continue  # as Go's Header.Get: the first of repeated headers counts
            headers[key] = value
        body = await self._read_body(headers, reader, writer)
        parts = urlsplit(target)
        return HttpRequest(method=method.upper(), path=unquote(parts.path),
                           query=parse_qsl(parts.query, keep_blank_values=True), headers=headers, body=body)

    async def _read_body(self, headers: dict[str, str], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> bytes:
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                length = _size((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16,
                               "malformed chunk size")
                if length == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(chunks)
                size += length
                if size > self.max_body:
                    raise BadRequest(413, f"Request body too large, max size: {self.max_body} bytes")
                chunks.append(await reader.readexactly(length))
                await reader.readexactly(2)
        raw_length = headers.get("content-length")
        if raw_length is None:
            return b""
        length = _size(raw_length, 10, "invalid Content-Length")
        if length > self.max_body:
            raise BadRequest(413, f"Request body({length} bytes) too large, max size: {self.max_body} bytes")
        return await reader.readexactly(length)

    async def _reply(self, writer: asyncio.StreamWriter, response: HttpResponse, *, close: bool,
                     head: bool = False) -> None:
        reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else response.body))
        await writer.drain()


def _size(text: str | bytes, base: int, problem: str) -> int:
    """A byte count from the request (Content-Length, a chunk size): 400 unless a whole number >= 0."""
    digits = text.decode("latin-1") if isinstance(text, bytes) else text
    # only digits (hex digits for a chunk): int() would also take "+1_0" and " 10"
    allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
    if not digits or any(c not in allowed for c in digits):
        raise BadRequest(400, problem)
    return int(digits, base)
