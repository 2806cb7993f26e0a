"""Runtime benchmarks (issue: runtime), each through real processes against the dev agent (a
real process):

1. KV write -> destination file updated by `opsgit template`: 200 writes, each waited for (the
   file polled every millisecond) before the next; latency from the write's acknowledgement.
2. KV write -> `opsgit exec` child restarted with the new environment: 100 writes; the child (sh)
   writes the variable to a file as it starts; latency from the write to the new file content.
3. 200 templates sharing 50 keys (template i reads keys i mod 50 and i+1 mod 50, so each key is
   read by 8): per KV change, how many destinations were rewritten and the CPU time `opsgit
   template` spent (user + system from /proc), over 50 changes.

    python bench/runtime.py [--writes 200] [--restarts 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import requests  # noqa: E402

from bench.table import percentile, print_table  # noqa: E402
from tests.agent_process import AgentProcess, start_agent  # noqa: E402

OPSGIT = [sys.executable, "-m", "opsgit"]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("benchmark stalled")
        time.sleep(0.001)


def contains(path: Path, text: str) -> bool:
    try:
        return text in path.read_text()
    except FileNotFoundError:
        return False


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latencies_of(http: requests.Session, agent: AgentProcess, key: str, out: Path, count: int) -> list[float]:
    latencies = []
    for number in range(count):
        value = f"v-{number}"
        http.put(f"{agent.url}/v1/kv/{key}", data=value.encode())
        written = time.perf_counter()
        wait_until(lambda value=value: contains(out, value + "\n"))
        latencies.append((time.perf_counter() - written) * 1000)
        time.sleep(0.06)  # past the watch loop's 50 ms floor between fetches
    return latencies


def latency_of_process(agent: AgentProcess, argv: list[str], env: dict[str, str], key: str, out: Path,
                       count: int) -> list[float]:
    """Start `argv`, wait for its first output, then time `count` writes of `key` until `out` shows each."""
    http = requests.Session()
    http.put(f"{agent.url}/v1/kv/{key}", data=b"v-start")
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: contains(out, "v-start"))
        time.sleep(0.5)
        return latencies_of(http, agent, key, out, count)
    finally:
        process.terminate()
        process.wait()


def template_latency(agent: AgentProcess, scratch: Path, writes: int) -> list[float]:
    source, out = scratch / "app.conf.j2", scratch / "app.conf"
    source.write_text('upstream = {{ key("bench/upstream") }}\n')
    return latency_of_process(agent, [*OPSGIT, "template", "--template", f"{source}:{out}"], agent.env(),
                              "bench/upstream", out, writes)


def exec_restart_latency(agent: AgentProcess, scratch: Path, restarts: int) -> list[float]:
    out = scratch / "child.env"
    child = 'echo "$upstream" > "$OUT"; exec sleep 1000'
    return latency_of_process(agent, [*OPSGIT, "exec", "--prefix", "bench/exec", "--", "sh", "-c", child],
                              {**agent.env(), "OUT": str(out)}, "bench/exec/upstream", out, restarts)


def shared_keys(agent: AgentProcess, scratch: Path, changes: int) -> tuple[list[int], float]:
    templates, keys = 200, 50
    http = requests.Session()
    for key in range(keys):
        http.put(f"{agent.url}/v1/kv/bench/shared/k{key}", data=b"start")
    specs = []
    for number in range(templates):
        source = scratch / f"t{number}.j2"
        source.write_text(f'a = {{{{ key("bench/shared/k{number % keys}") }}}}\n'
                          f'b = {{{{ key("bench/shared/k{(number + 1) % keys}") }}}}\n')
        specs += ["--template", f"{source}:{scratch / f't{number}.out'}"]
    outputs = [scratch / f"t{number}.out" for number in range(templates)]
    process = subprocess.Popen([*OPSGIT, "template", *specs], env=agent.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    rewritten: list[int] = []
    try:
        wait_until(lambda: all(out.exists() for out in outputs))
        time.sleep(1.0)
        started_cpu = cpu_seconds(process.pid)  # in clock ticks (10 ms): summed over all changes, then divided
        for change in range(changes):
            key = change % keys
            readers = [out for number, out in enumerate(outputs) if key in (number % keys, (number + 1) % keys)]
            before_times = {out: out.stat().st_mtime_ns for out in outputs}
            value = f"c-{change}"
            http.put(f"{agent.url}/v1/kv/bench/shared/k{key}", data=value.encode())
            wait_until(lambda readers=readers, value=value: all(contains(out, value) for out in readers))
            time.sleep(0.3)  # let anything else it would (wrongly) re-render land too
            rewritten.append(sum(out.stat().st_mtime_ns != before_times[out] for out in outputs))
        cpu_per_change = (cpu_seconds(process.pid) - started_cpu) * 1000 / changes
    finally:
        process.terminate()
        process.wait()
    return rewritten, cpu_per_change


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=100)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    agent = start_agent()
    try:
        with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as scratch:
            template = template_latency(agent, Path(scratch), args.writes)
        with tempfile.TemporaryDirectory() as scratch:
            restart = exec_restart_latency(agent, Path(scratch), args.restarts)
        with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as scratch:
            rewritten, cpu = shared_keys(agent, Path(scratch), args.changes)
    finally:
        agent.stop()
    print_table([
        (f"KV write -> file updated by `opsgit template`, {len(template)} writes: p50 / p99 / max",
         f"{statistics.median(template):.1f} / {percentile(template, 0.99):.1f} / {max(template):.1f} ms",
         "p50 <= 50 ms, p99 <= 150 ms"),
        (f"KV write -> `opsgit exec` child restarted with the new value, {len(restart)} writes: p50 / p99 / max",
         f"{statistics.median(restart):.1f} / {percentile(restart, 0.99):.1f} / {max(restart):.1f} ms",
         "p50 <= 150 ms"),
        (f"200 templates sharing 50 keys, {len(rewritten)} changes: destinations rewritten per change (min / max)",
         f"{min(rewritten)} / {max(rewritten)} of 200 (8 read each key)", "only the readers"),
        (f"same: CPU (user + system) of `opsgit template` per change, mean over {args.changes}", f"{cpu:.1f} ms",
         "recorded"),
    ])

if __name__ == "__main__":
    main()
