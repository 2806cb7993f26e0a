"""The agent's HTTP/1.1 server: h11 parses requests, asyncio streams carry the bytes.

h11 (a well-kept, sans-I/O HTTP/1.1 implementation) does what a hand-written parser gets wrong:
the request line and header syntax, Content-Length digits only and two different lengths refused,
chunked bodies, `Expect: 100-continue`, a Host header on HTTP/1.1. The responses are the agent's
own fixed-format bytes (status line, its headers, Content-Length), and it keeps HTTP/1.1's
keep-alive rules itself (RFC 9112 9.3). Around it the server keeps the agent's bounds: every
connection is a coroutine (an idle blocking query costs a socket and a few kilobytes, not a
thread), the request line and headers are bounded, bodies too, slow clients are timed out, and a
handler that raises answers 500 while the agent keeps serving. Of a repeated header the first
counts, as Go's Header.Get reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

log = logging.getLogger("opsgit.agent")

MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024  # the request line and headers together, as Go's MaxHeaderBytes
READ_SIZE = 64 * 1024
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
            await self._serve(_Connection(reader, writer))
        except (ConnectionError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, connection: _Connection) -> None:
        while True:
            try:
                request = await connection.next_request(self.max_body)
            except BadRequest as error:
                await connection.reply(HttpResponse(error.status, str(error).encode(), content_type="text/plain"),
                                       close=True)
                return
            if request is None:
                return
            try:
                response = await self.handler(request)
            except Exception:  # one broken request must not take the agent down
                log.exception("handler failed for %s %s", request.method, request.path)
                response = HttpResponse(500, b"internal error", content_type="text/plain")
            if not await connection.reply(response):
                return


class _Connection:
    """One client connection. h11 parses each request — a fresh h11 state machine per request,
    handed what the last one left unread, since the agent writes its responses itself: they are
    its own fixed-format bytes, and h11's send path would cost a third of a blocking query's wake
    across 1,000 watchers (docs/benchmarks.md)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unread = b""
        self.ended = False  # the client closed its side
        self.keep_alive = True
        self.says_keep_alive = False
        self.head = False  # the request being answered is a HEAD: headers only

    async def _event(self, parser: h11.Connection, timeout: float) -> object:
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as error:
                raise BadRequest(error.error_status_hint, str(error)) from None
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
            parser.receive_data(data)  # b"" is the end of the stream: h11 says ConnectionClosed

    async def next_request(self, max_body: int) -> HttpRequest | None:
        """The next whole request, or None when the client has gone."""
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        if self.unread or self.ended:
            parser.receive_data(self.unread)
            if self.ended:
                parser.receive_data(b"")
        event = await self._event(parser, IDLE_TIMEOUT)
        if not isinstance(event, h11.Request):
            return None
        self.head = event.method == b"HEAD"
        async with asyncio.timeout(REQUEST_TIMEOUT):
            request = await self._rest_of(parser, event, max_body)
        self.unread, self.ended = parser.trailing_data
        return request

    async def _rest_of(self, parser: h11.Connection, start: h11.Request, max_body: int) -> HttpRequest:
        if not start.http_version.startswith(b"1."):
            raise BadRequest(505, "HTTP version not supported")
        if len(start.headers) > MAX_HEADERS:
            raise BadRequest(431, "request headers too large")
        headers: dict[str, str] = {}
        tokens: set[str] = set()
        for name, value in start.headers:
            text = value.decode("latin-1")
            headers.setdefault(name.decode("latin-1"), text)  # the first counts
            if name == b"connection":
                tokens.update(token.strip().lower() for token in text.split(","))
        # RFC 9112 9.3: HTTP/1.1 keeps the connection unless told to close; 1.0 only when asked to
        self.keep_alive = "close" not in tokens and (start.http_version != b"1.0" or "keep-alive" in tokens)
        self.says_keep_alive = self.keep_alive and start.http_version == b"1.0"  # a 1.0 client is told so
        length = headers.get("content-length")
        if length is not None and int(length) > max_body:
            raise BadRequest(413, f"Request body({length} bytes) too large, max size: {max_body} bytes")
        if parser.they_are_waiting_for_100_continue:
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._event(parser, REQUEST_TIMEOUT)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_body:
                    raise BadRequest(413, f"Request body too large, max size: {max_body} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # the client went away mid-body
                raise ConnectionError("connection closed during the request")
        try:
            target = start.target.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequest(400, "malformed request target") from None
        parts = urlsplit(target)
        return HttpRequest(method=start.method.decode("ascii").upper(), path=unquote(parts.path),
                           query=parse_qsl(parts.query, keep_blank_values=True), headers=headers,
                           body=b"".join(chunks))

    async def reply(self, response: HttpResponse, *, close: bool = False) -> bool:
        """Send the response; True when the connection can take the next request."""
        close = close or not self.keep_alive
        reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        if close:
            lines.append("Connection: close")
        elif self.says_keep_alive:
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.writer.write(head if self.head else head + response.body)
        await self.writer.drain()
        return not close
