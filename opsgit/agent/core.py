"""What every endpoint family of the dev agent shares: the store, durability before answering,
waking blocking queries, and the session and check timers."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgit.agent.filter import Filter, parse_filter
from opsgit.agent.http import HttpRequest
from opsgit.agent.persist import Database
from opsgit.agent.shapes import (
    DEFAULT_WAIT,
    MAX_WAIT,
    duration,
    wake,
)
from opsgit.agent.store import CONSUL_SERVICE, Change, Store, StoreError
from opsgit.consul.durations import parse_duration

# Consul's own words (agent/agent.go) when a script check reaches an agent that runs none
SCRIPTS_DISABLED = ("Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or "
                    "'enable_local_script_checks' to true")


SESSION_TTL_MULTIPLIER = 2  # structs.SessionTTLMultiplier
EVENTS_KEPT = 256  # Consul's agent keeps this many user events (agent.go: eventBuf)


@dataclass(frozen=True)
class UserEvent:
    id: str
    name: str
    payload: bytes
    node_filter: str
    service_filter: str
    tag_filter: str
    ltime: int

    def to_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Name": self.name,
                "Payload": base64.b64encode(self.payload).decode() if self.payload else None,
                "NodeFilter": self.node_filter, "ServiceFilter": self.service_filter, "TagFilter": self.tag_filter,
                "Version": 1, "LTime": self.ltime}


class ApiCore:
    def __init__(self, store: Store, database: Database | None = None, token: str | None = None, *,
                 enable_script_checks: bool = False) -> None:
        self.store = store
        self.enable_script_checks = enable_script_checks
        self.config_dirs: list[Path] = []
        self.from_config: tuple[set[str], set[str]] = (set(), set())  # service and check IDs the files define
        self.database = database
        self.token = token
        self.key_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.prefix_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.table_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.session_timers: dict[str, asyncio.TimerHandle] = {}
        self.check_timers: dict[str, asyncio.TimerHandle] = {}
        self.check_ttls: dict[str, float] = {}
        self.probes: dict[str, asyncio.Task[None]] = {}
        self.events: deque[UserEvent] = deque(maxlen=EVENTS_KEPT)  # never persisted, as in Consul

    def commit(self, change: Change | None) -> None:
        """Make a change durable, then wake what watches it. Called before answering."""
        if change is None:
            return
        if self.database is not None:
            try:
                self.database.save(self.store, change)
            except Exception as error:
                # Not durable, so it did not happen: the memory goes back to what the disk holds
                # (readers never see the write, and the index never moves backwards after a restart).
                self.store.restore(self.database.loaded(self.store))
                raise StoreError(500, f"failed to persist the write, nothing was changed: {error}") from None
        for key in change.keys:
            wake(self.key_waiters.pop(key, None))
            for prefix in [p for p in self.prefix_waiters if key.startswith(p)]:
                wake(self.prefix_waiters.pop(prefix))
        for table in change.tables:
            wake(self.table_waiters.pop(table, None))
        if change.invalidates:
            for session_id in self.store.sessions_invalidated_by(change):
                self.commit(self.store.session_destroy(session_id))

    async def blocking(self, request: HttpRequest, compute: Callable[[], tuple[int, Any]],
                       watch: tuple[str, str],
                       changed: Callable[[int, int], bool] = lambda found, index: found > index) -> tuple[int, Any]:
        """Answer now, or once the resource's index passes `?index` (`changed` says when an index
        is news: the event list's is not monotonic), or at `?wait` (+ jitter)."""
        index, wait = self._blocking_params(request)
        found, payload = compute()
        if index <= 0 or changed(found, index):
            return max(1, found), payload
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait + random.uniform(0, wait / 16)
        kind, name = watch
        waiters = {"key": self.key_waiters, "prefix": self.prefix_waiters, "table": self.table_waiters}[kind]
        while not changed(found, index):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            future: asyncio.Future[None] = loop.create_future()
            waiters.setdefault(name, set()).add(future)
            try:
                await asyncio.wait([future], timeout=remaining)
            finally:
                pending = waiters.get(name)
                if pending is not None:
                    pending.discard(future)
                    if not pending:
                        waiters.pop(name, None)
            found, payload = compute()
        return max(1, found), payload

    def _blocking_params(self, request: HttpRequest) -> tuple[int, float]:
        raw_index = request.arg("index")
        index = 0
        if raw_index:
            if not raw_index.isdigit():
                raise StoreError(400, "Invalid index")
            index = int(raw_index)
        wait = DEFAULT_WAIT
        raw_wait = request.arg("wait")
        if raw_wait:
            # Go's time.ParseDuration: a unit is required (`10` is refused, only `0` stands alone)
            if raw_wait.lstrip("+-").replace(".", "", 1).isdigit() and float(raw_wait) != 0:
                raise StoreError(400, "Invalid wait time")
            try:
                wait = parse_duration(raw_wait)
            except ValueError:
                raise StoreError(400, "Invalid wait time") from None
            if wait <= 0:  # Consul's servers wait their default for a zero or negative wait
                wait = DEFAULT_WAIT
        return index, min(wait, MAX_WAIT)

    @staticmethod
    def row_filter(request: HttpRequest) -> Filter:
        """`?filter=`, parsed before anything is computed (400 if it does not parse); without one,
        a filter that keeps every row."""
        return parse_filter(request.arg("filter") or "")

    def node_meta(self, request: HttpRequest) -> Callable[[str], bool]:
        """`?node-meta=key:value` (repeatable): whether a node, by name, has every pair in its Meta,
        as Consul's SatisfiesMetaFilters (the key must be there; no colon means an empty value)."""
        wanted = [value.partition(":")[::2] for key, value in request.query if key == "node-meta"]
        if not wanted:
            return lambda name: True

        def satisfies(name: str) -> bool:
            meta = (self.store.nodes.get(name) or {}).get("Meta") or {}
            return all(key in meta and meta[key] == value for key, value in wanted)
        return satisfies

    @staticmethod
    def _consistency(request: HttpRequest) -> None:
        if request.has("stale") and request.has("consistent"):
            raise StoreError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")

    def _arm_session(self, session_id: str) -> None:
        timer = self.session_timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        session = self.store.sessions.get(session_id)
        if session is not None and session.ttl:
            loop = asyncio.get_running_loop()
            # Consul's servers arm TTL * SessionTTLMultiplier (2) at create and at every renew: a
            # session is never invalidated before its TTL and at the latest at twice it.
            self.session_timers[session_id] = loop.call_later(session.ttl * SESSION_TTL_MULTIPLIER,
                                                              self._expire_session, session_id)

    def _expire_session(self, session_id: str) -> None:
        self.session_timers.pop(session_id, None)
        self.commit(self.store.session_destroy(session_id))

    def arm_loaded_sessions(self) -> None:
        for session_id in list(self.store.sessions):
            self._arm_session(session_id)

    def update_check(self, check_id: str, status: str, output: str, *, ttl_update: bool = False) -> None:
        self.commit(self.store.set_check_status(self.store.node_name, check_id, status, output))
        if ttl_update and check_id in self.check_ttls:
            self._arm_ttl(check_id, self.check_ttls[check_id])

    def refuse_unrunnable(self, spec: dict[str, Any]) -> None:
        """Before anything is registered: the checks this agent will not run, refused as Consul
        refuses them."""
        if (spec.get("args") or spec.get("script")) and not self.enable_script_checks:
            raise StoreError(400, SCRIPTS_DISABLED)
        for kind, name in (("dockercontainerid", "Docker"), ("grpc", "gRPC"), ("h2ping", "H2 ping"),
                           ("osservice", "OS service")):
            if spec.get(kind):
                raise StoreError(400, f"{name} checks are not supported by the opsgit dev agent; use an HTTP, TCP, "
                                      "TTL or script check")

    def _arm_check(self, check_id: str, spec: dict[str, Any]) -> None:
        self._disarm_check(check_id)
        if spec.get("ttl"):
            self._arm_ttl(check_id, duration(spec["ttl"], "TTL"))
        elif spec.get("args") or spec.get("script"):
            from opsgit.agent.probes import script_forever

            args = [str(a) for a in spec["args"]] if spec.get("args") else ["/bin/sh", "-c", str(spec["script"])]
            interval = duration(spec.get("interval") or "10s", "Interval")
            timeout = duration(spec.get("timeout") or "30s", "Timeout")
            self.probes[check_id] = asyncio.get_running_loop().create_task(
                script_forever(self, check_id, args, interval, timeout))
        elif spec.get("http") or spec.get("tcp"):
            from opsgit.agent.probes import probe_forever

            interval = duration(spec.get("interval") or "10s", "Interval")
            timeout = duration(spec.get("timeout") or "10s", "Timeout")
            self.probes[check_id] = asyncio.get_running_loop().create_task(
                probe_forever(self, check_id, spec.get("http"), spec.get("tcp"), interval, timeout))

    def _arm_ttl(self, check_id: str, ttl: float) -> None:
        """A TTL check goes critical unless it is updated within its TTL."""
        timer = self.check_timers.pop(check_id, None)
        if timer is not None:
            timer.cancel()
        self.check_ttls[check_id] = ttl
        self.check_timers[check_id] = asyncio.get_running_loop().call_later(ttl, self._ttl_expired, check_id)

    def _ttl_expired(self, check_id: str) -> None:
        self.check_timers.pop(check_id, None)
        if (self.store.node_name, check_id) in self.store.checks:
            self.update_check(check_id, "critical", "TTL expired")

    def _disarm_check(self, check_id: str) -> None:
        self.check_ttls.pop(check_id, None)
        timer = self.check_timers.pop(check_id, None)
        if timer is not None:
            timer.cancel()
        probe = self.probes.pop(check_id, None)
        if probe is not None:
            probe.cancel()

    def reap(self) -> None:
        self.store.reap_tombstones(time.monotonic())

    def _own_services(self) -> dict[str, dict[str, Any]]:
        """The services this agent registered: as in Consul, the `consul` service is the
        catalog's (the leader registers it), not the agent's."""
        return {s["ID"]: s for (n, sid), s in sorted(self.store.services.items())
                if n == self.store.node_name and sid != CONSUL_SERVICE}
