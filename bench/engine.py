"""Engine benchmarks (issue: engine). Prints a Markdown table for docs/benchmarks.md.

    python bench/engine.py [--sizes 2000,6000] [--runs 3]

1. Terraform's own figures, same shape: `count = N` of `null_resource.r` plus `count = N` of
   `null_resource.dep` with `dep[i]` referencing `r[i]` (2N instances), local state backend, run
   as real `opsgit apply` / `opsgit plan` processes (render included): apply (create) from an
   empty state, then a plan with no changes.
2. Scheduling efficiency, with a provider that sleeps 20 ms per call (`bench_sleep`): refresh +
   plan of 500 resources at parallelism 10 against the ideal 500 x 20 ms / 10; apply of 500
   resources in chains of depth 5 against its critical-path bound.
3. Engine overhead: planning 5,000 unchanged resources on a zero-latency provider, in one
   process: time and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.table import print_table  # noqa: E402

PAIRS = """\
variables:
  n: {type: number}
---
resources:
  null_resource.r:
    count: {{ var.n }}
    triggers: {i: "${count.index}"}
  null_resource.dep:
    count: {{ var.n }}
    triggers: {r: "${null_resource.r[count.index].id}"}
"""


def write_repo(root: Path, env_yaml: str, modules: Mapping[str, str]) -> Path:
    (root / "environments/bench").mkdir(parents=True)
    (root / "environments/bench/env.yaml").write_text(env_yaml)
    for name, text in modules.items():
        (root / f"modules/{name}").mkdir(parents=True)
        (root / f"modules/{name}/module.yaml").write_text(text)
    return root


def timed(command: Sequence[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 2):
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    return time.perf_counter() - started


def terraform_shape(instances: int, runs: int) -> tuple[list[float], list[float]]:
    opsgit = [sys.executable, "-m", "opsgit"]
    applies, plans = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as scratch:
            env_yaml = f"modules:\n  pairs:\n    source: pairs\n    inputs: {{n: {instances // 2}}}\n"
            repo = write_repo(Path(scratch), env_yaml, {"pairs": PAIRS})
            applies.append(timed([*opsgit, "apply", "--env", "bench", "--auto-approve"], repo))
            plans.append(timed([*opsgit, "plan", "--env", "bench", "--detailed-exitcode"], repo))
    return applies, plans


class SleepType:
    """A provider resource type that costs `delay` seconds per call, like a remote API."""

    def __init__(self, delay: float) -> None:
        from opsgit.providers.base import Field, Schema

        self.delay = delay
        self.schema = Schema({"triggers": Field(force_new=True), "id": Field(computed=True)})

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        time.sleep(self.delay)
        return dict(attributes)

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        return [self.read(i, a) for i, a in items]

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        time.sleep(self.delay)
        return token[:12], {**config, "id": token[:12]}

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(self.delay)
        return {**config, "id": resource_id}

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        time.sleep(self.delay)


class SleepProvider:
    name = "null"

    def __init__(self, delay: float) -> None:
        self.resource_types = {"null_resource": SleepType(delay)}


def scheduling(parallelism: int = 10, delay: float = 0.02) -> dict[str, float]:
    from opsgit.engine.apply import Applier
    from opsgit.engine.backends.local import LocalBackend
    from opsgit.engine.plan import Planner
    from opsgit.workspace import open_workspace

    chains = """\
variables:
  n: {type: number}
---
resources:
{% for depth in range(5) %}
  null_resource.level{{ depth }}:
    count: {{ var.n }}
    triggers: {up: "{{ '${null_resource.level' ~ (depth - 1) ~ '[count.index].id}' if depth else 'root' }}"}
{% endfor %}
"""
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        repo = write_repo(Path(scratch), "modules:\n  chains:\n    source: chains\n    inputs: {n: 100}\n",
                          {"chains": chains})
        workspace = open_workspace("bench", repo)
        providers = {"null": SleepProvider(delay)}
        backend = LocalBackend({}, "bench", repo)
        state = backend.load()
        plan = Planner(workspace.graph, state, providers, parallelism=parallelism).plan()
        started = time.perf_counter()
        Applier(plan, backend, providers, parallelism=parallelism, progress=lambda line: None).run()
        figures["apply"] = time.perf_counter() - started
        figures["apply_bound"] = max(500 * delay / parallelism, 5 * delay)
        state = backend.load()
        started = time.perf_counter()
        Planner(workspace.graph, state, providers, parallelism=parallelism).plan()
        figures["plan"] = time.perf_counter() - started
        figures["plan_ideal"] = 500 * delay / parallelism
    return figures


def overhead(count: int = 5000) -> tuple[float, float]:
    from opsgit.engine.apply import Applier
    from opsgit.engine.backends.local import LocalBackend
    from opsgit.engine.plan import Planner
    from opsgit.providers.null import make
    from opsgit.workspace import open_workspace

    with tempfile.TemporaryDirectory() as scratch:
        repo = write_repo(Path(scratch), f"modules:\n  pairs:\n    source: pairs\n    inputs: {{n: {count // 2}}}\n",
                          {"pairs": PAIRS})
        workspace = open_workspace("bench", repo)
        providers = {"null": make({})}
        backend = LocalBackend({}, "bench", repo)
        plan = Planner(workspace.graph, backend.load(), providers).plan()
        Applier(plan, backend, providers, progress=lambda line: None).run()
        state = LocalBackend({}, "bench", repo).load()
        started = time.perf_counter()
        result = Planner(workspace.graph, state, providers).plan()
        took = time.perf_counter() - started
        assert not result.has_changes
    return took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def moto_refresh(count: int = 300) -> tuple[float, float, int]:
    """Refresh of `count` AWS resources (half security groups, half instances) against moto_server,
    at parallelism 1 and 10; returns both times and the number of Describe calls made."""
    import os

    from opsgit.engine.apply import Applier
    from opsgit.engine.backends.local import LocalBackend
    from opsgit.engine.plan import Planner
    from opsgit.providers.aws import make
    from opsgit.workspace import open_workspace
    from tests.agent_process import start_moto

    module = """\
variables:
  n: {type: number}
---
resources:
  aws_security_group.group:
    count: {{ var.n }}
    name: "bench-${count.index}"
    description: benchmark
  aws_instance.node:
    count: {{ var.n }}
    ami: ami-12c6146b
    instance_type: t3.micro
    vpc_security_group_ids: ["${aws_security_group.group[count.index].id}"]
"""
    server = start_moto()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    try:
        with tempfile.TemporaryDirectory() as scratch:
            repo = write_repo(Path(scratch), "providers: {aws: {region: us-east-1}}\nmodules:\n  fleet:\n"
                              f"    source: fleet\n    inputs: {{n: {count // 2}}}\n", {"fleet": module})
            workspace = open_workspace("bench", repo)
            providers = {"aws": make({"region": "us-east-1"})}
            backend = LocalBackend({}, "bench", repo)
            plan = Planner(workspace.graph, backend.load(), providers).plan()
            Applier(plan, backend, providers, progress=lambda line: None).run()
            state = LocalBackend({}, "bench", repo).load()
            times = []
            for parallelism in (1, 10):
                started = time.perf_counter()
                refreshed = Planner(workspace.graph, state, providers, parallelism=parallelism).refresh()
                times.append(time.perf_counter() - started)
                assert all(v is not None for v in refreshed.values())
            calls = -(-count // 2 // 50) * 2
            return times[0], times[1], calls
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,6000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    targets = {2000: (3.0, 1.0, 72.7, 8.1), 6000: (10.0, 3.0, 1071.0, 187.0)}
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        applies, plans = terraform_shape(size, args.runs)
        apply_target, plan_target, tf_apply, tf_plan = targets.get(size, (0, 0, 0, 0))
        rows.append((f"apply (create) {size} null_resource instances, median of {args.runs} "
                     f"({', '.join(f'{a:.2f}' for a in applies)} s)", f"{statistics.median(applies):.2f} s",
                     f"<= {apply_target:g} s (Terraform 1.11.4: {tf_apply:g} s, "
                     f"{tf_apply / statistics.median(applies):.0f}x slower)"))
        rows.append((f"plan with no changes, {size} instances ({', '.join(f'{p:.2f}' for p in plans)} s)",
                     f"{statistics.median(plans):.2f} s",
                     f"<= {plan_target:g} s (Terraform: {tf_plan:g} s, "
                     f"{tf_plan / statistics.median(plans):.0f}x slower)"))
    sched = scheduling()
    rows.append(("refresh + plan 500 resources, 20 ms per read, parallelism 10",
                 f"{sched['plan']:.2f} s = {sched['plan'] / sched['plan_ideal']:.2f} x ideal "
                 f"({sched['plan_ideal']:.2f} s)", "<= 1.25 x ideal"))
    rows.append(("apply 500 resources in chains of depth 5, 20 ms per create, parallelism 10",
                 f"{sched['apply']:.2f} s = {sched['apply'] / sched['apply_bound']:.2f} x bound "
                 f"({sched['apply_bound']:.2f} s)", "<= 1.25 x bound"))
    took, peak = overhead()
    rows.append(("plan 5,000 unchanged resources, zero-latency provider, one process", f"{took:.2f} s, "
                 f"peak RSS {peak:.0f} MB", "<= 3 s, <= 400 MB"))
    serial, parallel, calls = moto_refresh()
    rows.append(("refresh 300 AWS resources on moto_server (150 security groups, 150 instances): "
                 "parallelism 1 vs 10", f"{serial:.2f} s vs {parallel:.2f} s = {serial / parallel:.1f}x",
                 f"recorded (batched Describe calls: at least {calls}, not 300)"))
    print_table(rows)


if __name__ == "__main__":
    main()
