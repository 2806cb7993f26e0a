"""The hashicorp/aws provider's shapes for opsgit's native aws types, and repositories written
before them: the old forms (`versioning: true`, an autoscaling group's `tags` list) still plan
and apply for one release with a deprecation warning naming the file, the line and the new
form; a state written in the old shapes is migrated when it is read. Checked with boto3."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from tests.conftest import run_opsgit, write_tree

ENV = "providers: {aws: {region: us-east-1}}\nmodules:\n  app:\n    source: app\n"
OLD = """resources:
  aws_s3_bucket.data:
    bucket: shapes-data
    versioning: true
  aws_autoscaling_group.web:
    name: shapes-web
    launch_configuration: ${aws_launch_configuration.web.name}
    min_size: 0
    max_size: 0
    availability_zones: [us-east-1a]
    tags:
      - {key: Environment, value: t, propagate_at_launch: true}
  aws_launch_configuration.web:
    name: shapes-web
    image_id: ami-12c6146b
    instance_type: t3.micro
"""
NEW = OLD.replace("versioning: true", "versioning: [{enabled: true}]").replace("    tags:\n", "    tag:\n")


def test_old_forms_warn_apply_and_migrate(tmp_path: Path, dev_env: dict[str, str], fresh_moto: object) -> None:
    repo = write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/app/module.yaml": OLD})
    planned = run_opsgit("plan", "--env", "t", cwd=repo, env=dev_env)
    assert planned.returncode == 0, planned.stderr
    assert "modules/app/module.yaml:2: aws_s3_bucket: this form of `versioning` is deprecated" in planned.stderr
    assert "versioning: [{enabled: true}]" in planned.stderr
    assert "modules/app/module.yaml:5: aws_autoscaling_group: `tags` is deprecated" in planned.stderr
    assert "write `tag`" in planned.stderr
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=repo, env=dev_env).returncode == 0
    clients = {"endpoint_url": dev_env["AWS_ENDPOINT_URL"], "region_name": "us-east-1",
               "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    assert boto3.client("s3", **clients).get_bucket_versioning(Bucket="shapes-data")["Status"] == "Enabled"
    [group] = boto3.client("autoscaling", **clients).describe_auto_scaling_groups(
        AutoScalingGroupNames=["shapes-web"])["AutoScalingGroups"]
    assert {"Key": "Environment", "Value": "t"}.items() <= group["Tags"][0].items()

    # A state written by the old code: its shapes migrate when it is read.
    state_file = repo / ".opsgit/state/t.json"
    state = json.loads(state_file.read_text())
    for resource in state["resources"]:
        attributes = resource["attributes"]
        if resource["type"] == "aws_s3_bucket":
            attributes["versioning"] = True
        elif resource["type"] == "aws_autoscaling_group":
            attributes["tags"] = attributes.pop("tag")
    state_file.write_text(json.dumps(state))
    (repo / "modules/app/module.yaml").write_text(NEW)
    again = run_opsgit("plan", "--env", "t", "--detailed-exitcode", cwd=repo, env=dev_env)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr
    assert "deprecated" not in again.stderr
    shown = run_opsgit("state", "show", "--env", "t", "module.app.aws_autoscaling_group.web", cwd=repo, env=dev_env)
    assert "tag " in shown.stdout and "tags " not in shown.stdout, shown.stdout
