"""User events (`/v1/event/fire`, `/v1/event/list`) through py-consul against the agent process:
payloads, the receivers' filters, blocking on the list's folded index, Consul's errors, and
events forgotten on restart as Consul forgets them."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import consul as pyconsul
import pytest
import requests

from opsgit.agent.endpoints.events import event_index
from tests.agent_process import AgentProcess, start_agent


@pytest.fixture
def fresh() -> AgentProcess:
    return start_agent()


def client(agent: AgentProcess) -> pyconsul.Consul:
    host, port = agent.address.split(":")
    return pyconsul.Consul(host=host, port=int(port))


def test_fire_and_list_with_payloads_names_and_order(fresh: AgentProcess) -> None:
    c = client(fresh)
    try:
        fired = c.event.fire("deploy", "v1.2.3")
        assert fired["Name"] == "deploy" and fired["Version"] == 1 and uuid.UUID(fired["ID"])
        c.event.fire("restart")
        c.event.fire("deploy", "v1.2.4")
        index, events = c.event.list()
        assert [(e["Name"], e["Payload"]) for e in events] == [("deploy", b"v1.2.3"), ("restart", None),
                                                               ("deploy", b"v1.2.4")]
        assert [e["LTime"] for e in events] == sorted(e["LTime"] for e in events)
        assert int(index) == event_index(events[-1]["ID"])
        _, deploys = c.event.list(name="deploy")
        assert [e["Payload"] for e in deploys] == [b"v1.2.3", b"v1.2.4"]
        index, none = c.event.list(name="nothing-fired")
        assert none == [] and index == "1"  # Consul's index when nothing matches: never 0
    finally:
        fresh.stop()


def test_the_index_is_consuls_folded_uuid() -> None:
    # the value in Consul's own test of uuidToUint64
    assert event_index("cb9a81ad-fff6-52ac-92a7-5f70687805ec") == 6430540886266763072


def test_a_blocking_list_returns_when_an_event_arrives(fresh: AgentProcess) -> None:
    c = client(fresh)
    try:
        c.event.fire("first")
        index, _ = c.event.list()
        threading.Timer(0.3, lambda: c.event.fire("second", "x")).start()
        started = time.monotonic()
        new_index, events = c.event.list(index=index, wait="10s")
        assert time.monotonic() - started < 5
        assert events[-1]["Name"] == "second" and new_index != index
        started = time.monotonic()
        same, _ = c.event.list(index=new_index, wait="1s")
        assert same == new_index and time.monotonic() - started >= 0.9  # nothing new: waited it out
    finally:
        fresh.stop()


def test_filters_decide_whether_this_agent_receives_an_event(fresh: AgentProcess) -> None:
    c = client(fresh)
    try:
        c.agent.service.register("web", service_id="web-1", tags=["blue"], port=80)
        c.event.fire("to-web", service="^web", tag="blue")
        c.event.fire("to-green", service="^web", tag="green")
        c.event.fire("to-other-node", node="^elsewhere$")
        c.event.fire("to-this-node", node="^opsgit-")
        _, events = c.event.list()
        assert [e["Name"] for e in events] == ["to-web", "to-this-node"]
        assert events[0]["ServiceFilter"] == "^web" and events[0]["TagFilter"] == "blue"
    finally:
        fresh.stop()


def test_consuls_errors(fresh: AgentProcess) -> None:
    try:
        url = f"{fresh.url}/v1/event/fire/"
        missing = requests.put(url, timeout=5)
        assert (missing.status_code, missing.text) == (400, "Missing name")
        tag_alone = requests.put(url + "x", params={"tag": "blue"}, timeout=5)
        assert (tag_alone.status_code, tag_alone.text) == (500, "Cannot provide tag filter without service filter")
        bad_regex = requests.put(url + "x", params={"node": "("}, timeout=5)
        assert bad_regex.status_code == 500 and bad_regex.text.startswith("Invalid node filter")
        too_big = requests.put(url + "x", data=b"p" * 600, timeout=5)
        assert (too_big.status_code, too_big.text) == (
            500, "user event exceeds configured limit of 512 bytes before encoding")
        assert requests.get(f"{fresh.url}/v1/event/list", timeout=5).json() == []
    finally:
        fresh.stop()


def test_events_are_kept_256_deep_and_forgotten_on_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    agent = start_agent("--data-dir", str(data))
    try:
        for number in range(260):
            requests.put(f"{agent.url}/v1/event/fire/n", data=str(number), timeout=5).raise_for_status()
        _, events = client(agent).event.list()
        assert len(events) == 256 and events[0]["Payload"] == b"4" and events[-1]["Payload"] == b"259"
        client(agent).kv.put("kept", "yes")
    finally:
        agent.stop()
    again = start_agent("--data-dir", str(data))
    try:
        _, events = client(again).event.list()
        assert events == [] and client(again).kv.get("kept")[1]["Value"] == b"yes"
    finally:
        again.stop()
