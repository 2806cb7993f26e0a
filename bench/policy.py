"""Policy checks' cost on a plan (issue 16). Prints a Markdown table for docs/benchmarks.md.

    python bench/policy.py [--resources 500] [--runs 3] [--checkov .venv-checkov/bin/checkov]

A repository of N resources in three modules — security groups with ingress rules, instances,
S3 buckets (types checkov has many checks for) — planned from an empty state against one
moto_server on loopback, as a real `opsgit plan` process: with policy checks off and on (checkov
with one custom check from policies/), medians of R runs each. The difference is what the checks
add; target: at most 5 s for 500 resources.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.table import print_table  # noqa: E402
from tests.agent_process import start_moto  # noqa: E402

OPSGIT = [sys.executable, "-m", "opsgit"]
ENV = """providers:
  aws: {{region: us-east-1}}
modules:
  fleet:
    source: fleet
    inputs: {{n: {n}}}
"""
FLEET = """variables:
  n: {type: number}
---
resources:
  aws_security_group.web:
    count: {{ (var.n * 0.4) | int }}
    name: "web-${count.index}"
    description: bench
    ingress:
      - {from_port: 443, to_port: 443, protocol: tcp, cidr_blocks: [0.0.0.0/0]}
      - {from_port: 22, to_port: 22, protocol: tcp, cidr_blocks: [10.0.0.0/8]}
    tags: {Environment: bench}
  aws_instance.node:
    count: {{ (var.n * 0.4) | int }}
    ami: ami-12c6146b
    instance_type: t3.micro
    tags: {Name: "node-${count.index}", Environment: bench}
  aws_s3_bucket.data:
    count: {{ var.n - 2 * ((var.n * 0.4) | int) }}
    bucket: "bench-data-${count.index}"
    tags: {Environment: bench}
"""


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    checked = "Policy checks (checkov" in result.stdout and " resources): " in result.stdout
    if result.returncode != 0 or (command[-1] == "true") != checked:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checkov", default=os.environ.get("OPSGIT_CHECKOV") or str(HERE.parent /
                                                                                    ".venv-checkov/bin/checkov"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="opsgit-bench-policy-"))
    moto = start_moto()
    try:
        root = work / "ops"
        (root / "environments/bench").mkdir(parents=True)
        (root / "modules/fleet").mkdir(parents=True)
        (root / "environments/bench/env.yaml").write_text(ENV.format(n=args.resources))
        (root / "modules/fleet/module.yaml").write_text(FLEET)
        shutil.copytree(HERE.parent / "policies", root / "policies")
        (root / "pyproject.toml").write_text('[tool.opsgit]\n\n[tool.opsgit.policy]\nenforce = ["CKV_OPSGIT_1"]\n')
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.url, "OPSGIT_CHECKOV": args.checkov}
        command = [*OPSGIT, "plan", "--env", "bench", "--policy"]
        timed([*command, "false"], root, env)  # warm the page cache
        off = [timed([*command, "false"], root, env) for _ in range(args.runs)]
        on = [timed([*command, "true"], root, env) for _ in range(args.runs)]
        added = statistics.median(on) - statistics.median(off)
        print_table([
            (f"plan of {args.resources} resources, policy checks off (median of {args.runs})",
             f"{statistics.median(off):.2f} s", ""),
            (f"plan of {args.resources} resources, policy checks on: checkov + 1 custom check (median of "
             f"{args.runs})", f"{statistics.median(on):.2f} s", ""),
            ("added by the policy checks", f"**{added:.2f} s**", "≤ 5 s"),
        ])
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
