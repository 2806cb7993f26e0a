"""py-consul, a maintained third-party client, against the dev agent as a real process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import consul as pyconsul
import pytest

from tests.agent_process import AgentProcess


@pytest.fixture
def c(agent: AgentProcess) -> pyconsul.Consul:
    host, port = agent.address.split(":")
    return pyconsul.Consul(host=host, port=int(port))


@pytest.fixture
def prefix() -> Iterator[str]:
    yield f"conformance/{uuid.uuid4().hex[:8]}"


def test_kv_put_get_and_404_with_index(c: pyconsul.Consul, prefix: str) -> None:
    assert c.kv.put(f"{prefix}/a", "one") is True
    index, data = c.kv.get(f"{prefix}/a")
    assert data["Value"] == b"one" and data["Key"] == f"{prefix}/a"
    assert int(index) == data["ModifyIndex"] >= 1
    missing_index, missing = c.kv.get(f"{prefix}/missing")
    assert missing is None and int(missing_index) >= 1


def test_kv_recurse_keys_separator_flags_and_delete(c: pyconsul.Consul, prefix: str) -> None:
    for key in ("x/1", "x/2", "y/deep/3", "z"):
        c.kv.put(f"{prefix}/{key}", key, flags=42)
    _, tree = c.kv.get(prefix, recurse=True)
    assert [e["Key"] for e in tree] == [f"{prefix}/x/1", f"{prefix}/x/2", f"{prefix}/y/deep/3", f"{prefix}/z"]
    assert {e["Flags"] for e in tree} == {42}
    _, keys = c.kv.get(f"{prefix}/", keys=True, separator="/")
    assert keys == [f"{prefix}/x/", f"{prefix}/y/", f"{prefix}/z"]
    assert c.kv.delete(f"{prefix}/x", recurse=True) is True
    _, rest = c.kv.get(prefix, recurse=True)
    assert [e["Key"] for e in rest] == [f"{prefix}/y/deep/3", f"{prefix}/z"]


def test_kv_cas(c: pyconsul.Consul, prefix: str) -> None:
    assert c.kv.put(f"{prefix}/k", "v1", cas=0) is True
    assert c.kv.put(f"{prefix}/k", "v2", cas=0) is False
    _, data = c.kv.get(f"{prefix}/k")
    assert c.kv.put(f"{prefix}/k", "v3", cas=data["ModifyIndex"] + 100) is False
    assert c.kv.put(f"{prefix}/k", "v3", cas=data["ModifyIndex"]) is True
    assert c.kv.get(f"{prefix}/k")[1]["Value"] == b"v3"


def test_blocking_read_wakes_on_write(c: pyconsul.Consul, prefix: str) -> None:
    c.kv.put(f"{prefix}/watched", "before")
    index, _ = c.kv.get(f"{prefix}/watched")
    timer = threading.Timer(0.3, lambda: c.kv.put(f"{prefix}/watched", "after"))
    timer.start()
    started = time.monotonic()
    new_index, data = c.kv.get(f"{prefix}/watched", index=index, wait="10s")
    elapsed = time.monotonic() - started
    assert data["Value"] == b"after"
    assert int(new_index) > int(index)
    assert 0.2 < elapsed < 5


def test_blocking_read_times_out_at_wait(c: pyconsul.Consul, prefix: str) -> None:
    c.kv.put(f"{prefix}/quiet", "same")
    index, _ = c.kv.get(f"{prefix}/quiet")
    started = time.monotonic()
    again, _ = c.kv.get(f"{prefix}/quiet", index=index, wait="1s")
    assert again == index
    assert 0.9 < time.monotonic() - started < 3


def test_sessions_lifecycle(c: pyconsul.Consul) -> None:
    session = c.session.create(name="conformance", ttl=10, behavior="delete", lock_delay=2)
    _, info = c.session.info(session)
    assert info["Name"] == "conformance" and info["Behavior"] == "delete" and info["TTL"] == "10s"
    assert info["LockDelay"] == 2_000_000_000
    _, sessions = c.session.list()
    assert session in {s["ID"] for s in sessions}
    renewed = c.session.renew(session)
    assert renewed["ID"] == session
    assert c.session.destroy(session) is True
    assert c.session.info(session)[1] is None


def test_a_session_ends_with_a_check_it_is_tied_to(c: pyconsul.Consul, prefix: str) -> None:
    """As Consul's state store: a check of the session's going critical (here through the catalog)
    or being deregistered invalidates the session, releasing its locks."""
    node = c.agent.self()["Config"]["NodeName"]
    for check_id, end in (("lock-guard-a", "critical"), ("lock-guard-b", "deregistered")):
        c.agent.check.register(check_id, pyconsul.Check.ttl("60s"), check_id=check_id)
        c.agent.check.ttl_pass(check_id)
        session = c.session.create(checks=["serfHealth", check_id], lock_delay=0)
        assert c.session.info(session)[1]["NodeChecks"] == ["serfHealth", check_id]
        assert c.kv.put(f"{prefix}/{check_id}", "held", acquire=session) is True
        if end == "critical":
            c.catalog.register(node, "127.0.0.1", check={"CheckID": check_id, "Name": check_id, "Status": "critical"})
        else:
            c.agent.check.deregister(check_id)
        assert c.session.info(session)[1] is None, end
        assert "Session" not in c.kv.get(f"{prefix}/{check_id}")[1]
        c.agent.check.deregister(check_id)


def test_acquire_and_release(c: pyconsul.Consul, prefix: str) -> None:
    first = c.session.create(ttl=10, lock_delay=0)
    second = c.session.create(ttl=10, lock_delay=0)
    key = f"{prefix}/lock"
    assert c.kv.put(key, "holder-1", acquire=first) is True
    _, data = c.kv.get(key)
    assert data["Session"] == first and data["LockIndex"] == 1
    assert c.kv.put(key, "holder-2", acquire=second) is False
    assert c.kv.put(key, "still-1", acquire=first) is True
    assert c.kv.get(key)[1]["LockIndex"] == 1
    assert c.kv.put(key, "x", release=second) is False
    assert c.kv.put(key, "released", release=first) is True
    _, data = c.kv.get(key)
    assert "Session" not in data and data["Value"] == b"released"
    assert c.kv.put(key, "holder-2", acquire=second) is True
    assert c.kv.get(key)[1]["LockIndex"] == 2
    c.session.destroy(first)
    c.session.destroy(second)


def test_catalog_health_and_agent(c: pyconsul.Consul, prefix: str) -> None:
    node = f"node-{prefix.rsplit('/', 1)[1]}"
    assert c.catalog.register(node, "10.1.2.3", service={"Service": "binstore", "Port": 8080, "Tags": ["v1"]},
                              check={"Name": "alive", "Status": "passing", "ServiceID": "binstore"}) is True
    _, services = c.catalog.services()
    assert "v1" in services["binstore"]
    _, instances = c.catalog.service("binstore")
    mine = [i for i in instances if i["Node"] == node]
    assert mine[0]["ServicePort"] == 8080 and mine[0]["Address"] == "10.1.2.3"
    _, healthy = c.health.service("binstore", passing=True)
    assert node in {entry["Node"]["Node"] for entry in healthy}
    _, nodes = c.catalog.nodes()
    assert node in {n["Node"] for n in nodes}
    _, detail = c.catalog.node(node)
    assert "binstore" in detail["Services"]
    assert c.catalog.deregister(node) is True
    _, after = c.catalog.service("binstore")
    assert node not in {i["Node"] for i in after}
    me = c.agent.self()["Config"]["NodeName"]
    assert me == "opsgit-dev"


def test_node_meta_filters_the_catalog_and_health_reads(agent: AgentProcess, c: pyconsul.Consul, prefix: str) -> None:
    import requests

    suffix = prefix.rsplit("/", 1)[1]
    service = f"meta-{suffix}"
    for rack in ("r1", "r2"):
        body = {"Node": f"{rack}-{suffix}", "Address": "10.9.0.1", "NodeMeta": {"rack": rack, "os": "linux"},
                "Service": {"Service": service, "Port": 80},
                "Check": {"Name": "up", "Status": "critical", "ServiceID": service}}
        assert requests.put(f"{agent.url}/v1/catalog/register", json=body, timeout=5).json() is True
    try:
        r1 = {"rack": "r1", "os": "linux"}
        _, nodes = c.catalog.nodes(node_meta=r1)
        assert [n["Node"] for n in nodes] == [f"r1-{suffix}"]
        assert service in c.catalog.services(node_meta={"rack": "r2"})[1]
        assert service not in c.catalog.services(node_meta={"rack": "r3"})[1]
        assert [i["Node"] for i in c.catalog.service(service, node_meta={"rack": "r2"})[1]] == [f"r2-{suffix}"]
        assert [e["Node"]["Node"] for e in c.health.service(service, node_meta=r1)[1]] == [f"r1-{suffix}"]
        assert {ch["Node"] for ch in c.health.checks(service, node_meta={"rack": "r2"})[1]} == {f"r2-{suffix}"}
        critical = {ch["Node"] for ch in c.health.state("critical", node_meta={"os": "linux"})[1]}
        assert critical == {f"r1-{suffix}", f"r2-{suffix}"}
        assert c.catalog.nodes(node_meta={"os": "windows"})[1] == []
    finally:
        for rack in ("r1", "r2"):
            c.catalog.deregister(f"{rack}-{suffix}")


def test_agent_service_with_ttl_check(c: pyconsul.Consul) -> None:
    assert c.agent.service.register("web", service_id="web-1", port=80, check=pyconsul.Check.ttl("30s"))
    assert "web-1" in c.agent.services()
    _, before = c.health.service("web", passing=True)
    assert not [e for e in before if e["Service"]["ID"] == "web-1"]
    c.agent.check.ttl_pass("service:web-1")
    _, after = c.health.service("web", passing=True)
    assert [e for e in after if e["Service"]["ID"] == "web-1"]
    c.agent.service.deregister("web-1")
    assert "web-1" not in c.agent.services()


def test_status(c: pyconsul.Consul) -> None:
    assert c.status.leader() == "127.0.0.1:8300"
    assert c.status.peers() == ["127.0.0.1:8300"]


def test_txn_commit_and_rollback(c: pyconsul.Consul, prefix: str) -> None:
    import base64

    value = base64.b64encode(b"txn").decode()
    result = c.txn.put([{"KV": {"Verb": "set", "Key": f"{prefix}/t1", "Value": value}},
                        {"KV": {"Verb": "get", "Key": f"{prefix}/t1"}}])
    assert result["Errors"] is None
    assert base64.b64decode(result["Results"][1]["KV"]["Value"]) == b"txn"
    with pytest.raises(pyconsul.ConsulException):
        c.txn.put([{"KV": {"Verb": "set", "Key": f"{prefix}/t2", "Value": value}},
                   {"KV": {"Verb": "check-not-exists", "Key": f"{prefix}/t1"}}])
    assert c.kv.get(f"{prefix}/t2")[1] is None  # rolled back


def test_another_datacenter_has_no_path_and_self_names_the_leader(agent: AgentProcess, c: pyconsul.Consul) -> None:
    """Consul's answers (issue 19): `?dc=` of a datacenter the agent cannot reach is 500 "No path
    to datacenter"; `agent/self` says where the leader is."""
    import requests

    client = c
    with pytest.raises(pyconsul.ConsulException, match="No path to datacenter"):
        client.kv.get("anything", dc="dc9")
    answer = requests.get(f"{agent.url}/v1/catalog/services", params={"dc": "dc9"}, timeout=10)
    assert answer.status_code == 500 and answer.text == "No path to datacenter"
    assert client.kv.get("anything", dc="dc1")[1] is None  # its own datacenter by name is fine
    stats = client.agent.self()["Stats"]["consul"]
    assert stats["leader"] == "true" and stats["leader_addr"].endswith(":8300")


def test_the_consul_service_and_the_members(c: pyconsul.Consul) -> None:
    """As on a Consul server: the catalog lists the `consul` service on the server's node (port
    8300, healthy with the node), the agent's own services do not, and `agent/members` gives the
    LAN member (and with `wan` the WAN one, named node.dc)."""
    node = c.agent.self()["Config"]["NodeName"]
    assert "consul" in c.catalog.services()[1]
    entries = c.health.service("consul", passing=True)[1]
    assert [(e["Node"]["Node"], e["Service"]["Port"]) for e in entries] == [(node, 8300)]
    assert "consul" not in c.agent.services()
    (lan,) = c.agent.members()
    assert (lan["Name"], lan["Port"], lan["Status"], lan["Tags"]["role"], lan["Tags"]["dc"]) == (
        node, 8301, 1, "consul", "dc1")
    (wan,) = c.agent.members(wan=True)
    assert (wan["Name"], wan["Port"]) == (f"{node}.dc1", 8302)
