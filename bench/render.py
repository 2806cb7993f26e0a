"""Render benchmark (issue: foundation). Prints a Markdown table for docs/benchmarks.md.

    python bench/render.py [--envs 500] [--instances 20] [--roles 100] [--runs 3]

Measures, on a synthetic monorepo from bench/synth.py:
  - `opsgit render` of everything as a real process: wall time (median of --runs) and the peak
    resident memory of the whole process tree (main process plus render workers), sampled;
  - in one process, with one worker, where the time goes: loading, and rendering per artefact kind;
  - start-up of `opsgit --help` and `invoke --list` in the example monorepo (median of 10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.synth import generate  # noqa: E402


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its children, from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(entry) != pid and int(fields[1]) != pid:
                continue
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


class Run(NamedTuple):
    wall: float  # seconds
    peak: int  # KiB resident, the process tree
    cpu: float  # seconds of user + system time, the process and every child it waited for


def timed_process(command: list[str], cwd: Path) -> Run:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        # wait4 reaps the process and gives its rusage, which includes its reaped children (the render workers)
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, tree_rss_kib(process.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return Run(elapsed, peak, usage.ru_utime + usage.ru_stime)


def breakdown(repo_dir: Path) -> dict[str, float]:
    from opsgit.render.pipeline import renderers
    from opsgit.repo import load_repo

    started = time.perf_counter()
    repo = load_repo(repo_dir)
    figures = {"load": time.perf_counter() - started}
    for renderer in renderers(repo):
        started = time.perf_counter()
        for name in renderer.names(repo):
            renderer.render(name)
        figures[renderer.kind] = time.perf_counter() - started
    return figures


def startup(command: list[str], cwd: Path) -> float:
    samples = []
    for _ in range(10):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=500)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--roles", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    synth = generate(HERE / "out" / "synth", args.envs, args.instances, args.roles)
    opsgit = [sys.executable, "-m", "opsgit"]
    runs = [timed_process([*opsgit, "render"], synth) for _ in range(args.runs)]
    wall = statistics.median(r.wall for r in runs)
    peak = max(r.peak for r in runs) / 1024
    parts = breakdown(synth)
    invoke = str(Path(sys.executable).parent / "invoke")
    help_time = startup([*opsgit, "--help"], ROOT)
    list_time = startup([invoke, "--list"], ROOT)
    resources = args.envs * args.instances
    print(f"Synthetic monorepo: {args.envs} environments x {args.instances} module instances "
          f"({resources} instances), {args.roles} roles; {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print()
    print("| measured | figure | target |")
    print("|---|---|---|")
    print(f"| `opsgit render` everything, wall (median of {args.runs}: "
          f"{', '.join(f'{r.wall:.2f}' for r in runs)} s) | {wall:.2f} s | <= 10 s |")
    print(f"| peak resident memory, process tree | {peak:.0f} MB | <= 500 MB |")
    print(f"| one process: load the repository | {parts['load']:.2f} s | |")
    print(f"| one process: {args.envs} environment graphs | {parts['graph']:.2f} s "
          f"({parts['graph'] / args.envs * 1000:.1f} ms each) | |")
    print(f"| one process: {args.roles} image templates | {parts['image']:.2f} s | |")
    print(f"| one process: {args.roles} role bundles | {parts['config']:.2f} s | |")
    print(f"| `opsgit --help` start-up (median of 10) | {help_time * 1000:.0f} ms | <= 300 ms |")
    print(f"| `invoke --list` start-up in the example (median of 10) | {list_time * 1000:.0f} ms | <= 300 ms |")


if __name__ == "__main__":
    main()
