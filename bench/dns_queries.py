"""The dev agent's DNS queries per second over UDP on loopback (issue 19). Prints a Markdown
table for docs/benchmarks.md.

    python bench/dns_queries.py [--queries 20000] [--instances 3] [--clients 4]

The agent runs as a real process with N instances of `redis` registered through the catalog;
C client threads each send prebuilt `redis.service.consul A` queries (dnspython's wire format)
on their own UDP socket and wait for each answer, as a resolver does. Target: at least 2,000/s.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import dns.message  # noqa: E402
import requests  # noqa: E402

from bench.table import print_table  # noqa: E402
from tests.agent_process import start_agent  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    agent = start_agent()
    try:
        for i in range(args.instances):
            requests.put(f"{agent.url}/v1/catalog/register", timeout=10, json={
                "Node": f"node{i}", "Address": f"10.0.0.{i + 1}",
                "Service": {"Service": "redis", "ID": f"redis-{i}", "Port": 6379}}).raise_for_status()
        wire = dns.message.make_query("redis.service.consul", "A").to_wire()
        each = args.queries // args.clients
        answered = [0] * args.clients

        def client(index: int) -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5)
                for _ in range(each):
                    sock.sendto(wire, ("127.0.0.1", agent.dns_port))
                    if dns.message.from_wire(sock.recv(4096)).answer:
                        answered[index] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.perf_counter() - started
    finally:
        agent.stop()
    print_table([(f"DNS A queries over UDP, {args.instances} instances, {args.clients} clients",
                  f"{sum(answered) / took:,.0f}/s ({sum(answered):,} of {each * args.clients:,} answered)",
                  "≥ 2,000/s")])


if __name__ == "__main__":
    main()
