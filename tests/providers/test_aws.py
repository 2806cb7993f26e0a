"""AWS resource types the example does not use, through plan and apply against moto_server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.agent_process import MotoProcess
from tests.conftest import run_opsgit, write_tree

MODULE = """\
variables:
  instance_type: {type: string}
---
resources:
  aws_launch_template.app:
    name: app-template
    image_id: ami-12c6146b
    instance_type: "{{ var.instance_type }}"
    user_data: "#!/bin/sh\\necho app"
    tags: {Role: app}
"""


def run(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit(*args, cwd=repo, env=env, timeout=120)


def test_launch_template_versions_on_change(tmp_path: Path, dev_env: dict[str, str], fresh_moto: MotoProcess) -> None:
    repo = write_tree(tmp_path / "ops", {
        "environments/t/env.yaml": "providers: {aws: {region: us-east-1}}\nmodules:\n  app:\n    source: app\n"
                                   "    inputs: {instance_type: t3.micro}\n",
        "modules/app/module.yaml": MODULE})
    assert run(repo, dev_env, "apply", "--env", "t", "--auto-approve").returncode == 0
    assert run(repo, dev_env, "plan", "--env", "t", "--detailed-exitcode").returncode == 0
    (repo / "environments/t/env.yaml").write_text((repo / "environments/t/env.yaml").read_text()
                                                  .replace("t3.micro", "t3.small"))
    plan = json.loads(run(repo, dev_env, "plan", "--env", "t", "--json").stdout)
    assert [c["change"]["actions"] for c in plan["resource_changes"] if c["change"]["actions"] != ["no-op"]] == [
        ["update"]]
    assert run(repo, dev_env, "apply", "--env", "t", "build/plans/t.plan.json").returncode == 0
    state = json.loads((repo / ".opsgit/state/t.json").read_text())
    template = state["resources"][0]["attributes"]
    assert template["instance_type"] == "t3.small" and template["latest_version"] == 2
    assert run(repo, dev_env, "plan", "--env", "t", "--detailed-exitcode").returncode == 0
