"""On the same configuration and the same provider binary, opsgit's planned values equal
Terraform's: `terraform show -json` of its saved plan against `opsgit plan --json`, resource by
resource (where a `terraform` binary and the aws provider are on this machine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_opsgit
from tests.plugin.test_aws_provider import FOUND, MIRROR, VERSION, moto, repo  # noqa: F401 (the fixture)

TERRAFORM = shutil.which("terraform")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(FOUND is None or TERRAFORM is None,
                                                   reason="needs terraform on PATH and hashicorp/aws in a mirror")]

MAIN_TF = """terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "{version}" }}
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
resource "aws_vpc" "main" {{
  cidr_block = "10.50.0.0/16"
  enable_dns_hostnames = true
  tags = {{ Name = "parity" }}
}}
resource "aws_subnet" "a" {{
  vpc_id = aws_vpc.main.id
  cidr_block = "10.50.1.0/24"
  availability_zone = "us-east-1a"
}}
resource "aws_security_group" "web" {{
  name = "parity-web"
  description = "parity"
  vpc_id = aws_vpc.main.id
}}
"""
MODULE = """resources:
  aws_vpc.main:
    cidr_block: 10.50.0.0/16
    enable_dns_hostnames: true
    tags: {Name: parity}
  aws_subnet.a:
    vpc_id: ${aws_vpc.main.id}
    cidr_block: 10.50.1.0/24
    availability_zone: us-east-1a
  aws_security_group.web:
    name: parity-web
    description: parity
    vpc_id: ${aws_vpc.main.id}
"""
def planned(changes: list[dict[str, object]], strip: str = "") -> dict[str, dict[str, object]]:
    return {str(c["address"]).removeprefix(strip): c["change"] for c in changes}  # type: ignore[misc]


def test_opsgit_plans_the_values_terraform_plans(tmp_path: Path, moto) -> None:  # noqa: F811
    tf = tmp_path / "tf"
    tf.mkdir()
    (tf / "main.tf").write_text(MAIN_TF.format(version=VERSION, url=moto.url))
    rc = tmp_path / "terraformrc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    for command in (["init", "-input=false"], ["plan", "-input=false", "-out=tf.plan"]):
        subprocess.run([str(TERRAFORM), *command, "-no-color"], cwd=tf, env=env, check=True, capture_output=True)
    shown = json.loads(subprocess.run([str(TERRAFORM), "show", "-json", "tf.plan"], cwd=tf, env=env, check=True,
                                      capture_output=True, text=True).stdout)
    result = run_opsgit("plan", "--env", "dev", "--json", cwd=repo(tmp_path, moto, MODULE), timeout=300)
    assert result.returncode == 0, result.stderr
    ours = planned(json.loads(result.stdout)["resource_changes"], "module.vpc.")
    theirs = planned(shown["resource_changes"])
    assert sorted(ours) == sorted(theirs) == ["aws_security_group.web", "aws_subnet.a", "aws_vpc.main"]
    for address, change in theirs.items():
        assert ours[address]["actions"] == change["actions"], address
        unknown_theirs = {k for k, v in change["after_unknown"].items() if v is True}  # type: ignore[union-attr]
        unknown_ours = {k for k, v in ours[address]["after_unknown"].items() if v is True}  # type: ignore[union-attr]
        assert unknown_ours == unknown_theirs, (address, unknown_ours ^ unknown_theirs)
        known_theirs = {k: v for k, v in change["after"].items() if k not in unknown_theirs}  # type: ignore[union-attr]
        known_ours = {k: v for k, v in ours[address]["after"].items() if k not in unknown_ours}  # type: ignore[union-attr]
        assert known_ours == known_theirs, address
        # the same format, to the nesting: what is unknown and what is sensitive, leaf by leaf
        assert ours[address]["after_unknown"] == change["after_unknown"], address
        assert ours[address]["after_sensitive"] == change["after_sensitive"], address
        assert ours[address]["before_sensitive"] == change["before_sensitive"], address
