"""Dev agent benchmarks (issue: Consul). Prints a Markdown table for docs/benchmarks.md.

    python bench/consul.py [--watchers 1000] [--puts 3000] [--handoffs 40] [--keys 100000]

The agent runs as a real process (`opsgit agent --dev`) on a free loopback port; clients run in
this process. Measured:
  - wake-up of N concurrent blocking queries on one key after one write (each watcher its own
    connection), as the time from the write's acknowledgement to each answer's arrival;
  - sequential KV puts from one client (opsgit's Consul client, keep-alive), in memory and with
    --data-dir (SQLite, synchronous=FULL: durable on every acknowledged write);
  - lock hand-off: the holder releases, the waiter (blocked in a blocking query) holds;
  - resident memory of the agent holding N keys.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import requests  # noqa: E402

from bench.table import percentile, print_table  # noqa: E402
from opsgit.consul import Consul  # noqa: E402
from opsgit.consul.lock import Lock, Session  # noqa: E402
from tests.agent_process import AgentProcess, start_agent  # noqa: E402


async def _watch(host: str, port: int, path: str, arrived: list[float], ready: asyncio.Event,
                 counter: list[int], total: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    counter[0] += 1
    if counter[0] == total:
        ready.set()
    status = await reader.readline()
    arrived.append(time.perf_counter())
    assert b"200" in status, status
    writer.close()


async def watchers(agent: AgentProcess, count: int) -> tuple[int, list[float]]:
    http = requests.Session()
    http.put(f"{agent.url}/v1/kv/bench/watched", data=b"0")
    index = int(http.get(f"{agent.url}/v1/kv/bench/watched").headers["X-Consul-Index"])
    host, port = agent.address.split(":")
    arrived: list[float] = []
    ready = asyncio.Event()
    counter = [0]
    path = f"/v1/kv/bench/watched?index={index}&wait=60s"
    tasks = [asyncio.create_task(_watch(host, int(port), path, arrived, ready, counter, count)) for _ in range(count)]
    await ready.wait()
    await asyncio.sleep(1.5)  # let the agent park every query
    loop = asyncio.get_running_loop()
    answer = await loop.run_in_executor(None, lambda: http.put(f"{agent.url}/v1/kv/bench/watched", data=b"1"))
    written = time.perf_counter()
    assert answer.json() is True
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return len(arrived), [(t - written) * 1000 for t in arrived]


def raw_puts(agent: AgentProcess, count: int) -> float:
    """One keep-alive HTTP/1.1 client with little overhead of its own: what the agent sustains."""
    host, port = agent.address.split(":")
    connection = http.client.HTTPConnection(host, int(port))
    started = time.perf_counter()
    for number in range(count):
        connection.request("PUT", f"/v1/kv/bench/raw/{number % 500}", body=f"value-{number}".encode())
        answer = connection.getresponse()
        assert answer.read() == b"true"
    rate = count / (time.perf_counter() - started)
    connection.close()
    return rate


def puts(agent: AgentProcess, count: int) -> float:
    """opsgit's own client (requests, keep-alive)."""
    consul = Consul(agent.address, token="")
    consul.kv.put("bench/warm", "x")
    started = time.perf_counter()
    for number in range(count):
        consul.kv.put(f"bench/put/{number % 500}", f"value-{number}")
    rate = count / (time.perf_counter() - started)
    consul.close()
    return rate


def handoffs(agent: AgentProcess, rounds: int) -> list[float]:
    consul_a, consul_b = Consul(agent.address, token=""), Consul(agent.address, token="")
    samples = []
    with Session(consul_a, name="a", lock_delay=0) as a, Session(consul_b, name="b", lock_delay=0) as b:
        for _ in range(rounds):
            holder, waiter = Lock(consul_a, "bench/lock", a), Lock(consul_b, "bench/lock", b)
            assert holder.acquire(timeout=5)
            got: list[float] = []

            def wait_for_it(waiter: Lock = waiter, got: list[float] = got) -> None:
                waiter.acquire(timeout=10)
                got.append(time.perf_counter())

            thread = threading.Thread(target=wait_for_it)
            thread.start()
            time.sleep(0.2)  # the waiter is parked in its blocking query
            released = time.perf_counter()
            holder.release()
            thread.join()
            samples.append((got[0] - released) * 1000)
            waiter.release()
    return samples


def memory_with_keys(agent: AgentProcess, count: int) -> float:
    http = requests.Session()
    value = base64.b64encode(b"v" * 64).decode()
    for start in range(0, count, 64):
        operations = [{"KV": {"Verb": "set", "Key": f"mem/{n:07d}/config", "Value": value}}
                      for n in range(start, min(start + 64, count))]
        assert http.put(f"{agent.url}/v1/txn", data=json.dumps(operations)).status_code == 200
    keys = http.get(f"{agent.url}/v1/kv/mem/?keys").json()
    assert len(keys) == count
    for line in Path(f"/proc/{agent.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def put_rows(agent: AgentProcess, count: int, where: str, target: str) -> list[tuple[str, str, str]]:
    """Sequential puts, median of 3: from a keep-alive http.client, then through opsgit's client."""
    raw = [raw_puts(agent, count) for _ in range(3)]
    ours = [puts(agent, count) for _ in range(3)]
    return [(f"sequential KV put, {where}, keep-alive http.client (median of 3 x {count}: "
             f"{', '.join(f'{r:.0f}' for r in raw)})", f"{statistics.median(raw):.0f}/s", target),
            (f"  the same through opsgit's requests-based client (median of 3: "
             f"{', '.join(f'{r:.0f}' for r in ours)})", f"{statistics.median(ours):.0f}/s", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--puts", type=int, default=3000)
    parser.add_argument("--handoffs", type=int, default=40)
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    rows = []
    agent = start_agent()
    try:
        woken, latencies = asyncio.run(watchers(agent, args.watchers))
        rows.append((f"{args.watchers} blocking watchers on one key, one write: woken", f"{woken}/{args.watchers}",
                     "all"))
        rows.append(("  wake latency p50 / p99 / max", f"{statistics.median(latencies):.0f} / "
                     f"{percentile(latencies, 0.99):.0f} / {max(latencies):.0f} ms", "p99 <= 200 ms"))
        rows += put_rows(agent, args.puts, "in memory", ">= 1,500/s")
        samples = handoffs(agent, args.handoffs)
        rows.append((f"lock hand-off, release -> next holder (n={len(samples)}) p50 / p99",
                     f"{statistics.median(samples):.1f} / {percentile(samples, 0.99):.1f} ms", "p50 <= 50 ms"))
    finally:
        agent.stop()
    with tempfile.TemporaryDirectory(dir=HERE) as scratch:
        durable = start_agent("--data-dir", scratch)
        try:
            rows += put_rows(durable, args.puts, "--data-dir", ">= 500/s")
        finally:
            durable.stop()
    agent = start_agent()
    try:
        rows.append((f"agent resident memory holding {args.keys} keys (64-byte values)",
                     f"{memory_with_keys(agent, args.keys):.0f} MB", "<= 300 MB"))
    finally:
        agent.stop()
    print_table(rows)


if __name__ == "__main__":
    main()
