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
    client.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "renamed-by-hand"}])  # type: ignore[attr-defined]
    drift = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root, timeout=300)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert '"renamed-by-hand"} -> {"Name": "plugin-test"}' in drift.stdout and "1 to change" in drift.stdout


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
