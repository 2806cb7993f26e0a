"""The dev agent's DNS interface, asked with dnspython (the agent builds its answers with dnslib):
A, SRV, tag and node queries, RFC 2782 names, health taking an instance out of the next answer,
NXDOMAIN with the SOA, shuffled order, truncation over UDP and the whole answer over TCP.
Services are registered with py-consul, through the agent and the catalog endpoints alike."""

from __future__ import annotations

from collections.abc import Iterator

import consul as py_consul
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.agent_process import AgentProcess, start_agent


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    started = start_agent()
    yield started
    started.stop()


def ask(agent: AgentProcess, name: str, kind: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, kind)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, "127.0.0.1", port=agent.dns_port, timeout=5)


def addresses(answer: dns.message.Message) -> list[str]:
    return [item.address for rrset in answer.answer for item in rrset if rrset.rdtype == dns.rdatatype.A]


def client(agent: AgentProcess) -> py_consul.Consul:
    host, port = agent.address.split(":")
    return py_consul.Consul(host=host, port=int(port))


def catalog_instance(consul: py_consul.Consul, node: str, address: str, service: str, port: int,
                     tags: list[str] | None = None, status: str = "passing") -> None:
    consul.catalog.register(node, address, service={"Service": service, "ID": f"{service}-{node}", "Port": port,
                                                    "Tags": tags or []},
                            check={"CheckID": f"service:{service}-{node}", "Name": "tcp", "Status": status,
                                   "ServiceID": f"{service}-{node}"})


def test_a_srv_tag_and_node_queries(agent: AgentProcess) -> None:
    consul = client(agent)
    catalog_instance(consul, "node1", "10.0.0.1", "redis", 6379, ["primary"])
    catalog_instance(consul, "node2", "10.0.0.2", "redis", 6379, ["replica"])
    answer = ask(agent, "redis.service.consul")
    assert answer.rcode() == dns.rcode.NOERROR and sorted(addresses(answer)) == ["10.0.0.1", "10.0.0.2"]
    assert all(rrset.ttl == 0 for rrset in answer.answer)
    srv = ask(agent, "redis.service.consul", "SRV")
    records = sorted((item.priority, item.weight, item.port, str(item.target)) for rrset in srv.answer
                     for item in rrset)
    assert records == [(1, 1, 6379, "node1.node.dc1.consul."), (1, 1, 6379, "node2.node.dc1.consul.")]
    extra = {str(rrset.name): [item.address for item in rrset] for rrset in srv.additional}
    assert extra == {"node1.node.dc1.consul.": ["10.0.0.1"], "node2.node.dc1.consul.": ["10.0.0.2"]}
    assert addresses(ask(agent, "primary.redis.service.consul")) == ["10.0.0.1"]
    assert addresses(ask(agent, "_redis._replica.service.consul", "SRV")) == []  # SRV: addresses are additional
    rfc = ask(agent, "_redis._replica.service.consul", "SRV")
    assert [str(item.target) for rrset in rfc.answer for item in rrset] == ["node2.node.dc1.consul."]
    assert sorted(addresses(ask(agent, "redis.service.dc1.consul"))) == ["10.0.0.1", "10.0.0.2"]
    assert addresses(ask(agent, "node1.node.consul")) == ["10.0.0.1"]
    assert addresses(ask(agent, "node2.node.dc1.consul")) == ["10.0.0.2"]


def test_health_decides_who_answers_and_nxdomain_when_nobody_does(agent: AgentProcess) -> None:
    consul = client(agent)
    consul.agent.service.register("web", service_id="web-1", address="10.1.0.1", port=80,
                                  check=py_consul.Check.ttl("1h"))
    consul.agent.check.ttl_pass("service:web-1")
    catalog_instance(consul, "node3", "10.1.0.3", "web", 80)
    assert sorted(addresses(ask(agent, "web.service.consul"))) == ["10.1.0.1", "10.1.0.3"]
    consul.agent.check.ttl_fail("service:web-1", "down")
    assert addresses(ask(agent, "web.service.consul")) == ["10.1.0.3"]  # the very next answer
    consul.agent.check.ttl_warn("service:web-1", "slow")
    assert sorted(addresses(ask(agent, "web.service.consul"))) == ["10.1.0.1", "10.1.0.3"]  # warning answers
    consul.catalog.deregister("node3")
    consul.agent.check.ttl_fail("service:web-1", "down")
    gone = ask(agent, "web.service.consul")
    assert gone.rcode() == dns.rcode.NXDOMAIN and addresses(gone) == []
    assert [rrset.rdtype for rrset in gone.authority] == [dns.rdatatype.SOA]
    unknown = ask(agent, "nothing-like-it.service.consul")
    assert unknown.rcode() == dns.rcode.NXDOMAIN
    assert ask(agent, "nobody.node.consul").rcode() == dns.rcode.NXDOMAIN


def test_three_instances_come_in_varying_order(agent: AgentProcess) -> None:
    consul = client(agent)
    for i in range(3):
        catalog_instance(consul, f"app{i}", f"10.2.0.{i + 1}", "app", 8080)
    orders = {tuple(addresses(ask(agent, "app.service.consul"))) for _ in range(20)}
    assert len(orders) > 1 and all(sorted(order) == ["10.2.0.1", "10.2.0.2", "10.2.0.3"] for order in orders)


def test_a_large_answer_truncates_over_udp_and_is_whole_over_tcp(agent: AgentProcess) -> None:
    consul = client(agent)
    for i in range(40):
        catalog_instance(consul, f"big{i:02d}", f"10.3.0.{i + 1}", "big", 9000)
    udp = ask(agent, "big.service.consul")
    assert udp.flags & dns.flags.TC and len(addresses(udp)) < 40
    tcp = ask(agent, "big.service.consul", tcp=True)
    assert not tcp.flags & dns.flags.TC and len(addresses(tcp)) == 40
    srv = ask(agent, "big.service.consul", "SRV", tcp=True)
    assert sum(len(rrset) for rrset in srv.answer) == 40 and sum(len(rrset) for rrset in srv.additional) == 40


def test_the_agent_says_where_dns_is_and_a_taken_port_is_one_line(agent: AgentProcess) -> None:
    from tests.conftest import run_opsgit

    assert agent.dns_port > 0
    taken = run_opsgit("agent", "--dev", "--http-addr", "127.0.0.1:0", "--dns-addr", f"127.0.0.1:{agent.dns_port}",
                       cwd=None, timeout=30)
    assert taken.returncode == 1 and f"cannot serve DNS on 127.0.0.1:{agent.dns_port}" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_ipv6_instances_answer_aaaa_and_stay_out_of_a(agent: AgentProcess) -> None:
    consul = client(agent)
    catalog_instance(consul, "node4", "10.0.0.4", "cache", 11211)
    catalog_instance(consul, "node6", "fd00::6", "cache", 11211)
    assert addresses(ask(agent, "cache.service.consul")) == ["10.0.0.4"]
    aaaa = ask(agent, "cache.service.consul", "AAAA")
    assert [item.address for rrset in aaaa.answer for item in rrset if rrset.rdtype == dns.rdatatype.AAAA] == [
        "fd00::6"]
    assert [item.address for rrset in ask(agent, "node6.node.consul", "AAAA").answer for item in rrset] == ["fd00::6"]
    srv = ask(agent, "cache.service.consul", "SRV")
    extra = {(str(rrset.name), rrset.rdtype): [item.address for item in rrset] for rrset in srv.additional}
    assert extra == {("node4.node.dc1.consul.", dns.rdatatype.A): ["10.0.0.4"],
                     ("node6.node.dc1.consul.", dns.rdatatype.AAAA): ["fd00::6"]}
