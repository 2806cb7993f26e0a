"""The real hashicorp/aws provider, driven by opsgit against moto_server, checked with boto3.

Runs where the provider binary is in a filesystem mirror: the usual Terraform places, or the
directory in OPSGIT_TEST_PROVIDER_MIRROR (default /opt/tf-plugins, where this machine keeps it).
Elsewhere the tests are skipped with what was looked for."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from opsgit.plugin import discovery
from tests.agent_process import MotoProcess, start_moto
from tests.conftest import run_opsgit, write_tree

VERSION = "5.100.0"
MIRROR = Path(os.environ.get("OPSGIT_TEST_PROVIDER_MIRROR", "/opt/tf-plugins"))


def find_aws() -> discovery.Found | None:
    try:
        return discovery.find(discovery.parse_source("hashicorp/aws"), VERSION, Path.cwd(), (MIRROR,))
    except Exception:
        return None


FOUND = find_aws()
pytestmark = pytest.mark.skipif(
    FOUND is None, reason=f"hashicorp/aws {VERSION} not found in {MIRROR} or Terraform's mirror directories "
                          "(set OPSGIT_TEST_PROVIDER_MIRROR)")

ENV = """providers:
  aws:
    source: hashicorp/aws
    version: {version}
    region: us-east-1
    access_key: test
    secret_key: test
    skip_credentials_validation: true
    skip_requesting_account_id: true
    skip_metadata_api_check: "true"
    endpoints:
      - {{ec2: "{url}", iam: "{url}", sts: "{url}", elbv2: "{url}"}}
modules:
  vpc:
    source: vpc
"""
MODULE = """resources:
  aws_vpc.main:
    cidr_block: 10.20.0.0/16
    tags: {Name: plugin-test}
  aws_subnet.a:
    vpc_id: ${aws_vpc.main.id}
    cidr_block: 10.20.1.0/24
    availability_zone: us-east-1a
  aws_internet_gateway.gw:
    vpc_id: ${aws_vpc.main.id}
outputs:
  vpc_id: ${aws_vpc.main.id}
"""


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    server = start_moto()
    yield server
    server.stop()


def ec2(moto: MotoProcess) -> object:
    return boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


def repo(tmp_path: Path, moto: MotoProcess, module: str = MODULE) -> Path:
    return write_tree(tmp_path / "ops", {
        "pyproject.toml": f'[tool.opsgit]\nplugin_dirs = ["{MIRROR}"]\n',
        "environments/dev/env.yaml": ENV.format(version=VERSION, url=moto.url),
        "modules/vpc/module.yaml": module})


def test_the_aws_provider_applies_replans_clean_and_plans_back_a_change_made_outside(
        tmp_path: Path, moto: MotoProcess) -> None:
    root = repo(tmp_path, moto)
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in applied.stdout
    client = ec2(moto)
    vpcs = [v for v in client.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.20.0.0/16"]  # type: ignore[attr-defined]
    assert len(vpcs) == 1 and {"Key": "Name", "Value": "plugin-test"} in vpcs[0]["Tags"]
    vpc_id = vpcs[0]["VpcId"]
    subnets = client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]  # type: ignore[attr-defined]
    assert [s["CidrBlock"] for s in subnets] == ["10.20.1.0/24"]
    gateways = client.describe_internet_gateways()["InternetGateways"]  # type: ignore[attr-defined]
    assert [g["Attachments"][0]["VpcId"] for g in gateways] == [vpc_id]
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr
    from tests.plugin.test_plugin_sigkill import witnesses

    assert witnesses(root / ".opsgit/receipts") == []  # the provider ended with opsgit, not seconds after
    client.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "renamed-by-hand"}])  # type: ignore[attr-defined]
    drift = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert '~ Name = "renamed-by-hand" -> "plugin-test"' in drift.stdout and "1 to change" in drift.stdout


@pytest.mark.slow
def test_import_adopts_a_vpc_made_outside_opsgit(tmp_path: Path, moto: MotoProcess) -> None:
    client = ec2(moto)
    vpc_id = client.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]  # type: ignore[attr-defined]
    client.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "plugin-test"}])  # type: ignore[attr-defined]
    module = "resources:\n  aws_vpc.main:\n    cidr_block: 10.30.0.0/16\n    tags: {Name: plugin-test}\n"
    root = repo(tmp_path, moto, module)
    imported = run_opsgit("import", "--env", "dev", "module.vpc.aws_vpc.main", vpc_id, cwd=root, timeout=300)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    plan = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300)
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr


@pytest.mark.slow
def test_native_types_beside_the_plugins(tmp_path: Path, moto: MotoProcess) -> None:
    """`native: [aws_security_group]`: that type through opsgit's own code (its batched refresh),
    the VPC through the plugin, in one plan; then the group moved to the plugin and back with
    `opsgit state migrate`, each time with a clean plan and still one group."""
    module = ("resources:\n  aws_vpc.main:\n    cidr_block: 10.60.0.0/16\n"
              "  aws_security_group.web:\n    name: native-web\n    description: native\n"
              "    vpc_id: ${aws_vpc.main.id}\n")
    root = repo(tmp_path, moto, module)
    env = root / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    region: us-east-1\n", "    region: us-east-1\n"
                                           "    native: [aws_security_group]\n", 1))
    aws = {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root, timeout=300, extra=aws)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    state = {r["address"]: r for r in __import__("json").loads((root / ".opsgit/state/dev.json").read_text())
             ["resources"]}
    assert "schema_version" in state["module.vpc.aws_vpc.main"]          # the plugin's
    assert "schema_version" not in state["module.vpc.aws_security_group.web"]  # opsgit's own
    groups = ec2(moto).describe_security_groups(GroupNames=["native-web"])["SecurityGroups"]  # type: ignore[attr-defined]
    assert groups[0]["VpcId"] == state["module.vpc.aws_vpc.main"]["id"]

    # `native:` taken away: the group is now the plugin's to manage, moved explicitly.
    group = "module.vpc.aws_security_group.web"
    env.write_text(env.read_text().replace("    native: [aws_security_group]\n", ""))
    refused = run_opsgit("plan", "--env", "dev", cwd=root, timeout=300, extra=aws)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"opsgit state migrate --env ENV {group}" in refused.stderr, refused.stderr
    migrated = run_opsgit("state", "migrate", "--env", "dev", group, cwd=root, timeout=300, extra=aws)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"{group}: now managed by the provider plugin [id={groups[0]['GroupId']}]" in migrated.stdout
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300, extra=aws)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr
    # and back to opsgit's own code
    env.write_text(env.read_text().replace("    region: us-east-1\n", "    region: us-east-1\n"
                                           "    native: [aws_security_group]\n", 1))
    back = run_opsgit("state", "migrate", "--env", "dev", group, cwd=root, timeout=300, extra=aws)
    assert back.returncode == 0 and "now managed by opsgit's native code" in back.stdout, back.stdout + back.stderr
    final = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300, extra=aws)
    assert final.returncode == 0 and "No changes." in final.stdout, final.stdout + final.stderr
    assert len(ec2(moto).describe_security_groups(GroupNames=["native-web"])["SecurityGroups"]) == 1  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_examples_cloud_environment_applies_with_the_provider(tmp_path: Path, moto: MotoProcess) -> None:
    """environments/cloud as `make demo-cloud` runs it: a VPC, public subnets, an internet
    gateway and routes, an application load balancer in front of binstore's autoscaling group,
    an IAM instance profile; then a clean second plan. Read back with boto3."""
    from tests.conftest import copy_example

    root = copy_example(tmp_path / "ops")
    # As `make demo-cloud` runs it: the endpoint and credentials from the environment, as every
    # AWS SDK reads them; env.yaml names no port.
    extra = {"TF_PLUGIN_CACHE_DIR": str(MIRROR), "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test",
             "AWS_SECRET_ACCESS_KEY": "test"}
    applied = run_opsgit("apply", "--env", "cloud", "--auto-approve", cwd=root, timeout=600, extra=extra)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete! Resources: 15 added, 0 changed, 0 destroyed." in applied.stdout
    elb = boto3.client("elbv2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    [balancer] = elb.describe_load_balancers(Names=["binstore-cloud"])["LoadBalancers"]
    assert f'binstore_address = "{balancer["DNSName"]}"' in applied.stdout
    autoscaling = boto3.client("autoscaling", endpoint_url=moto.url, region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test")
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["binstore-cloud"])["AutoScalingGroups"]
    [target_group] = elb.describe_target_groups(Names=["binstore-cloud"])["TargetGroups"]
    assert group["TargetGroupARNs"] == [target_group["TargetGroupArn"]]
    again = run_opsgit("plan", "--env", "cloud", "--detailed-exitcode", cwd=root, timeout=300, extra=extra)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr


def test_auto_mtls_with_the_real_provider(tmp_path: Path, moto: MotoProcess) -> None:
    """`auto_mtls: true`: opsgit sends a client certificate, so the provider (go-plugin) serves
    only TLS with its P-521 certificate; the plan and apply must still work. A wrapper in front
    of the binary records what it was given."""
    assert FOUND is not None
    mirror = tmp_path / "mirror"
    package = mirror / "registry.terraform.io/hashicorp/aws" / VERSION / discovery.platform_dir()
    package.mkdir(parents=True)
    given = tmp_path / "client-cert.pem"
    wrapper = package / f"terraform-provider-aws_v{VERSION}_x5"
    wrapper.write_text(f'#!/bin/sh\nprintf %s "$PLUGIN_CLIENT_CERT" > {given}\nexec {FOUND.binary} "$@"\n')
    wrapper.chmod(0o755)
    module = "resources:\n  aws_vpc.main:\n    cidr_block: 10.70.0.0/16\n    tags: {Name: mtls-test}\n"
    root = repo(tmp_path, moto, module)
    (root / "pyproject.toml").write_text(f'[tool.opsgit]\nplugin_dirs = ["{mirror}"]\n')
    env = root / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    region: us-east-1\n", "    region: us-east-1\n    auto_mtls: true\n"))
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert given.read_text().startswith("-----BEGIN CERTIFICATE-----")
    vpcs = [v for v in ec2(moto).describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.70.0.0/16"]  # type: ignore[attr-defined]
    assert len(vpcs) == 1


def _kill_while_creating(root: Path, address: str, delay: float) -> None:
    """`opsgit apply` SIGKILLed `delay` seconds after it says it is creating `address`."""
    import signal
    import subprocess
    import time

    from tests.conftest import OPSGIT, opsgit_environment

    apply = subprocess.Popen([*OPSGIT, "apply", "--env", "dev", "--auto-approve"], cwd=root,
                             env=opsgit_environment(None, None), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    assert apply.stdout is not None
    for line in apply.stdout:
        if f"{address}: Creating..." in line:
            time.sleep(delay)
            break
    apply.send_signal(signal.SIGKILL)
    apply.wait()
    apply.stdout.close()


def _sigkill_trial(tmp_path: Path, moto: MotoProcess, cidr: int, address: str, delay: float) -> None:
    module = MODULE.replace("10.20.", f"10.{cidr}.")
    root = repo(tmp_path, moto, module)
    _kill_while_creating(root, address, delay)
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    client = ec2(moto)
    vpcs = [v for v in client.describe_vpcs()["Vpcs"] if v["CidrBlock"] == f"10.{cidr}.0.0/16"]  # type: ignore[attr-defined]
    assert len(vpcs) == 1, vpcs
    subnets = client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]  # type: ignore[attr-defined]
    gateways = [g for g in client.describe_internet_gateways()["InternetGateways"]  # type: ignore[attr-defined]
                if any(a["VpcId"] == vpcs[0]["VpcId"] for a in g["Attachments"])]
    assert len(subnets) == 1 and len(gateways) == 1, (subnets, gateways)
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr


def test_sigkill_mid_apply_then_apply_leaves_no_duplicates(tmp_path: Path, moto: MotoProcess) -> None:
    """Killed while the provider creates the subnet; the apply after it finishes the rest, and
    boto3 finds one of each."""
    _sigkill_trial(tmp_path, moto, 80, "module.vpc.aws_subnet.a", 0.05)


@pytest.mark.slow
@pytest.mark.parametrize(("cidr", "address", "delay"), [
    (81, "module.vpc.aws_vpc.main", 0.0), (82, "module.vpc.aws_vpc.main", 0.03),
    (83, "module.vpc.aws_vpc.main", 0.1), (84, "module.vpc.aws_internet_gateway.gw", 0.02),
    (85, "module.vpc.aws_subnet.a", 0.2)])
def test_sigkill_at_other_moments_leaves_no_duplicates(tmp_path: Path, moto: MotoProcess, cidr: int, address: str,
                                                       delay: float) -> None:
    _sigkill_trial(tmp_path, moto, cidr, address, delay)


def test_every_native_attribute_is_the_providers_own(tmp_path: Path) -> None:
    """opsgit's native aws types name and shape their attributes as hashicorp/aws does: each is
    an attribute or block of the provider's schema (but `region`, opsgit's per-resource region,
    listed in docs/reference.md), and a block of the provider's is a list of objects in the
    example's configuration."""
    import tempfile

    from opsgit.plugin.client import ProviderClient
    from opsgit.plugin.process import PluginProcess
    from opsgit.providers.aws import make
    from opsgit.workspace import open_workspace
    from tests.conftest import copy_example

    assert FOUND is not None
    process = PluginProcess("aws", FOUND.binary, Path(tempfile.mkdtemp()) / "receipts")
    try:
        schema = ProviderClient("aws", process, tmp_path / "cache", discovery.package_hash(FOUND.package)).schema
        native = make({"region": "us-east-1"})
        graph = open_workspace("prod", copy_example(tmp_path / "ops")).graph
        for type_name, kind in native.resource_types.items():
            block = schema.resource(type_name).block
            theirs = set(block.attributes) | set(block.blocks)
            assert set(kind.schema.fields) - theirs <= {"region"}, (type_name, set(kind.schema.fields) - theirs)
            for resource in (r for r in graph.resources.values() if r.type == type_name):
                for name in set(resource.attributes) & set(block.blocks):
                    value = resource.attributes[name]
                    assert isinstance(value, list) and all(isinstance(v, dict) for v in value), (resource.address, name)
    finally:
        process.stop()
