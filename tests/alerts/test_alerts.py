"""`opsgit alerts`: state changes of Consul's checks become alerts after the change threshold,
recoveries too, each kept in SQLite and sent to Apprise URLs and plain webhooks. The watcher's
rules with a fake clock first; then the real command against a real dev agent, with a local
receiver for Apprise's json:// posts and a plain webhook, through an agent restart."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import consul as py_consul
import pytest

from opsgit.alerts.store import AlertStore
from opsgit.alerts.watcher import AlertWatcher
from opsgit.consul.health import Health
from tests.agent_process import data_dir_agent
from tests.conftest import OPSGIT, start_opsgit, write_tree


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def health(serf: str = "passing", web: tuple[str, ...] = ("passing", "passing")) -> Health:
    checks: list[dict[str, Any]] = [{"Node": "node-10-0-4-34", "CheckID": "serfHealth", "Name": "Serf Health Status",
                                     "Status": serf}]
    for i, status in enumerate(web):
        checks.append({"Node": f"web-{i}", "CheckID": f"service:slug-ingress-{i}", "Name": "http",
                       "Status": status, "ServiceID": f"slug-ingress-{i}", "ServiceName": "slug-ingress"})
    return Health.from_json("dc1", checks)


def messages(store: AlertStore) -> list[str]:
    return [a.message for a in reversed(store.recent())]


def test_critical_then_recovered_after_the_threshold(tmp_path: Path) -> None:
    clock, store = Clock(), AlertStore(tmp_path / "alerts.sqlite")
    watcher = AlertWatcher(store, [], threshold=30, clock=clock)
    watcher.observe(health())
    watcher.observe(health(serf="critical", web=("critical", "passing")))
    clock.now += 29
    watcher.evaluate()
    assert messages(store) == []  # not yet: the threshold is 30 s
    clock.now += 2
    watcher.evaluate()
    assert messages(store) == ["Critical node node-10-0-4-34 in dc1: serfHealth (critical)",
                               "Critical service slug-ingress (50% unhealthy)"]
    watcher.evaluate()
    assert len(messages(store)) == 2  # once
    watcher.observe(health())
    clock.now += 31
    watcher.evaluate()
    assert messages(store)[2:] == ["Node recovered node-10-0-4-34 in dc1: serfHealth (passing)",
                                   "Service recovered slug-ingress in dc1"]


def test_a_flapping_check_does_not_alert(tmp_path: Path) -> None:
    clock, store = Clock(), AlertStore(tmp_path / "alerts.sqlite")
    watcher = AlertWatcher(store, [], threshold=30, clock=clock)
    watcher.observe(health())
    for _ in range(10):
        watcher.observe(health(serf="critical"))
        clock.now += 10
        watcher.evaluate()
        watcher.observe(health())
        clock.now += 10
        watcher.evaluate()
    assert messages(store) == []


def test_a_restart_neither_repeats_nor_loses_an_alert(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "alerts.sqlite"
    first = AlertWatcher(AlertStore(path), [], threshold=5, clock=clock)
    first.observe(health(serf="critical"))
    clock.now += 6
    first.evaluate()
    assert len(messages(first.store)) == 1
    # opsgit restarts; meanwhile the service went critical
    second = AlertWatcher(AlertStore(path), [], threshold=5, clock=clock)
    second.observe(health(serf="critical", web=("critical", "critical")))
    clock.now += 6
    second.evaluate()
    assert messages(second.store) == ["Critical node node-10-0-4-34 in dc1: serfHealth (critical)",
                                      "Critical service slug-ingress (100% unhealthy)"]


class Receiver:
    """A local HTTP endpoint that keeps every JSON body posted to it (Apprise's json:// and the
    plain webhook both post here)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        received = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self, path: str) -> list[str]:
        return [str(body.get("message") or body.get("text") or "") for p, body in self.posts if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.server.shutdown()
    started.server.server_close()


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_opsgit_alerts_sends_to_apprise_and_a_webhook_through_an_agent_restart(
        tmp_path: Path, receiver: Receiver) -> None:
    """A TTL check goes critical, flaps five times inside the threshold, stays critical, then
    recovers: exactly two notifications at each receiver, though the agent restarted between."""
    root = write_tree(tmp_path / "ops", {"environments/dev/env.yaml": "modules: {}\n"})
    agent = data_dir_agent(tmp_path / "consul-data")
    port = int(agent.address.split(":")[1])
    client = py_consul.Consul(host="127.0.0.1", port=port)

    def register() -> None:
        client.agent.service.register("slug-ingress", service_id="slug-ingress-1", port=8080,
                                      check=py_consul.Check.ttl("1h"))

    register()
    client.agent.check.ttl_pass("service:slug-ingress-1")
    log = (tmp_path / "alerts.log").open("w")
    alerts = start_opsgit("alerts", "--notify", f"json://127.0.0.1:{receiver.port}/apprise",
                          "--notify", f"http://127.0.0.1:{receiver.port}/hook", "--change-threshold", "3s",
                          cwd=root, extra={"CONSUL_HTTP_ADDR": agent.address}, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        for _ in range(5):  # flapping, each state far shorter than the threshold
            client.agent.check.ttl_fail("service:slug-ingress-1", "connection refused")
            time.sleep(0.3)
            client.agent.check.ttl_pass("service:slug-ingress-1", "ok")
            time.sleep(0.3)
        client.agent.check.ttl_fail("service:slug-ingress-1", "connection refused")
        wait_for(lambda: receiver.texts("/hook") and receiver.texts("/apprise"))
        assert receiver.texts("/hook") == ["Critical service slug-ingress (100% unhealthy)"]
        assert receiver.texts("/apprise") == ["Critical service slug-ingress (100% unhealthy)"]
        # Consul restarts (its index starts again from scratch): nothing repeated, nothing lost
        agent.stop()
        agent = data_dir_agent(tmp_path / "consul-data", port=port)
        register()
        client.agent.check.ttl_fail("service:slug-ingress-1", "connection refused")
        time.sleep(5)
        assert receiver.texts("/hook") == ["Critical service slug-ingress (100% unhealthy)"]
        client.agent.check.ttl_pass("service:slug-ingress-1", "ok")
        wait_for(lambda: len(receiver.texts("/hook")) == 2 and len(receiver.texts("/apprise")) == 2)
        time.sleep(4)  # past another threshold: still exactly two
    finally:
        alerts.terminate()
        alerts.wait(10)
        log.close()
        agent.stop()
    for path in ("/hook", "/apprise"):
        assert receiver.texts(path) == ["Critical service slug-ingress (100% unhealthy)",
                                        "Service recovered slug-ingress in dc1"], path
    listed = subprocess.run([*OPSGIT, "alerts", "--list", "--json"], cwd=root, capture_output=True, text=True,
                            check=True)
    kept = json.loads(listed.stdout)
    assert [a["message"] for a in reversed(kept)] == ["Critical service slug-ingress (100% unhealthy)",
                                                      "Service recovered slug-ingress in dc1"]
    assert all("json://: sent" in a["delivery"] and "webhook 127.0.0.1: sent" in a["delivery"] for a in kept)
