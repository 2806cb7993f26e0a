"""Watching every check and turning state changes into alerts.

One blocking query on `/v1/health/state/any` keeps the latest view of every check (the watch
resets its index when Consul's goes backwards, as after a restart). Each node check and each
service (all its instances together) is a subject: when a subject's status differs from the one
last alerted, and has stayed so for the change threshold, an alert is recorded and sent —
"Critical node node-10-0-4-34 in dc1: serfHealth (critical)", "Node recovered ...",
"Critical service slug-ingress (50% unhealthy)", "Service recovered ...". A check that flaps
faster than the threshold never alerts. What each subject was last seen and alerted as lives in
SQLite, so a restart of opsgit neither repeats an alert nor misses one that came due meanwhile.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opsgit import output
from opsgit.alerts.notify import Notifier, notifiers
from opsgit.alerts.store import AlertStore, StoredAlert, Subject, as_json
from opsgit.consul.client import Consul
from opsgit.consul.health import Health
from opsgit.consul.watch import watch
from opsgit.errors import ConsulError
from opsgit.secrets import redact

SEND_ATTEMPTS = 3


def subjects_of(health: Health) -> dict[str, tuple[str, str, str, str]]:
    """key -> (kind, name, status, message) for every node check and every service."""
    found: dict[str, tuple[str, str, str, str]] = {}
    dc = health.datacenter
    for check in health.checks:
        if check.service_id:
            continue
        status = "warning" if check.status == "maintenance" else check.status
        # named by its check ID (serfHealth), as consul-alerts names it: names repeat, IDs do not
        if status == "passing":
            message = f"Node recovered {check.node} in {dc}: {check.check_id} (passing)"
        else:
            message = f"{status.capitalize()} node {check.node} in {dc}: {check.check_id} ({status})"
        found[f"node/{check.node}/{check.check_id}"] = ("node", check.node, status, message)
    for service in health.services:
        status = "warning" if service.status == "maintenance" else service.status
        if status == "passing":
            message = f"Service recovered {service.name} in {dc}"
        else:
            share = service.unhealthy_percent if status == "critical" else round(
                100 * sum(1 for i in service.instances if i.status != "passing") / len(service.instances))
            message = f"{status.capitalize()} service {service.name} ({share}% unhealthy)"
        found[f"service/{service.name}"] = ("service", service.name, status, message)
    return found


class AlertWatcher:
    def __init__(self, store: AlertStore, destinations: Sequence[Notifier], threshold: float, *,
                 clock: Callable[[], float] = time.time, on_alert: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.destinations = list(destinations)
        self.threshold = threshold
        self.clock = clock
        self.on_alert = on_alert
        self._seen: dict[str, tuple[str, str, str, str]] | None = None  # the latest view's subjects
        self._lock = threading.Lock()

    def observe(self, health: Health) -> None:
        """A new view of every check: each subject's status and since when, kept in SQLite."""
        now = self.clock()
        seen = subjects_of(health)
        with self._lock:
            self._seen = seen
            known = self.store.subjects()
            for key, (_kind, _name, status, _message) in seen.items():
                before = known.get(key)
                if before is None:
                    # new: a healthy start alerts nothing; an unhealthy one alerts after the threshold
                    self.store.save_subject(Subject(key, status, now, "passing"))
                elif before.status != status:
                    self.store.save_subject(Subject(key, status, now, before.alerted))
            gone = [key for key in known if key not in seen]
            if gone:
                self.store.forget(gone)  # deregistered: nothing left to recover from
        self.evaluate()

    def evaluate(self) -> list[int]:
        """Record and send the alerts that came due: a status unlike the last alerted one, held
        for the threshold."""
        now = self.clock()
        due: list[int] = []
        with self._lock:
            seen = self._seen
            if seen is None:
                return due
            for key, subject in self.store.subjects().items():
                if key not in seen or subject.status == subject.alerted or now - subject.since < self.threshold:
                    continue
                kind, name, status, message = seen[key]
                if status != subject.status:
                    continue  # changed since observed: wait for the next observation
                at = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="seconds")
                due.append(self.store.add_alert(Subject(key, status, subject.since, status), at=at, kind=kind,
                                                name=name, state=status, message=redact(message)))
        self.deliver()
        return due

    def deliver(self) -> None:
        for alert in self.store.undelivered():
            self.store.set_delivery(alert.id, self._send(alert))
            if self.on_alert is not None:
                self.on_alert(alert.message)

    def _send(self, alert: StoredAlert) -> str:
        if not self.destinations:
            return "kept (no notifiers)"
        results = []
        title = f"opsgit: {alert.message}"
        for destination in self.destinations:
            for attempt in range(SEND_ATTEMPTS):
                try:
                    destination.send(title, alert.message, as_json(alert))
                    results.append(f"{destination.name}: sent")
                    break
                except Exception as error:
                    if attempt == SEND_ATTEMPTS - 1:
                        results.append(f"{destination.name}: failed ({redact(str(error))[:120]})")
                    else:
                        time.sleep(0.5 * (attempt + 1))
        return "; ".join(results)


def follow(consul: Consul, watcher: AlertWatcher, stop: threading.Event, *, wait: float = 30.0) -> None:
    """Feed the watcher every change of every check until `stop`; evaluate the threshold on a
    timer of its own so an alert comes due without waiting for the next change."""
    try:
        datacenter = str(consul.agent.self().get("Config", {}).get("Datacenter") or "dc1")
    except ConsulError:
        datacenter = "dc1"

    def tick() -> None:
        step = max(0.1, min(1.0, watcher.threshold / 4))
        while not stop.wait(step):
            try:
                watcher.evaluate()
            except Exception as error:  # a locked database this second: next tick
                output.warn(f"alerts: {type(error).__name__}: {error}")

    threading.Thread(target=tick, name="opsgit-alerts-threshold", daemon=True).start()

    def failed(error: ConsulError, delay: float) -> None:
        output.warn(f"alerts: Consul at {consul.address} is unreachable ({error.message}); retrying in {delay:.1f}s")

    fetch: Any = lambda index, w: consul.health.state("any", index=index or None, wait=w)  # noqa: E731
    for _index, checks in watch(fetch, wait=wait, stop=stop, on_error=failed):
        watcher.observe(Health.from_json(datacenter, checks or []))


def start_alerts(root: Path, urls: Sequence[str], threshold: float, stop: threading.Event) -> AlertWatcher:
    """The watcher in a thread of its own (`opsgit server --alerts`)."""
    store = AlertStore(root / ".opsgit" / "alerts.sqlite")
    watcher = AlertWatcher(store, notifiers(resolve_urls(root, urls)), threshold,
                           on_alert=lambda message: output.log(f"alert: {message}"))
    threading.Thread(target=follow, args=(Consul(), watcher, stop), name="opsgit-alerts", daemon=True).start()
    return watcher


def resolve_urls(root: Path, urls: Sequence[str]) -> list[str]:
    """--notify, else OPSGIT_ALERT_URLS (space-separated: URLs hold tokens, which a CI secret
    keeps better than a file), else `[tool.opsgit] alerts_notify` in pyproject.toml."""
    import os

    from opsgit.config import load_settings

    if urls:
        return list(urls)
    if os.environ.get("OPSGIT_ALERT_URLS"):
        return os.environ["OPSGIT_ALERT_URLS"].split()
    return list(load_settings(root).alerts_notify)
