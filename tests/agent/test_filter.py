"""`?filter=` (Consul's go-bexpr expressions) on the catalog, health and agent list endpoints,
asked through py-consul's `filter_expr` against the agent process, with Consul's statuses for an
expression that does not parse (400) and one that fails on the data (500)."""

from __future__ import annotations

from collections.abc import Iterator

import consul as py_consul
import pytest
import requests

from tests.agent_process import AgentProcess, start_agent


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    started = start_agent()
    consul = client(started)
    for node, address, env in (("web-east", "10.0.1.1", "prod"), ("web-west", "10.0.2.1", "prod"),
                               ("web-dev", "10.0.3.1", "dev")):
        # py-consul's node_meta is a read filter, so the node's meta goes in the body itself
        requests.put(f"{started.url}/v1/catalog/register", timeout=5, json={
            "Node": node, "Address": address, "NodeMeta": {"env": env},
            "Service": {"Service": "webapp", "ID": f"webapp-{node}", "Port": 8080,
                        "Tags": ["blue"] if node != "web-west" else ["green", "canary"],
                        "Meta": {"version": "2.1" if node == "web-east" else "2.0"}},
            "Check": {"CheckID": f"service:webapp-{node}", "Name": "http",
                      "Status": "critical" if node == "web-west" else "passing", "ServiceID": f"webapp-{node}"},
        }).raise_for_status()
    consul.agent.service.register("redis", service_id="redis-1", port=6379, tags=["primary"],
                                  meta={"engine": "7.2"})
    consul.agent.service.register("binstore", service_id="binstore-1", port=9000)
    yield started
    started.stop()


def client(agent: AgentProcess) -> py_consul.Consul:
    host, port = agent.address.split(":")
    return py_consul.Consul(host=host, port=int(port))


def test_catalog_filters(agent: AgentProcess) -> None:
    consul = client(agent)
    _, blue = consul.catalog.service("webapp", filter_expr='"blue" in ServiceTags')
    assert sorted(row["Node"] for row in blue) == ["web-dev", "web-east"]
    _, prod = consul.catalog.nodes(filter_expr="Meta.env == prod")
    assert sorted(row["Node"] for row in prod) == ["web-east", "web-west"]
    _, newest = consul.catalog.service("webapp", filter_expr='ServiceMeta["version"] matches "^2\\.1"')
    assert [row["Node"] for row in newest] == ["web-east"]
    _, services = consul.catalog.services(filter_expr="ServicePort == 8080 and NodeMeta.env != dev")
    assert services == {"webapp": ["blue", "canary", "green"]}
    _, node = consul.catalog.node("web-west", filter_expr="Tags contains canary")
    assert list(node["Services"]) == ["webapp-web-west"]


def test_health_filters(agent: AgentProcess) -> None:
    consul = client(agent)
    _, failing = consul.health.service("webapp", filter_expr="any Checks as check { check.Status == critical }")
    assert [row["Node"]["Node"] for row in failing] == ["web-west"]
    _, healthy = consul.health.service("webapp", filter_expr="all Checks as check { check.Status == passing } "
                                                             "and not (Node.Meta.env == dev)")
    assert [row["Node"]["Node"] for row in healthy] == ["web-east"]
    _, critical = consul.health.state("any", filter_expr='Status == critical and ServiceName == "webapp"')
    assert [check["CheckID"] for check in critical] == ["service:webapp-web-west"]
    _, node_checks = consul.health.node("web-east", filter_expr="CheckID not matches `^serf`")
    assert [check["CheckID"] for check in node_checks] == ["service:webapp-web-east"]
    _, service_checks = consul.health.checks("webapp", filter_expr="\"-e\" in Node or Node matches `dev$`")
    assert sorted(check["Node"] for check in service_checks) == ["web-dev", "web-east"]


def test_agent_filters(agent: AgentProcess) -> None:
    consul = client(agent)
    assert list(consul.agent.services(filter_expr="Service == redis or Port == 1")) == ["redis-1"]
    assert list(consul.agent.services(filter_expr="Tags is empty")) == ["binstore-1"]
    assert list(consul.agent.services(filter_expr="Meta.engine == `7.2`")) == ["redis-1"]
    assert consul.agent.checks(filter_expr="Status == critical") == {
        k: v for k, v in consul.agent.checks().items() if v["Status"] == "critical"}


def test_errors_are_consuls(agent: AgentProcess) -> None:
    url = f"{agent.url}/v1/catalog/service/webapp"
    unparsable = requests.get(url, params={"filter": "ServicePort = 8080"}, timeout=5)
    assert unparsable.status_code == 400
    assert unparsable.text.startswith("Failed to create boolean expression evaluator: 1:13")
    unknown = requests.get(url, params={"filter": "NoSuchField == 1"}, timeout=5)
    assert unknown.status_code == 500 and 'struct field with name "NoSuchField"' in unknown.text
    uncoercible = requests.get(url, params={"filter": "ServicePort == http"}, timeout=5)
    assert uncoercible.status_code == 500 and "http" in uncoercible.text
    assert len(requests.get(url, params={"filter": ""}, timeout=5).json()) == 3  # empty: no filter


def test_a_blocking_query_wakes_with_the_filter_applied(agent: AgentProcess) -> None:
    consul = client(agent)
    index, rows = consul.health.service("redis", filter_expr="Service.Port == 6380")
    assert rows == []
    consul.agent.service.register("redis", service_id="redis-2", port=6380)
    _, rows = consul.health.service("redis", index=index, wait="5s", filter_expr="Service.Port == 6380")
    assert [row["Service"]["ID"] for row in rows] == ["redis-2"]


ROW = {"Node": {"Node": "n1", "Meta": {"env": "prod"}},
       "Service": {"ID": "web-1", "Service": "web", "Tags": ["blue", "v2"], "Port": 80, "Meta": {"version": "1.2"},
                   "EnableTagOverride": False},
       "Checks": [{"CheckID": "serfHealth", "Status": "passing"}, {"CheckID": "service:web-1", "Status": "critical"}]}


@pytest.mark.parametrize(("expression", "expected"), [
    ("Service.Port == 80", True), ("Service.Port != 80", False), ('"green" not in Service.Tags', True),
    ("Service.Tags not contains v2", False), ('Service.Meta.version == "1.2"', True),
    ("Service.Meta.missing == x", False), ("Service.Meta.missing != x", True),  # a missing key is not an error
    ("Service.Meta.missing is empty", True), ("Node.Meta is empty", False), ("Checks.1.Status == critical", True),
    ("all Checks as c { c.Status == passing }", False), ("all Service.Meta as k, v { v == `1.2` }", True),
    ("any Node.Meta as key { key == env }", True), ("Service.EnableTagOverride == false", True),
    ("not Service.Port == 80 or Service.Service == web and Node.Node == n1", True),  # and binds tighter
    ("not (Service.Port == 80 or Service.Service == web)", False),
    ('Service.ID == "web\\u002d1"', True),  # Go's escapes in quoted values
])
def test_the_grammar(expression: str, expected: bool) -> None:
    from opsgit.agent.filter import parse_filter

    assert parse_filter(expression).matches(ROW) is expected
