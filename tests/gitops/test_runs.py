"""Runs: every plan, apply and drift check numbered per environment with its whole output, read
back with `opsgit history --run N`; a live apply shows its progress, and one killed mid-way reads
back as interrupted, never as running forever. The S3 store is read back with boto3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.agent_process import MotoProcess, start_moto
from tests.conftest import OPSGIT, opsgit_environment, run_opsgit, write_tree

ENV = ("sensitive: [token]\nvariables:\n  token: s3cr3t-t0ken-value\nmodules:\n  app:\n    source: app\n"
       "    inputs: {token: \"{{ var.token }}\"}\n")
MODULE = ("variables:\n  token: {type: string}\n---\nresources:\n  null_resource.node:\n    count: 2\n"
          "    triggers: {token: \"{{ var.token }}\", index: \"${count.index}\"}\n"
          "  time_sleep.settle:\n    create_duration: DURATION\n")


def ops(tmp_path: Path, duration: str = "10ms", state: str = "") -> Path:
    module = MODULE.replace("DURATION", duration)
    return write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV + state, "modules/app/module.yaml": module})


def run_json(root: Path, number: int, extra: dict[str, str] | None = None) -> dict[str, Any]:
    shown = run_opsgit("history", "--env", "t", "--run", str(number), "--json", cwd=root, extra=extra)
    assert shown.returncode == 0, shown.stderr
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def test_plan_and_apply_are_numbered_and_keep_what_they_printed(tmp_path: Path) -> None:
    root = ops(tmp_path)
    planned = run_opsgit("plan", "--env", "t", cwd=root)
    assert planned.returncode == 0, planned.stderr
    applied = run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root)
    assert applied.returncode == 0, applied.stderr
    listing = run_opsgit("history", "--env", "t", cwd=root).stdout.splitlines()
    assert [line.split()[2:4] for line in listing[1:]] == [["#1", "plan"], ["#2", "apply"]]
    shown = run_opsgit("history", "--env", "t", "--run", "2", cwd=root)
    assert shown.returncode == 0, shown.stderr
    heading = shown.stdout.splitlines()[0]
    assert heading.startswith("Run #2 of t: apply APPLIED, by ") and "from the CLI" in heading
    assert "module.app.time_sleep.settle: Creation complete after" in shown.stdout
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in shown.stdout
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in run_opsgit("history", "--env", "t", "--run", "1",
                                                                        cwd=root).stdout
    record = run_json(root, 2)
    assert record["status"] == "applied" and record["progress"] == {"done": 3, "total": 3}
    assert record["trigger"]["source"] == "cli" and record["trigger"]["pid"]
    # the secret is masked in the log and the record, as in all output
    for path in (root / ".opsgit/runs/t").iterdir():
        assert "s3cr3t-t0ken-value" not in path.read_text(), path
    assert "s3cr3t-t0ken-value" not in applied.stdout
    again = run_opsgit("plan", "--env", "t", cwd=root)
    assert "No changes." in again.stdout and run_json(root, 3)["status"] == "no_changes"
    missing = run_opsgit("history", "--env", "t", "--run", "9", cwd=root)
    assert missing.returncode == 1 and "has no run #9" in missing.stderr and "Traceback" not in missing.stderr


def test_runs_started_at_the_same_moment_get_different_numbers(tmp_path: Path) -> None:
    root = ops(tmp_path)
    plans = [subprocess.Popen([*OPSGIT, "plan", "--env", "t", "--out", str(tmp_path / f"{i}.plan")], cwd=root,
                              env=opsgit_environment(None, None), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(4)]
    assert [p.wait(120) for p in plans] == [0] * 4
    numbers = sorted(int(p.stem) for p in (root / ".opsgit/runs/t").glob("*.json"))
    assert numbers == [1, 2, 3, 4]


def start_apply(root: Path) -> subprocess.Popen[bytes]:
    with (root.parent / "apply.log").open("ab") as log:
        return subprocess.Popen([*OPSGIT, "apply", "--env", "t", "--auto-approve"], cwd=root,
                                env=opsgit_environment(None, None), stdout=log, stderr=subprocess.STDOUT)


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_live_apply_shows_its_progress_and_log_then_settles(tmp_path: Path) -> None:
    root = ops(tmp_path, duration="4s")
    apply = start_apply(root)
    try:
        def running() -> dict[str, Any] | None:
            path = root / ".opsgit/runs/t/000001.json"
            if not path.exists():
                return None
            record = run_json(root, 1)
            return record if record["status"] == "running" and record.get("progress", {}).get("done") else None

        live = wait_for(running)
        assert live["progress"] == {"done": 2, "total": 3}  # the two nodes are done, the sleep is not
        assert "module.app.null_resource.node[0]: Creation complete" in run_json(root, 1)["log"]
        assert apply.wait(60) == 0
    finally:
        if apply.poll() is None:
            apply.kill()
    final = run_json(root, 1)
    assert final["status"] == "applied" and "Apply complete!" in final["log"]


def test_an_apply_killed_mid_way_reads_back_as_interrupted(tmp_path: Path) -> None:
    root = ops(tmp_path, duration="60s")
    apply = start_apply(root)
    try:
        wait_for(lambda: (root / ".opsgit/runs/t/000001.log").exists()
                 and "Creating..." in (root / ".opsgit/runs/t/000001.log").read_text())
        assert run_json(root, 1)["status"] == "running"
        os.kill(apply.pid, signal.SIGKILL)
        apply.wait(30)
    finally:
        if apply.poll() is None:
            apply.kill()
    record = run_json(root, 1)
    assert record["status"] == "interrupted", record
    assert "INTERRUPTED" in run_opsgit("history", "--env", "t", "--run", "1", cwd=root).stdout.splitlines()[0]


def test_a_run_interrupted_by_ctrl_c_says_so(tmp_path: Path) -> None:
    root = ops(tmp_path, duration="5s")  # Ctrl-C lets what runs finish, as Terraform does
    apply = start_apply(root)
    try:
        wait_for(lambda: (root / ".opsgit/runs/t/000001.log").exists()
                 and "Creating..." in (root / ".opsgit/runs/t/000001.log").read_text())
        apply.send_signal(signal.SIGINT)
        apply.wait(60)
    finally:
        if apply.poll() is None:
            apply.kill()
    record = json.loads((root / ".opsgit/runs/t/000001.json").read_text())
    assert record["status"] == "interrupted" and record["finished_at"], record


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    server = start_moto()
    yield server
    server.stop()


def test_runs_beside_s3_state(tmp_path: Path, moto: MotoProcess) -> None:
    aws = {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test")
    s3.create_bucket(Bucket="runs-state")
    root = ops(tmp_path, state="state: {backend: s3, bucket: runs-state, key: t/state.json}\n")
    assert run_opsgit("plan", "--env", "t", cwd=root, extra=aws).returncode == 0
    applied = run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root, extra=aws)
    assert applied.returncode == 0, applied.stderr
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="runs-state", Prefix="runs/t/")["Contents"]]
    assert "runs/t/000001/run.json" in keys and "runs/t/000002/run.json" in keys
    stored = json.loads(s3.get_object(Bucket="runs-state", Key="runs/t/000002/run.json")["Body"].read())
    assert stored["status"] == "applied" and stored["kind"] == "apply"
    log = "".join(s3.get_object(Bucket="runs-state", Key=k)["Body"].read().decode()
                  for k in sorted(keys) if k.startswith("runs/t/000002/log/"))
    assert "Apply complete! Resources: 3 added" in log and "s3cr3t-t0ken-value" not in log
    shown = run_opsgit("history", "--env", "t", "--run", "2", cwd=root, extra=aws)
    assert shown.returncode == 0 and "Apply complete! Resources: 3 added" in shown.stdout, shown.stderr
    assert not (root / ".opsgit/runs").exists()
