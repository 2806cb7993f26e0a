"""The example's dev environment planned and applied for real: moto_server as the AWS API and the
dev agent as Consul, both real processes; results checked with plain boto3 and the KV API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest
import requests

from tests.agent_process import AgentProcess, MotoProcess, start_moto
from tests.conftest import run_opsgit, start_opsgit, without_global


def opsgit(ops: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit(*args, cwd=ops, env=env, timeout=300)


def client(env: dict[str, str], service: str, region: str = "us-east-1") -> object:
    return boto3.client(service, region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_apply_dev_then_plan_is_empty(global_applied: Path, ops: Path, dev_env: dict[str, str], fresh_moto: MotoProcess,
                                      consul_agent: AgentProcess) -> None:
    applied = opsgit(ops, dev_env, "apply", "--env", "dev", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete! Resources: 18 added, 0 changed, 0 destroyed." in applied.stdout
    ec2, autoscaling = client(dev_env, "ec2"), client(dev_env, "autoscaling")
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["dev-allow-all"]}])  # type: ignore[attr-defined]
    assert len(groups["SecurityGroups"]) == 1
    asgs = {g["AutoScalingGroupName"]: g for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}  # type: ignore[attr-defined]
    assert asgs["binstore-dev-blue"]["MinSize"] == 1 and asgs["binstore-dev-green"]["MaxSize"] == 0
    configurations = autoscaling.describe_launch_configurations()["LaunchConfigurations"]  # type: ignore[attr-defined]
    assert sorted(c["LaunchConfigurationName"].rsplit("-", 1)[0] for c in configurations) == [
        "binstore-dev-blue", "binstore-dev-green"]
    west = client(dev_env, "ec2", "us-west-2").describe_instances(  # type: ignore[attr-defined]
        Filters=[{"Name": "tag:Role", "Values": ["web"]}])["Reservations"]
    assert len(west) == 1
    redis_ip = json.loads((ops / ".opsgit/state/dev.json").read_text())["outputs"]["redis_address"]["value"]
    stored = requests.get(f"{consul_agent.url}/v1/kv/service/binstore/redis_addr?raw").text
    assert stored == redis_ip and redis_ip.endswith(":6379")
    again = opsgit(ops, dev_env, "plan", "--env", "dev", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes. Your infrastructure matches the configuration." in again.stdout
    reapply = opsgit(ops, dev_env, "apply", "--env", "dev", "--auto-approve")
    assert "Apply complete! Resources: 0 added, 0 changed, 0 destroyed." in reapply.stdout or \
        "No changes." in reapply.stdout


def test_blue_green_and_force_new_and_drift(global_applied: Path, ops: Path, dev_env: dict[str, str],
                                            fresh_moto: MotoProcess) -> None:
    assert opsgit(ops, dev_env, "apply", "--env", "dev", "--auto-approve").returncode == 0
    env_file = ops / "environments/dev/env.yaml"
    edit(env_file, "nodes_blue: 1", "nodes_blue: 2")
    planned = opsgit(ops, dev_env, "plan", "--env", "dev", "--json")
    changes = [c for c in json.loads(planned.stdout)["resource_changes"] if c["change"]["actions"] != ["no-op"]]
    assert [(c["address"], c["change"]["actions"]) for c in changes] == [
        ("module.binstore.aws_autoscaling_group.blue", ["update"])]
    before, after = changes[0]["change"]["before"], changes[0]["change"]["after"]
    assert sorted(k for k in after if after[k] != before.get(k)) == ["desired_capacity", "max_size", "min_size"]
    assert opsgit(ops, dev_env, "apply", "--env", "dev", "build/plans/dev.plan.json").returncode == 0

    edit(env_file, "  instance_type: t3.micro", "  instance_type: t3.small")
    text = opsgit(ops, dev_env, "plan", "--env", "dev").stdout
    assert "+/- resource \"aws_launch_configuration\" \"blue\"" in text
    assert '~ instance_type   = "t3.micro" -> "t3.small"  # forces replacement' in text
    assert "Plan: 2 to add, 2 to change, 2 to destroy." in text
    assert opsgit(ops, dev_env, "apply", "--env", "dev", "build/plans/dev.plan.json").returncode == 0
    names = [c["LaunchConfigurationName"] for c in client(dev_env, "autoscaling")  # type: ignore[attr-defined]
             .describe_launch_configurations()["LaunchConfigurations"]]
    assert len(names) == 2  # the old ones were destroyed after their groups moved on

    client(dev_env, "autoscaling").update_auto_scaling_group(  # type: ignore[attr-defined]
        AutoScalingGroupName="binstore-dev-blue", MinSize=0)
    drift = opsgit(ops, dev_env, "drift", "--env", "dev")
    assert drift.returncode == 2
    assert "module.binstore.aws_autoscaling_group.blue has changed" in drift.stdout
    assert "~ min_size = 2 -> 0" in drift.stdout
    restore = opsgit(ops, dev_env, "plan", "--env", "dev").stdout
    assert "~ min_size             = 0 -> 2" in restore and "Plan: 0 to add, 1 to change, 0 to destroy." in restore


def test_saved_plan_is_refused_once_the_state_moved_on(global_applied: Path, ops: Path, dev_env: dict[str, str],
                                                        fresh_moto: MotoProcess) -> None:
    assert opsgit(ops, dev_env, "plan", "--env", "dev", "--out", "first.json").returncode == 0
    assert opsgit(ops, dev_env, "apply", "--env", "dev", "first.json").returncode == 0
    twice = opsgit(ops, dev_env, "apply", "--env", "dev", "first.json")
    assert twice.returncode == 1
    assert "saved plan is stale" in twice.stderr or "does not match the state" in twice.stderr
    assert "Creating" not in twice.stdout
    edit(ops / "environments/dev/env.yaml", "nodes_green: 0", "nodes_green: 1")
    changed = opsgit(ops, dev_env, "apply", "--env", "dev", "build/plans/dev.plan.json")
    assert changed.returncode == 1


def test_provider_errors_name_the_address_and_keep_the_state_consistent(ops: Path, tmp_path: Path,
                                                                        dev_env: dict[str, str]) -> None:
    strict = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # moto refuses unknown credentials
    without_global(ops)  # its state could not be read there either
    try:
        env = {**dev_env, "AWS_ENDPOINT_URL": strict.url}
        failed = opsgit(ops, env, "apply", "--env", "dev", "--auto-approve")
        assert failed.returncode == 1
        assert "Error: module.network.aws_security_group.allow_all: AuthFailure: AWS was not able to validate" \
            in failed.stdout
        assert "Apply stopped" in failed.stdout and "Traceback" not in failed.stdout + failed.stderr
        state = json.loads((ops / ".opsgit/state/dev.json").read_text())
        assert all(r["provider"] == "consul" for r in state["resources"])  # only what really happened
        assert not (ops / ".opsgit/state/dev.journal").exists()
    finally:
        strict.stop()


@pytest.mark.slow  # kill trials against moto: `make test-slow`
@pytest.mark.parametrize("delay", [0.5, 1.2, 2.0])
def test_sigkill_during_apply_resumes_without_duplicates(global_applied: Path, ops: Path, dev_env: dict[str, str],
                                                         fresh_moto: MotoProcess, delay: float) -> None:
    import signal
    import time

    process = start_opsgit("apply", "--env", "dev", "--auto-approve", "--parallelism", "2", cwd=ops, env=dev_env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = opsgit(ops, dev_env, "apply", "--env", "dev", "--auto-approve")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert opsgit(ops, dev_env, "plan", "--env", "dev", "--detailed-exitcode").returncode == 0
    ec2 = client(dev_env, "ec2")
    assert len(ec2.describe_security_groups(  # type: ignore[attr-defined]
        Filters=[{"Name": "group-name", "Values": ["dev-allow-all"]}])["SecurityGroups"]) == 1
    live = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]  # type: ignore[attr-defined]
            if i["State"]["Name"] == "running"]
    assert len(live) == 1 + 2  # redis in us-east-1 (+ binstore blue's ASG instance)
    assert len(client(dev_env, "autoscaling").describe_launch_configurations()  # type: ignore[attr-defined]
               ["LaunchConfigurations"]) == 2


def test_dev_with_the_s3_state_backend(global_applied: Path, ops: Path, dev_env: dict[str, str],
                                       fresh_moto: MotoProcess) -> None:
    s3 = client(dev_env, "s3")
    s3.create_bucket(Bucket="ops-state")  # type: ignore[attr-defined]
    s3.put_bucket_versioning(Bucket="ops-state", VersioningConfiguration={"Status": "Enabled"})  # type: ignore[attr-defined]
    edit(ops / "environments/dev/env.yaml", "state:\n  backend: local",
         "state:\n  backend: s3\n  bucket: ops-state\n  key: dev/state.json")
    assert opsgit(ops, dev_env, "apply", "--env", "dev", "--auto-approve").returncode == 0
    stored = json.loads(s3.get_object(Bucket="ops-state", Key="dev/state.json")["Body"].read())  # type: ignore[attr-defined]
    assert len(stored["resources"]) == 18 and not (ops / ".opsgit/state/dev.json").exists()
    assert opsgit(ops, dev_env, "plan", "--env", "dev", "--detailed-exitcode").returncode == 0


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is installed by `make test`")
def test_a_promoted_image_moves_only_the_green_launch_configuration(global_applied: Path, ops: Path,
                                                                   dev_env: dict[str, str],
                                                                   fresh_moto: MotoProcess) -> None:
    applied = opsgit(ops, dev_env, "apply", "--env", "dev", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    promoted = opsgit(ops, {**dev_env, "HC_ROLE": "binstore"}, "image", "--env", "dev", "--promote")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    image_id = next(line.split()[-1] for line in promoted.stdout.splitlines() if line.startswith("Promoted:"))
    planned = opsgit(ops, dev_env, "plan", "--env", "dev", "--json")
    assert planned.returncode == 0, planned.stderr
    changes = {c["address"]: c["change"]["actions"] for c in json.loads(planned.stdout)["resource_changes"]
               if c["change"]["actions"] != ["no-op"]}
    assert changes == {"module.binstore.aws_launch_configuration.green": ["create", "delete"],
                       "module.binstore.aws_autoscaling_group.green": ["update"]}
    green = next(c for c in json.loads(planned.stdout)["resource_changes"]
                 if c["address"] == "module.binstore.aws_launch_configuration.green")
    assert green["change"]["after"]["image_id"] == image_id
