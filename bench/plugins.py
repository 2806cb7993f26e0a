"""Provider plugin benchmarks (issue 15). Prints a Markdown table for docs/benchmarks.md.

    python bench/plugins.py [--resources 100] [--runs 3] [--mirror /opt/tf-plugins]

Needs the hashicorp/aws 5.100.0 provider in a filesystem mirror (--mirror). Against one
moto_server on loopback:
1. provider start (handshake) and schema load: the schema asked of the provider (cold cache)
   against read from opsgit's disk cache, in one process;
2. apply of N aws_security_group through the plugin at parallelism 10, as a real `opsgit apply`;
3. a no-op plan (refresh included) of the same N: through the plugin, through opsgit's native
   aws code (another N groups), and with `terraform plan` on the same provider binary when a
   `terraform` binary is on PATH (its filesystem mirror pointed at --mirror, no network).
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
PROVIDER = """providers:
  aws:
{source}    region: us-east-1
    access_key: test
    secret_key: test
    skip_credentials_validation: true
    skip_requesting_account_id: true
    skip_metadata_api_check: "true"
    endpoints:
      - {{ec2: "{url}", sts: "{url}"}}
modules:
  groups:
    source: groups
    inputs: {{n: {n}, prefix: {prefix}}}
"""
GROUPS = """variables:
  n: {type: number}
  prefix: {type: string}
---
resources:
  aws_security_group.g:
    count: {{ var.n }}
    name: "{{ var.prefix }}-${count.index}"
    description: bench
"""
TERRAFORM = """terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "5.100.0" }}
  }}
}}
provider "aws" {{
  region = "us-east-1"
  access_key = "test"
  secret_key = "test"
  skip_credentials_validation = true
  skip_requesting_account_id = true
  skip_metadata_api_check = true
  endpoints {{
    ec2 = "{url}"
    sts = "{url}"
  }}
}}
resource "aws_security_group" "g" {{
  count = {n}
  name = "tf-${{count.index}}"
  description = "bench"
}}
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def repo(root: Path, url: str, n: int, plugin: bool, mirror: Path) -> Path:
    source = "    source: hashicorp/aws\n    version: 5.100.0\n" if plugin else ""
    (root / "environments/bench").mkdir(parents=True)
    (root / "modules/groups").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[tool.opsgit]\nplugin_dirs = ["{mirror}"]\n')
    (root / "environments/bench/env.yaml").write_text(PROVIDER.format(source=source, url=url, n=n,
                                                                      prefix="plugin" if plugin else "native"))
    (root / "modules/groups/module.yaml").write_text(GROUPS)
    return root


def schema_figures(mirror: Path, cache: Path) -> tuple[float, float, float]:
    from opsgit.plugin import discovery
    from opsgit.plugin.client import ProviderClient
    from opsgit.plugin.process import PluginProcess

    found = discovery.find(discovery.parse_source("hashicorp/aws"), "5.100.0", Path.cwd(), (mirror,))
    digest = discovery.package_hash(found.package)
    started = time.perf_counter()
    process = PluginProcess("aws", found.binary, Path(tempfile.mkdtemp()) / "receipts")
    start = time.perf_counter() - started
    timings = []
    for _ in range(2):  # the first asks the provider and writes the cache; the second reads it
        client = ProviderClient("aws", process, cache, digest)
        began = time.perf_counter()
        client.schema.resource("aws_security_group")
        timings.append(time.perf_counter() - began)
    process.stop()
    return start, timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mirror", type=Path, default=Path("/opt/tf-plugins"))
    args = parser.parse_args()
    n = args.resources
    work = Path(tempfile.mkdtemp(prefix="opsgit-bench-plugins-"))
    os.environ["OPSGIT_CACHE_DIR"] = str(work / "cache")
    moto = start_moto()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.url}
    try:
        start, cold, cached = schema_figures(args.mirror, work / "cache")
        plugin = repo(work / "plugin", moto.url, n, True, args.mirror)
        native = repo(work / "native", moto.url, n, False, args.mirror)
        apply_plugin = run([*OPSGIT, "apply", "--env", "bench", "--auto-approve", "--parallelism", "10"], plugin, env)
        apply_native = run([*OPSGIT, "apply", "--env", "bench", "--auto-approve", "--parallelism", "10"], native, env)
        plans_plugin = [run([*OPSGIT, "plan", "--env", "bench"], plugin, env) for _ in range(args.runs)]
        plans_native = [run([*OPSGIT, "plan", "--env", "bench"], native, env) for _ in range(args.runs)]
        rows = [
            ("aws provider start (handshake)", f"{start:.2f} s", ""),
            ("schema load, asked of the provider (cold)", f"{cold:.2f} s", ""),
            ("schema load, from opsgit's disk cache", f"{cached:.2f} s", ""),
            (f"apply {n} aws_security_group, plugin, parallelism 10", f"{apply_plugin:.1f} s", ""),
            (f"apply {n} aws_security_group, native, parallelism 10", f"{apply_native:.1f} s", ""),
            (f"no-op plan of {n}, plugin (median of {args.runs})", f"{statistics.median(plans_plugin):.2f} s", ""),
            (f"no-op plan of {n}, native (median of {args.runs})", f"{statistics.median(plans_native):.2f} s", ""),
        ]
        terraform = shutil.which("terraform")
        if terraform:
            tf = work / "terraform"
            tf.mkdir()
            (tf / "main.tf").write_text(TERRAFORM.format(url=moto.url, n=n))
            rc = work / "terraformrc"
            rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{args.mirror}"\n  }}\n}}\n')
            tf_env = {**env, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
            run([terraform, "init", "-input=false", "-no-color"], tf, tf_env)
            apply_tf = run([terraform, "apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=10"],
                           tf, tf_env)
            plans_tf = [run([terraform, "plan", "-input=false", "-no-color"], tf, tf_env) for _ in range(args.runs)]
            median_tf, median_plugin = statistics.median(plans_tf), statistics.median(plans_plugin)
            rows += [(f"apply {n} aws_security_group, terraform, parallelism 10", f"{apply_tf:.1f} s", ""),
                     (f"no-op plan of {n}, terraform (median of {args.runs})", f"{median_tf:.2f} s", ""),
                     ("terraform no-op plan / opsgit plugin no-op plan", f"**{median_tf / median_plugin:.1f}x**",
                      ">= 3x")]
        print_table(rows)
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
