"""Consul's health as the dashboard and alerts count it, from the HTTP API's own JSON shapes."""

from __future__ import annotations

from opsgit.consul.health import Health

CHECKS = [
    {"Node": "node-1", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing"},
    {"Node": "node-2", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing"},
    {"Node": "node-1", "CheckID": "service:web-1", "Name": "http", "Status": "passing", "ServiceID": "web-1",
     "ServiceName": "web"},
    {"Node": "node-2", "CheckID": "service:web-2", "Name": "http", "Status": "critical", "ServiceID": "web-2",
     "ServiceName": "web", "Output": "connection refused"},
]
NODES = [{"Node": "node-1", "Address": "10.0.0.1"}, {"Node": "node-2", "Address": "10.0.0.2"}]
INSTANCES = [{"ServiceName": "redis", "ServiceID": "redis", "Node": "node-1"},
             {"ServiceName": "web", "ServiceID": "web-1", "Node": "node-1"}]


def test_unhealthy_is_named_with_its_share() -> None:
    health = Health.from_json("dc1", CHECKS, NODES, INSTANCES)
    web = next(s for s in health.services if s.name == "web")
    assert web.status == "critical" and web.unhealthy_percent == 50
    assert health.sentence() == "1 critical check in dc1 — unhealthy: web; 3 checks passing."


def test_services_without_checks_count_and_the_healthy_sentence() -> None:
    healthy = [c for c in CHECKS if c["Status"] == "passing"]
    health = Health.from_json("dc1", healthy, NODES, INSTANCES)
    assert [s.name for s in health.services] == ["redis", "web"]
    assert health.sentence() == ("Your infrastructure is healthy — 2 nodes and 2 services are reporting "
                                 "3 passing health checks.")
    assert [n.address for n in health.nodes] == ["10.0.0.1", "10.0.0.2"]
