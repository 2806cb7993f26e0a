"""Consul's health for the dashboard, kept current by blocking queries (every check through
`/v1/health/state/any`, the nodes through `/v1/catalog/nodes`, the services through
`/v1/catalog/services`, whose instances are read when it changes), each in a thread of its own:
a page reads the latest snapshot, and a live page hears of each change through `version`."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from opsgit.consul.client import Consul
from opsgit.consul.health import Health
from opsgit.consul.watch import watch
from opsgit.errors import ConsulError


class HealthWatch:
    def __init__(self, consul: Consul, *, wait: float = 30.0) -> None:
        self.consul = consul
        self.wait = wait
        self.version = 0
        self.error: str | None = "waiting for Consul's first answer"
        self.datacenter = "dc1"
        self._checks: list[dict[str, Any]] = []
        self._nodes: list[dict[str, Any]] = []
        self._instances: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        with contextlib.suppress(ConsulError):  # else named dc1; the page says Consul is unreachable
            self.datacenter = str(self.consul.agent.self().get("Config", {}).get("Datacenter") or "dc1")
        for name, fetch, setter in (
                ("checks", lambda i, w: self.consul.health.state("any", index=i or None, wait=w), self._set_checks),
                ("nodes", lambda i, w: self.consul.catalog.nodes(index=i or None, wait=w), self._set_nodes),
                ("services", lambda i, w: self.consul.catalog.services(index=i or None, wait=w),
                 self._set_services)):
            thread = threading.Thread(target=self._follow, args=(fetch, setter), name=f"opsgit-server-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def _follow(self, fetch: Any, setter: Any) -> None:
        def failed(error: ConsulError, _delay: float) -> None:
            self.error = f"Consul at {self.consul.address} is unreachable: {error.message}"
            self._bump()

        for _index, data in watch(fetch, wait=self.wait, stop=self._stop, on_error=failed):
            setter(data or [])
            self.error = None
            self._bump()

    def _set_checks(self, data: list[dict[str, Any]]) -> None:
        self._checks = list(data)

    def _set_nodes(self, data: list[dict[str, Any]]) -> None:
        self._nodes = list(data)

    def _set_services(self, names: dict[str, list[str]]) -> None:
        # the services' index moves whenever an instance is registered or goes: read each one's now
        instances: list[dict[str, Any]] = []
        for name in sorted(names or {}):
            instances.extend(self.consul.catalog.service(name)[1])
        self._instances = instances

    def _bump(self) -> None:
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def snapshot(self) -> Health:
        return Health.from_json(self.datacenter, self._checks, self._nodes, self._instances)

    def wait_for_change(self, seen: int, timeout: float) -> int:
        """Block until `version` passes `seen` (or `timeout`); the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen or self._stop.is_set(), timeout)
            return self.version
