"""The dev agent's DNS interface, as Consul's: `redis.service.consul` answers the healthy
instances' addresses (shuffled per answer), `SRV` answers ports and `<node>.node.<dc>.consul.`
targets with their addresses in the additional section, `<tag>.<service>.service`, RFC 2782
`_<service>._<tag or tcp>.service`, `<node>.node`; NXDOMAIN with the zone's SOA when nothing
answers. TTL 0, as Consul's default. Over UDP an answer is cut to 512 bytes with the TC bit set,
so clients retry over TCP, where it is whole. The wire format is dnslib's.

Answers are read from the store at the moment of the query, so a check that goes critical takes
its instance out of the very next answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
from typing import Any

from dnslib import AAAA, QTYPE, RCODE, RR, SOA, SRV, A, DNSRecord  # type: ignore[import-untyped]

from opsgit.agent.store import Store

UDP_LIMIT = 512


class Resolver:
    def __init__(self, store: Store, *, domain: str = "consul", only_passing: bool = False, ttl: int = 0) -> None:
        self.store = store
        self.domain = domain.strip(".").lower()
        self.only_passing = only_passing
        self.ttl = ttl

    # -- queries ------------------------------------------------------------------------

    def answer(self, packet: bytes, *, udp: bool) -> bytes:
        try:
            request = DNSRecord.parse(packet)
        except Exception:  # not a DNS message: nothing to answer
            return b""
        reply = request.reply()
        reply.header.ra = 0
        question = request.q
        name = str(question.qname).rstrip(".").lower()
        labels = name.split(".")
        domain = self.domain.split(".")
        if labels[-len(domain):] != domain:
            reply.header.rcode = RCODE.REFUSED
            return bytes(reply.pack())
        found = self._lookup(labels[:-len(domain)], question.qtype, reply)
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN if found is None else RCODE.NOERROR
            reply.add_auth(self._soa())
        packed = bytes(reply.pack())
        if udp and len(packed) > UDP_LIMIT:
            packed = self._truncated(reply)
        return packed

    def _lookup(self, labels: list[str], qtype: int, reply: DNSRecord) -> bool | None:
        """True when records were added; False: the name exists but has no records of this type
        (NOERROR, empty); None: no such name (NXDOMAIN)."""
        datacenter = self.store.datacenter
        if len(labels) >= 2 and labels[-1] == datacenter:
            labels = labels[:-1]
        if len(labels) >= 2 and labels[-1] == "node":
            node = self.store.nodes.get(".".join(labels[:-1])) or self._node_ignoring_case(".".join(labels[:-1]))
            if node is None:
                return None
            return self._address_records(reply, str(reply.q.qname), node["Address"], qtype)
        if len(labels) >= 2 and labels[-1] == "service":
            parts = labels[:-1]
            tag: str | None
            if len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):  # RFC 2782
                service, tag = parts[0][1:], parts[1][1:]
                tag = None if tag == "tcp" else tag
            elif len(parts) == 2:
                tag, service = parts
            elif len(parts) == 1:
                tag, service = None, parts[0]
            else:
                return None
            instances = self._healthy(service, tag)
            if not instances:
                return None
            random.shuffle(instances)
            qname = str(reply.q.qname)
            if qtype == QTYPE.SRV:
                for node, entry in instances:
                    target = f"{node['Node']}.node.{datacenter}.{self.domain}."
                    reply.add_answer(RR(qname, QTYPE.SRV, ttl=self.ttl,
                                        rdata=SRV(priority=1, weight=1, port=int(entry.get("Port") or 0),
                                                  target=target)))
                    self._address_records(reply, target, _address(node, entry), QTYPE.ANY, additional=True)
                return True
            added = False
            for node, entry in instances:
                added = self._address_records(reply, qname, _address(node, entry), qtype) or added
            return added
        return None

    def _node_ignoring_case(self, name: str) -> dict[str, Any] | None:
        return next((n for key, n in self.store.nodes.items() if key.lower() == name), None)

    def _healthy(self, service: str, tag: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        healthy = []
        for node, entry, checks in self.store.service_entries(service) or self._entries_ignoring_case(service):
            if tag is not None and tag not in [t.lower() for t in entry.get("Tags") or []]:
                continue
            statuses = {c.get("Status") for c in checks}
            if "critical" in statuses or (self.only_passing and "warning" in statuses):
                continue
            healthy.append((node, entry))
        return healthy

    def _entries_ignoring_case(self, service: str) -> list[tuple[dict[str, Any], dict[str, Any],
                                                                 list[dict[str, Any]]]]:
        names = {s["Service"] for s in self.store.services.values() if s["Service"].lower() == service}
        return [entry for name in sorted(names) for entry in self.store.service_entries(name)]

    def _address_records(self, reply: DNSRecord, name: str, address: str, qtype: int, *,
                         additional: bool = False) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a hostname: Consul answers a CNAME; the dev agent has none to give
        if ip.version == 4 and qtype in (QTYPE.A, QTYPE.ANY):
            record = RR(name, QTYPE.A, ttl=self.ttl, rdata=A(str(ip)))
        elif ip.version == 6 and qtype in (QTYPE.AAAA, QTYPE.ANY):
            record = RR(name, QTYPE.AAAA, ttl=self.ttl, rdata=AAAA(str(ip)))
        else:
            return False
        (reply.add_ar if additional else reply.add_answer)(record)
        return True

    def _soa(self) -> RR:
        zone = f"{self.domain}."
        return RR(zone, QTYPE.SOA, ttl=self.ttl, rdata=SOA(f"ns.{zone}", f"hostmaster.{zone}",
                                                           (1, 3600, 600, 86400, 0)))

    def _truncated(self, reply: DNSRecord) -> bytes:
        """As many answers as fit in 512 bytes, the TC bit set: the client asks again over TCP."""
        answers = list(reply.rr)
        reply.ar = []
        reply.header.tc = 1
        while answers:
            reply.rr = answers
            packed = reply.pack()
            if len(packed) <= UDP_LIMIT:
                return bytes(packed)
            answers = answers[:-1]
        reply.rr = []
        return bytes(reply.pack())


def _address(node: dict[str, Any], entry: dict[str, Any]) -> str:
    return str(entry.get("Address") or node.get("Address") or "")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport, though not by class

    def datagram_received(self, data: bytes, address: tuple[str | Any, int]) -> None:
        answer = self.resolver.answer(data, udp=True)
        if answer and self.transport is not None:
            self.transport.sendto(answer, address)


async def _tcp(resolver: Resolver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            answer = resolver.answer(await reader.readexactly(size), udp=False)
            if not answer:
                break
            writer.write(struct.pack("!H", len(answer)) + answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve_dns(resolver: Resolver, host: str, port: int) -> tuple[asyncio.DatagramTransport, asyncio.Server]:
    """UDP and TCP on the same port (port 0: a free one, the same for both)."""
    loop = asyncio.get_running_loop()
    for attempt in range(20 if port == 0 else 1):
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(resolver), local_addr=(host, port))
        bound = transport.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(lambda r, w: _tcp(resolver, r, w), host, bound)
        except OSError:
            transport.close()
            if attempt == 19 or port != 0:
                raise
            continue  # the free UDP port is a busy TCP one: pick another pair
        return transport, tcp
    raise OSError("no free port for both UDP and TCP")

