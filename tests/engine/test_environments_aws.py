"""Environments feeding each other on moto: an upstream whose state lives in S3, and an ordered
apply over a chain global -> staging -> prod that is killed mid-way and continued, checked with
boto3 (nothing created twice)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3

from tests.agent_process import MotoProcess
from tests.conftest import run_opsgit, start_opsgit, write_tree
from tests.gitops.test_affected import git

ZONE = """\
variables:
  name: {type: string}
  comment: {type: string, default: ""}
  pause: {type: string, default: 0s}
---
resources:
  aws_route53_zone.zone:
    name: "{{ var.name }}"
    comment: "{{ var.comment }}"
  time_sleep.settle:
    create_duration: "{{ var.pause }}"
    depends_on: [aws_route53_zone.zone]
outputs:
  zone_id: ${aws_route53_zone.zone.zone_id}
  name: ${aws_route53_zone.zone.name}
"""


def environment(zone: str, reads: str | None = None, pause: str = "0s", state: str = "") -> str:
    comment = f"${{environment.{reads}.outputs.zone_id}}" if reads else "the root"
    return (f"providers:\n  aws: {{region: us-east-1}}\n{state}modules:\n  zone:\n    source: zone\n    inputs:\n"
            f"      name: {zone}\n      comment: \"{comment} v1\"\n      pause: {pause}\n"
            "outputs:\n  zone_id: ${module.zone.zone_id}\n  name: ${module.zone.name}\n")


def aws(moto: MotoProcess) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1"}


def zones(moto: MotoProcess) -> list[dict[str, Any]]:
    route53 = boto3.client("route53", endpoint_url=moto.url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    found: list[dict[str, Any]] = route53.list_hosted_zones()["HostedZones"]
    return found


def test_an_upstream_state_in_s3_is_read_through_its_own_backend(tmp_path: Path, fresh_moto: MotoProcess) -> None:
    s3 = boto3.client("s3", endpoint_url=fresh_moto.url, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test")
    s3.create_bucket(Bucket="team-state")
    s3.put_bucket_versioning(Bucket="team-state", VersioningConfiguration={"Status": "Enabled"})
    backend = "state:\n  backend: s3\n  bucket: team-state\n  key: global/state.json\n  region: us-east-1\n"
    root = write_tree(tmp_path / "ops", {
        "pyproject.toml": "[tool.opsgit]\n", "modules/zone/module.yaml": ZONE,
        "environments/global/env.yaml": environment("shared.internal", state=backend),
        "environments/dev/env.yaml": environment("dev.internal", reads="global")})
    extra = aws(fresh_moto)
    applied = run_opsgit("apply", "--env", "global", "--auto-approve", cwd=root, extra=extra)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert not (root / ".opsgit/state/global.json").exists()
    upstream = json.loads(s3.get_object(Bucket="team-state", Key="global/state.json")["Body"].read())
    zone_id = upstream["outputs"]["zone_id"]["value"]
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root, extra=extra).returncode == 0
    by_name = {z["Name"]: z for z in zones(fresh_moto)}
    assert by_name["dev.internal."]["Config"]["Comment"] == f"{zone_id} v1"
    assert by_name["shared.internal."]["Id"].endswith(zone_id)


def test_an_ordered_apply_killed_mid_way_continues_where_it_stopped(tmp_path: Path, fresh_moto: MotoProcess) -> None:
    root = write_tree(tmp_path / "ops", {
        "pyproject.toml": "[tool.opsgit]\n", ".gitignore": ".opsgit/\nbuild/\n", "modules/zone/module.yaml": ZONE,
        "environments/global/env.yaml": environment("global.internal"),
        "environments/staging/env.yaml": environment("staging.internal", reads="global", pause="30s"),
        "environments/prod/env.yaml": environment("prod.internal", reads="staging")})
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "empty")
    git(root, "checkout", "-q", "-b", "change")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "three environments")
    extra = aws(fresh_moto)
    process = start_opsgit("apply", "--affected", "--base", "main", "--auto-approve", cwd=root, extra=extra,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "staging.internal." not in {z["Name"] for z in zones(fresh_moto)}:
        time.sleep(0.1)
    time.sleep(1.0)  # staging's zone is recorded; its time_sleep runs
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert {z["Name"] for z in zones(fresh_moto)} == {"global.internal.", "staging.internal."}  # prod never started

    (root / "environments/staging/env.yaml").write_text(environment("staging.internal", reads="global"))
    git(root, "commit", "-qam", "no pause")
    resumed = run_opsgit("apply", "--affected", "--base", "main", "--auto-approve", cwd=root, extra=extra,
                         timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Applying 3 environments in order: global -> staging -> prod" in resumed.stdout
    names = sorted(z["Name"] for z in zones(fresh_moto))
    assert names == ["global.internal.", "prod.internal.", "staging.internal."]  # each once: nothing applied twice
    by_name = {z["Name"]: z for z in zones(fresh_moto)}
    assert by_name["prod.internal."]["Config"]["Comment"] == by_name["staging.internal."]["Id"].rsplit("/", 1)[-1] \
        + " v1"
    for env in ("global", "staging", "prod"):
        again = run_opsgit("plan", "--env", env, "--detailed-exitcode", cwd=root, extra=extra)
        assert again.returncode == 0, again.stdout + again.stderr
