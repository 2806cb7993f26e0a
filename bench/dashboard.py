"""The dashboard under a large history (issue 18). Prints a Markdown table for docs/benchmarks.md.

    python bench/dashboard.py [--runs 1000] [--lines 10000] [--streams 50] [--requests 30]

An environment with N runs in its local run store (the CLI's own format, written by opsgit's
RunStore) and one apply whose log has L lines, served by a real `opsgit server` process on
loopback and read with httpx: the environment's page and the long run's page, medians and p95 of
R requests each (target: under 300 ms). Then S clients hold the live-log stream of a running run
open at once while lines are appended to it: how many streams got every line, and how long the
last line took to reach all of them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402

from bench.table import percentile, print_table  # noqa: E402
from opsgit.gitops.runs import LocalRuns  # noqa: E402
from tests.server.conftest import start_server  # noqa: E402


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def history(root: Path, runs: int, lines: int) -> int:
    (root / "environments/t").mkdir(parents=True)
    (root / "environments/t/env.yaml").write_text("description: a long-lived environment\nmodules: {}\n")
    store = LocalRuns(root)
    for n in range(1, runs + 1):
        kind = "plan" if n % 2 else "apply"
        record = {"env": "t", "kind": kind, "status": "planned" if kind == "plan" else "applied",
                  "started_at": now(), "heartbeat_at": now(), "duration_seconds": 1.5, "commit": f"{n:040x}",
                  "summary": "Plan: 3 to add, 0 to change, 0 to destroy.",
                  "trigger": {"who": "alice", "host": "ci", "source": "pull_request", "pull_request": f"org/ops#{n}"}}
        number = store.create("t", record)
        store.append_log("t", number, f"module.app.null_resource.node[{n}]: Creation complete after 1ms\n")
    long = store.create("t", {"env": "t", "kind": "apply", "status": "applied", "started_at": now(),
                              "heartbeat_at": now(), "duration_seconds": 60.0, "summary": "Apply complete!"})
    store.append_log("t", long, "".join(
        f"module.fleet.aws_instance.web[{i}]: Creation complete after 3s [id=i-{i:017x}]\n" if i % 3 else
        f"  + resource \"aws_instance\" \"web\" {{  # web[{i}]\n" for i in range(lines)))
    return long


def timed(client: httpx.Client, path: str, requests: int) -> list[float]:
    client.get(path).raise_for_status()  # warm
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def streams(server_url: str, root: Path, count: int, appended: int) -> tuple[int, float]:
    store = LocalRuns(root)
    number = store.create("t", {"env": "t", "kind": "apply", "status": "running", "started_at": now(),
                                "heartbeat_at": now(), "trigger": {"who": "bench", "host": "elsewhere"}})
    stop = threading.Event()

    def heartbeat() -> None:  # a live run: its record rewritten every second, as the CLI does
        while not stop.wait(1.0):
            store.update("t", number, {"env": "t", "kind": "apply", "status": "running", "started_at": now(),
                                       "heartbeat_at": now(), "trigger": {"who": "bench", "host": "elsewhere"}})

    threading.Thread(target=heartbeat, daemon=True).start()
    received: list[set[int]] = [set() for _ in range(count)]
    reached: list[float] = [0.0] * count
    ready = threading.Barrier(count + 1)

    def follow(index: int) -> None:
        with httpx.Client(timeout=60) as client, client.stream(
                "GET", f"{server_url}/environments/t/runs/{number}/events") as response:
            ready.wait()
            for line in response.iter_lines():
                if line.startswith("data: ") and '"lines"' in line:
                    for entry in json.loads(line[6:])["lines"]:
                        received[index].add(int(entry["text"].split()[-1]))
                    if len(received[index]) == appended:
                        reached[index] = time.perf_counter()
                        return

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = 0.0
    for i in range(appended):
        started = time.perf_counter()
        store.append_log("t", number, f"line {i}\n")
        time.sleep(0.05)
    for thread in threads:
        thread.join(30)
    stop.set()
    complete = sum(1 for r in received if len(r) == appended)
    return complete, max(reached) - started if complete == count else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("OPSGIT_POLICY", "false")
    with tempfile.TemporaryDirectory(prefix="opsgit-bench-dashboard-") as scratch:
        root = Path(scratch) / "ops"
        long = history(root, args.runs, args.lines)
        server = start_server(root, None)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                page = timed(client, "/environments/t", args.requests)
                run = timed(client, f"/environments/t/runs/{long}", args.requests)
                overview = timed(client, "/", args.requests)
            complete, lag = streams(server.url, root, args.streams, 20)
        finally:
            server.process.terminate()
            server.process.wait(10)
    ms = lambda values: f"{statistics.median(values) * 1000:.0f} ms (p95 {percentile(values, 0.95) * 1000:.0f} ms)"  # noqa: E731
    print_table([
        (f"environment page, {args.runs:,} runs (newest 50 shown)", ms(page), "< 300 ms"),
        (f"run page, a log of {args.lines:,} lines", ms(run), "< 300 ms"),
        ("overview page", ms(overview), ""),
        ("live-log streams held open at once, every line received", f"{complete} of {args.streams}",
         f"{args.streams}"),
        ("last appended line reached every stream after", f"{lag * 1000:.0f} ms", "within the 0.5 s poll"),
    ])


if __name__ == "__main__":
    main()
