"""Run the dev agent: bind, serve until SIGINT or SIGTERM, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from opsgit.agent.api import ConsulApi
from opsgit.agent.dns import Resolver, serve_dns
from opsgit.agent.http import HttpServer
from opsgit.agent.persist import Database
from opsgit.agent.store import Store
from opsgit.errors import UserError

MAX_REQUEST_BODY = 4 * 1024 * 1024
REAP_INTERVAL = 60.0


def parse_address(address: str, flag: str = "--http-addr") -> tuple[str, int]:
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UserError(f"invalid {flag} {address!r}", hint="use HOST:PORT, such as 127.0.0.1:8500")
    return host.strip("[]") or "127.0.0.1", int(port)


def run_agent(http_addr: str = "127.0.0.1:8500", data_dir: Path | None = None, token: str | None = None,
              node: str = "opsgit-dev", dns_addr: str = "127.0.0.1:8600", domain: str = "consul",
              dns_only_passing: bool = False, enable_script_checks: bool = False,
              config_dirs: list[Path] | None = None) -> int:
    host, port = parse_address(http_addr)
    dns = parse_address(dns_addr, "--dns-addr") if dns_addr not in ("", "off") else None
    database = None
    if data_dir is not None:
        try:
            database = Database(data_dir)
        except OSError as error:
            raise UserError(f"cannot use --data-dir {data_dir}: {error.strerror or error}") from None
    store = Store(node=node, address=host if host not in ("0.0.0.0", "::") else "127.0.0.1")
    if database is not None:
        database.load(store)
    try:
        resolver = Resolver(store, domain=domain, only_passing=dns_only_passing) if dns is not None else None
        return asyncio.run(_serve(store, database, token, host, port, resolver, dns, enable_script_checks,
                                  config_dirs or []))
    finally:
        if database is not None:
            database.close()


async def _serve(store: Store, database: Database | None, token: str | None, host: str, port: int,
                 resolver: Resolver | None = None, dns: tuple[str, int] | None = None,
                 enable_script_checks: bool = False, config_dirs: list[Path] | None = None) -> int:
    api = ConsulApi(store, database, token, enable_script_checks=enable_script_checks)
    if config_dirs:
        from opsgit.agent.config_dir import load, reload

        api.config_dirs = list(config_dirs)
        load(api)  # a bad file stops the start, naming the file
    api.arm_loaded_sessions()
    http = HttpServer(api.handle, max_body=MAX_REQUEST_BODY)
    try:
        server = await asyncio.start_server(http.serve, host, port, limit=64 * 1024, backlog=2048)
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}",
                        hint="is another agent running? pick another --http-addr") from None
    bound = server.sockets[0].getsockname()
    dns_servers: tuple[Any, ...] = ()
    dns_where = ""
    if resolver is not None and dns is not None:
        try:
            udp, tcp = await serve_dns(resolver, *dns)
        except OSError as error:
            server.close()
            raise UserError(f"cannot serve DNS on {dns[0]}:{dns[1]}: {error.strerror or error}",
                            hint="pick another --dns-addr (port 0 picks a free one), or --dns-addr off") from None
        dns_servers = (udp, tcp)
        dns_where = f"; DNS on {dns[0]}:{udp.get_extra_info('sockname')[1]} (UDP and TCP, domain {resolver.domain}.)"
    where = f"data in {database.path}" if database else "in memory"
    print(f"==> opsgit dev agent listening on http://{bound[0]}:{bound[1]} ({where}){dns_where}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if config_dirs:
        loop.add_signal_handler(signal.SIGHUP, lambda: reload(api))
    reaper = loop.create_task(_reap(api))
    async with server:
        await stop.wait()
        server.close()
        for dns_server in dns_servers:
            dns_server.close()
        reaper.cancel()
        for task in list(http.connections):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
    print("==> opsgit dev agent stopped", file=sys.stderr, flush=True)
    return 0


async def _reap(api: ConsulApi) -> None:
    while True:
        await asyncio.sleep(REAP_INTERVAL)
        api.reap()
