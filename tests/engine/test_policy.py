"""Policy checks in the loop, on the example monorepo: the real checkov (the version pinned in
pyproject.toml, from its own virtual environment: `make checkov`) reads `opsgit plan --json` as a
Terraform plan, and `opsgit plan` gates on the checks the repository enforces."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import REPO_ROOT, copy_example, run_opsgit

CHECKOV = os.environ.get("OPSGIT_CHECKOV") or str(REPO_ROOT / ".venv-checkov/bin/checkov")
pytestmark = pytest.mark.skipif(not Path(CHECKOV).exists(), reason=f"no checkov at {CHECKOV} (run `make checkov`)")
POLICY_ON = {"OPSGIT_POLICY": "auto", "OPSGIT_CHECKOV": CHECKOV}


@pytest.fixture
def ops(tmp_path: Path, dev_env: dict[str, str], fresh_moto: object) -> Path:
    boto3.client("s3", endpoint_url=dev_env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket="hashicorp-ops-state")  # prod's and staging's state
    return copy_example(tmp_path / "ops")


def checkov(plan_file: Path) -> dict[str, object]:
    """checkov as its users run it on a Terraform plan."""
    ran = subprocess.run([CHECKOV, "-f", str(plan_file), "--framework", "terraform_plan", "-o", "json",
                          "--skip-download", "--external-checks-dir", str(plan_file.parent / "policies")],
                         capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
                         cwd=plan_file.parent, timeout=300, check=False)
    report: dict[str, object] = json.loads(ran.stdout)
    return report


def failed(report: dict[str, object]) -> set[tuple[str, str]]:
    return {(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]}  # type: ignore[index]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_checkov_reads_every_resource_of_each_example_plan(global_applied: Path, ops: Path, dev_env: dict[str, str],
                                                           env: str) -> None:
    planned = run_opsgit("plan", "--env", env, "--json", "--policy", "false", cwd=ops, env=dev_env, timeout=300)
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    plan_file = ops / f"{env}.tfplan.json"
    plan_file.write_text(planned.stdout)
    report = checkov(plan_file)
    assert report["summary"]["resource_count"] == len(document["resource_changes"])  # type: ignore[index]
    found = failed(report)
    group = "module.network.aws_security_group.allow_all"
    if env == "dev":  # open to 0.0.0.0/0 on every port
        assert {("CKV_AWS_24", group), ("CKV_AWS_25", group), ("CKV_AWS_260", group)} <= found
    else:  # reachable from the private network only, but all egress is open
        assert ("CKV_AWS_382", group) in found and ("CKV_AWS_24", group) not in found
    assert not {f for f in found if f[0] == "CKV_OPSGIT_1"}  # every group is tagged Environment


def test_the_custom_check_fails_the_plan_then_status_apply_and_override(
        global_applied: Path, ops: Path, dev_env: dict[str, str], github: object) -> None:
    module = ops / "modules/binstore/module.yaml"
    module.write_text("\n".join(line for line in module.read_text().splitlines() if "key: Environment" not in line))
    env = {**dev_env, **POLICY_ON, **github_env(github)}  # type: ignore[arg-type]
    planned = run_opsgit("plan", "--env", "dev", "--status", cwd=ops, env=env, timeout=300)
    assert planned.returncode == 1, planned.stdout + planned.stderr
    assert "Policy checks (checkov 3.3.30" in planned.stdout and "CKV_OPSGIT_1" in planned.stdout
    assert "module.binstore.aws_autoscaling_group.blue" in planned.stdout
    assert "modules/binstore/module.yaml" in planned.stdout  # where the failing resource is declared
    assert "skipped CKV_AWS_24: dev runs on loopback" in planned.stdout  # dev's written reason
    error = [line for line in planned.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "failed its policy checks: CKV_OPSGIT_1" in error[0], planned.stderr
    statuses = {s["context"]: s for s in github.statuses}  # type: ignore[attr-defined]
    assert statuses["opsgit/policy: dev"]["state"] == "failure"
    assert "2 checks failed (CKV_OPSGIT_1)" in statuses["opsgit/policy: dev"]["description"]
    assert statuses["opsgit/plan: dev"]["state"] == "success"

    saved = ops / "build/plans/dev.plan.json"
    refused = run_opsgit("apply", "--env", "dev", str(saved), cwd=ops, env=env, timeout=300)
    assert refused.returncode == 1 and "failed its policy checks: CKV_OPSGIT_1" in refused.stderr, refused.stderr
    assert "--override-policy" in refused.stderr and not (ops / ".opsgit/state/dev.json").exists()
    shown = run_opsgit("show", "--json", str(saved), cwd=ops, env=env)
    assert json.loads(shown.stdout)["opsgit"]["policy"]["ok"] is False

    applied = run_opsgit("apply", "--env", "dev", str(saved), "--override-policy", "tagging lands in #4711",
                         cwd=ops, env=env, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    history = run_opsgit("history", "--env", "dev", "--json", cwd=ops, env=env)
    entries = [json.loads(line) for line in history.stdout.splitlines() if line.strip()] \
        if not history.stdout.lstrip().startswith("[") else json.loads(history.stdout)
    overrides = [e for e in entries if e.get("policy_override")]
    assert overrides and overrides[-1]["policy_override"] == {"reason": "tagging lands in #4711",
                                                              "failed_checks": ["CKV_OPSGIT_1"]}


def test_a_skip_without_a_reason_is_refused(ops: Path, dev_env: dict[str, str]) -> None:
    env_file = ops / "environments/dev/env.yaml"
    text = env_file.read_text()
    start = text.index("    CKV_AWS_24:")
    end = text.index("\n", start)
    env_file.write_text(text[:start] + '    CKV_AWS_24: ""' + text[end:])
    planned = run_opsgit("plan", "--env", "dev", cwd=ops, env={**dev_env, **POLICY_ON})
    assert planned.returncode == 1 and "Traceback" not in planned.stderr
    assert "environments/dev/env.yaml:" in planned.stderr and "needs a written reason" in planned.stderr


def test_without_checkov_the_error_says_how_to_get_it(ops: Path, dev_env: dict[str, str]) -> None:
    env = {**dev_env, "OPSGIT_POLICY": "auto", "OPSGIT_CHECKOV": "/nonexistent/checkov",
           "PATH": "/usr/bin:/bin"}
    planned = run_opsgit("plan", "--env", "dev", cwd=ops, env=env)
    assert planned.returncode == 1 and "Traceback" not in planned.stderr
    assert "pip install 'opsgit[policy]'" in planned.stderr, planned.stderr


def github_env(github: object) -> dict[str, str]:
    from tests.gitops.test_statuses import TOKEN

    return {"GITHUB_API_URL": f"http://127.0.0.1:{github.server_address[1]}",  # type: ignore[attr-defined]
            "GITHUB_REPOSITORY": "org/ops", "GITHUB_SHA": "0" * 40, "GITHUB_TOKEN": TOKEN}


@pytest.fixture
def github() -> Iterator[object]:
    from tests.gitops.test_statuses import GitHub

    server = GitHub()
    server.fail_next = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()




def test_the_pull_request_comment_has_a_policy_section(ops: Path, dev_env: dict[str, str], github: object) -> None:
    from tests.gitops.test_affected import git

    git(ops, "init", "-q", "-b", "main")
    git(ops, "add", "-A")
    git(ops, "commit", "-qm", "base")
    git(ops, "checkout", "-q", "-b", "open-dev")
    env_file = ops / "environments/dev/env.yaml"
    text = env_file.read_text()
    env_file.write_text(text[:text.index("policy:")] + text[text.index("sensitive:"):])  # dev drops its skips
    git(ops, "commit", "-qam", "dev without its policy skips")
    env = {**dev_env, **POLICY_ON, **github_env(github), "GITHUB_REF": "refs/pull/7/merge"}
    planned = run_opsgit("plan", "--affected", "--base", "main", "--status", cwd=ops, env=env, timeout=300)
    assert planned.returncode == 1, planned.stdout + planned.stderr
    statuses = {s["context"]: s["state"] for s in github.statuses}  # type: ignore[attr-defined]
    assert statuses["opsgit/plan: dev"] == "success" and statuses["opsgit/policy: dev"] == "failure"
    [comment] = github.comments.values()  # type: ignore[attr-defined]
    assert "| `dev` | policy failed |" in comment and "Policy: 2 checks failed (CKV_AWS_24, CKV_AWS_25)." in comment
    row = next(line for line in comment.splitlines() if line.strip().startswith("CKV_AWS_24"))
    assert "module.network.aws_security_group.allow_all" in row and "modules/network/module.yaml:" in row, row
