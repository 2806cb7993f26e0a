"""A first apply killed after a create but before its journal line (deterministic, so it runs in
`make test`): the next apply adopts the object instead of creating it again, because the state's
lineage — which every idempotency token derives from — was on disk before the first create.
What exists is read from moto with boto3, not through opsgit."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.agent_process import MotoProcess, wait_for
from tests.conftest import run_opsgit, start_opsgit, write_tree

ENV = "providers:\n  aws: {region: us-east-1}\nmodules:\n  net: {source: net}\n"
SETTLE = "  time_sleep.settle:\n    create_duration: 60s\n"


def aws(moto: MotoProcess, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


# Each type opsgit creates on AWS: its block, and how many such objects moto holds (read with boto3).
TYPES: dict[str, tuple[str, Callable[[MotoProcess], int]]] = {
    "aws_route53_zone": ("{name: crash.ops.internal}", lambda moto: sum(
        z["Name"] == "crash.ops.internal." for z in aws(moto, "route53").list_hosted_zones()["HostedZones"])),
    "aws_security_group": ("{name: crash-sg, description: crash}", lambda moto: len(aws(moto, "ec2")
        .describe_security_groups(Filters=[{"Name": "group-name", "Values": ["crash-sg"]}])["SecurityGroups"])),
    "aws_s3_bucket": ("{bucket: crash-bucket}", lambda moto: sum(
        b["Name"] == "crash-bucket" for b in aws(moto, "s3").list_buckets()["Buckets"])),
    "aws_instance": ("{ami: ami-12c6146b, instance_type: t3.micro, tags: {Name: crash}}", lambda moto: sum(
        len(r["Instances"]) for r in aws(moto, "ec2").describe_instances(Filters=[
            {"Name": "tag:Name", "Values": ["crash"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"])),
    "aws_launch_configuration": ("{name: crash-lc, image_id: ami-12c6146b, instance_type: t3.micro}",
                                 lambda moto: sum(c["LaunchConfigurationName"].startswith("crash-lc") for c in
                                                  aws(moto, "autoscaling").describe_launch_configurations()[
                                                      "LaunchConfigurations"])),
}


def journal_lines(root: Path) -> list[dict[str, object]]:
    path = root / ".opsgit/state/t.journal"
    lines = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_a_first_apply_killed_between_create_and_journal_creates_nothing_twice(kind: str, tmp_path: Path,
                                                                               moto: MotoProcess) -> None:
    block, count = TYPES[kind]
    requests.post(moto.url + "/moto-api/reset", timeout=10)
    env = {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    module = f"resources:\n  {kind}.crash: {block}\n"
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/net/module.yaml": module + SETTLE})
    first = start_opsgit("apply", "--env", "t", "--auto-approve", cwd=root, extra=env)
    created = f"module.net.{kind}.crash"
    wait_for(lambda: any(e["address"] == created for e in journal_lines(root)), timeout=60)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert count(moto) == 1
    # The crash a moment earlier: the object exists, its journal line does not.
    journal = root / ".opsgit/state/t.journal"
    journal.write_text("".join(json.dumps(e) + "\n" for e in journal_lines(root) if e["address"] != created))
    (root / "modules/net/module.yaml").write_text(module)
    again = run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root, extra=env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert count(moto) == 1  # adopted (by name, CallerReference or token tag), not created a second time
    state = json.loads((root / ".opsgit/state/t.json").read_text())
    assert created in {r["address"] for r in state["resources"]}
    assert run_opsgit("plan", "--env", "t", "--detailed-exitcode", cwd=root, extra=env).returncode == 0
