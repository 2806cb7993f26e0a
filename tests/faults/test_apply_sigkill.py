"""SIGKILL of `opsgit apply` at random points: the state stays valid, its serial never goes back,
no cloud resource is duplicated, and the next apply converges."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import boto3
import pytest
import requests

from opsgit.engine.backends.local import LocalBackend
from tests.agent_process import MotoProcess
from tests.conftest import start_opsgit, write_tree
from tests.faults.conftest import record, trials

# Fault trials: `make test-slow` and `make test-faults` run them.
pytestmark = pytest.mark.slow

NODES = 6
ENV = """\
providers:
  aws: {region: us-east-1}
modules:
  app:
    source: app
    inputs: {name: faults}
"""
MODULE = f"""\
variables:
  name: {{type: string}}
---
resources:
  aws_security_group.app:
    name: "{{{{ var.name }}}}-sg"
    description: fault trials
  aws_instance.node:
    count: {NODES}
    ami: ami-12c6146b
    instance_type: t3.micro
    vpc_security_group_ids: ["${{aws_security_group.app.id}}"]
    tags: {{Name: "{{{{ var.name }}}}-${{count.index}}", Trial: "{{{{ var.name }}}}"}}
  null_resource.step:
    count: 20
    triggers: {{group: "${{aws_security_group.app.id}}", index: "${{count.index}}"}}
outputs:
  ids: ${{aws_instance.node[*].id}}
"""


def opsgit(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return start_opsgit(*args, cwd=root, env=env)


def test_sigkill_during_apply_loses_nothing_and_duplicates_nothing(tmp_path: Path, moto: MotoProcess) -> None:
    runs = trials(3)
    killed = duplicates = 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSGIT_"))}
    env.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1"})
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    rng = random.Random(1234)
    for trial in range(runs):
        requests.post(moto.url + "/moto-api/reset", timeout=10)
        root = write_tree(tmp_path / f"trial{trial}", {"environments/t/env.yaml": ENV,
                                                       "modules/app/module.yaml": MODULE})
        serials = [0]
        for attempt in range(3):  # up to three kills in one trial, each at a random moment
            process = opsgit(root, env, "apply", "--env", "t", "--auto-approve", "--parallelism", "4")
            time.sleep(rng.uniform(0.4, 2.5))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.communicate()
            state = LocalBackend({}, "t", root).load()  # must replay: never a torn or invalid state
            assert state.serial >= serials[-1], (trial, attempt, state.serial, serials)
            serials.append(state.serial)
        final = opsgit(root, env, "apply", "--env", "t", "--auto-approve")
        out, err = final.communicate()
        assert final.returncode == 0, out + err
        plan = opsgit(root, env, "plan", "--env", "t", "--detailed-exitcode")
        out, err = plan.communicate()
        assert plan.returncode == 0, out + err
        running = [i for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])[
            "Reservations"] for i in r["Instances"]]
        duplicates += len(running) - NODES
        assert len(running) == NODES, f"trial {trial}: {len(running)} instances for {NODES} nodes"
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["faults-sg"]}])
        assert len(groups["SecurityGroups"]) == 1
        assert len(LocalBackend({}, "t", root).load().resources) == NODES + 1 + 20
    record("SIGKILL of `opsgit apply` (6 EC2 instances, 1 security group, 20 null resources; up to 3 kills "
           "per trial at random moments)", trials=runs, faults=killed, lost=duplicates,
           note="state replayed valid after every kill; serial never went back; next apply converged")
