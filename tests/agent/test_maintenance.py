"""Node and service maintenance mode through py-consul: a critical `_node_maintenance` /
`_service_maintenance:<id>` check with the reason as its notes, the instance gone from health
answers and from DNS (asked with dnspython) until maintenance is disabled, and Consul's errors."""

from __future__ import annotations

from collections.abc import Iterator

import consul as py_consul
import dns.message
import dns.query
import dns.rcode
import pytest
import requests

from tests.agent_process import AgentProcess, start_agent


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    started = start_agent()
    yield started
    started.stop()


def client(agent: AgentProcess) -> py_consul.Consul:
    host, port = agent.address.split(":")
    return py_consul.Consul(host=host, port=int(port))


def dns_rcode(agent: AgentProcess, name: str) -> int:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=agent.dns_port, timeout=5).rcode()


def healthy(consul: py_consul.Consul, service: str) -> list[str]:
    return [entry["Service"]["ID"] for entry in consul.health.service(service, passing=True)[1]]


def test_service_maintenance_takes_one_instance_out_and_back(agent: AgentProcess) -> None:
    consul = client(agent)
    consul.agent.service.register("redis", service_id="redis-1", port=6379)
    consul.agent.service.register("webapp", service_id="webapp-1", port=8080)
    assert healthy(consul, "redis") == ["redis-1"] and dns_rcode(agent, "redis.service.consul") == dns.rcode.NOERROR
    assert consul.agent.service.maintenance("redis-1", True, reason="upgrading to 7.2") is True
    check = consul.agent.checks()["_service_maintenance:redis-1"]
    assert (check["Name"], check["Status"], check["Notes"], check["ServiceID"], check["Type"]) == (
        "Service Maintenance Mode", "critical", "upgrading to 7.2", "redis-1", "maintenance")
    assert healthy(consul, "redis") == [] and healthy(consul, "webapp") == ["webapp-1"]
    assert dns_rcode(agent, "redis.service.consul") == dns.rcode.NXDOMAIN
    consul.agent.service.maintenance("redis-1", False)
    assert "_service_maintenance:redis-1" not in consul.agent.checks()
    assert healthy(consul, "redis") == ["redis-1"] and dns_rcode(agent, "redis.service.consul") == dns.rcode.NOERROR


def test_node_maintenance_takes_every_service_out(agent: AgentProcess) -> None:
    consul = client(agent)
    consul.agent.service.register("redis", service_id="redis-1", port=6379)
    consul.agent.service.register("webapp", service_id="webapp-1", port=8080)
    consul.agent.maintenance(True)
    check = consul.agent.checks()["_node_maintenance"]
    assert check["Status"] == "critical" and check["Notes"] == (
        "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.")
    assert healthy(consul, "redis") == [] and healthy(consul, "webapp") == []
    assert [c["CheckID"] for c in consul.health.state("critical")[1]] == ["_node_maintenance"]
    consul.agent.maintenance(False)
    assert healthy(consul, "redis") == ["redis-1"] and healthy(consul, "webapp") == ["webapp-1"]


def test_maintenance_errors_are_consuls(agent: AgentProcess) -> None:
    base = f"{agent.url}/v1/agent"
    missing = requests.put(f"{base}/maintenance", timeout=5)
    assert (missing.status_code, missing.text) == (400, "Missing value for enable")
    invalid = requests.put(f"{base}/maintenance", params={"enable": "yes"}, timeout=5)
    assert (invalid.status_code, invalid.text) == (400, 'Invalid value for enable: "yes"')
    unknown = requests.put(f"{base}/service/maintenance/nope", params={"enable": "true"}, timeout=5)
    assert (unknown.status_code, unknown.text) == (404, 'No service registered with ID "nope"')
