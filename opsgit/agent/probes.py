"""HTTP, TCP and script health checks, run by the dev agent as Consul's agent runs them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opsgit.agent.core import ApiCore


async def probe_forever(api: ApiCore, check_id: str, http: str | None, tcp: str | None, interval: float,
                        timeout: float) -> None:
    while (api.store.node_name, check_id) in api.store.checks:
        status, output = await (probe_http(http, timeout) if http else probe_tcp(str(tcp), timeout))
        with contextlib.suppress(Exception):
            api.update_check(check_id, status, output)
        await asyncio.sleep(interval)


MAX_OUTPUT = 4 * 1024  # Consul keeps the first 4 KB of a check's output


async def script_forever(api: ApiCore, check_id: str, args: list[str], interval: float, timeout: float) -> None:
    while (api.store.node_name, check_id) in api.store.checks:
        status, output = await run_script(args, timeout)
        with contextlib.suppress(Exception):
            api.update_check(check_id, status, output)
        await asyncio.sleep(interval)


async def run_script(args: list[str], timeout: float) -> tuple[str, str]:
    """Nagios's convention, as Consul reads it: exit 0 passing, 1 warning, anything else critical;
    stdout and stderr together are the output."""
    try:
        process = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as error:
        return "critical", f"Check failed to start: {error}"
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return "critical", f"Timed out ({timeout:g}s) running check"
    text = out[:MAX_OUTPUT].decode(errors="replace")
    code = process.returncode
    return ("passing" if code == 0 else "warning" if code == 1 else "critical"), text


async def probe_tcp(address: str, timeout: float) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), timeout)
    except (OSError, ValueError, TimeoutError) as error:
        return "critical", f"dial tcp {address}: {error or 'timeout'}"
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return "passing", f"TCP connect {address}: Success"


async def probe_http(url: str, timeout: float) -> tuple[str, str]:
    """Consul's rule: 2xx passing, 429 warning, anything else critical."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", port, ssl=parts.scheme == "https"), timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: Consul Health Check\r\n"
                     "Connection: close\r\n\r\n".encode())
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        code = int(status_line.split()[1])
        while (await asyncio.wait_for(reader.readline(), timeout)).strip():
            pass  # the headers
        body = await asyncio.wait_for(reader.read(MAX_OUTPUT), timeout)
        writer.close()
    except (OSError, ValueError, IndexError, TimeoutError) as error:
        return "critical", f"Get {url!r}: {error or 'timeout'}"
    reason = status_line.decode(errors="replace").split(None, 1)[1].strip()  # "503 Service Unavailable"
    text = f"HTTP GET {url}: {reason} Output: {body.decode(errors='replace')}"
    if 200 <= code < 300:
        return "passing", text
    return ("warning" if code == 429 else "critical"), text
