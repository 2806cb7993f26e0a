"""Run locks under contention, as separate `opsgit` processes: five applies at once (exactly one
applies, every loser names the holder), state commands that respect an apply's lock, and an apply
that loses its Consul session mid-run (it stops at once, and the next apply proceeds). State and
Consul are checked with clients that are not opsgit's: the state file's JSON, and py-consul."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import consul as pyconsul
import pytest
import yaml

from tests.agent_process import AgentProcess, MotoProcess, wait_for
from tests.conftest import run_opsgit, start_opsgit, write_tree

SLOW = """resources:
  time_sleep.rollout:
    create_duration: {duration}
  null_resource.step:
    count: {steps}
    triggers: {{after: "${{time_sleep.rollout.id}}", index: "${{count.index}}"}}
"""
CHAIN = """resources:
  time_sleep.wave:
    count: {count}
    create_duration: 0.6s
    triggers: {{index: "${{count.index}}"}}
"""


def environment(services: tuple[AgentProcess, MotoProcess]) -> dict[str, str]:
    agent, moto = services
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONSUL_", "OPSGIT_", "GITHUB_"))}
    env.update({"CONSUL_HTTP_ADDR": agent.address, "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "t",
                "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1", "GITHUB_ACTOR": "bob"})
    return env


def repo(tmp_path: Path, backend: str, moto: MotoProcess, module: str, **lock: str) -> Path:
    settings = {"backend": backend, **lock}
    if backend == "s3":
        bucket = f"locks-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="t",
                     aws_secret_access_key="t").create_bucket(Bucket=bucket)
        settings["bucket"] = bucket
    lock_yaml = "{" + ", ".join(f"{k}: {v}" for k, v in settings.items()) + "}"
    env_yaml = f"lock: {lock_yaml}\nmodules:\n  m: {{source: m}}\n"
    return write_tree(tmp_path / "ops", {"environments/t/env.yaml": env_yaml, "modules/m/module.yaml": module})


def opsgit(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return start_opsgit(*args, cwd=root, env=env)


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def state_addresses(root: Path) -> set[str]:
    """The state as its files say, read without opsgit: the compacted JSON plus the journal."""
    directory = root / ".opsgit" / "state"
    data = json.loads((directory / "t.json").read_text()) if (directory / "t.json").exists() else {"resources": []}
    addresses = {r["address"] for r in data["resources"]}
    journal = directory / "t.journal"
    if journal.exists():
        for line in journal.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # being written
            if entry["serial"] > data.get("serial", 0):
                (addresses.add if entry["resource"] else addresses.discard)(entry["address"])
    return addresses


def lock_held(root: Path, env: dict[str, str]) -> bool:
    listed = run_opsgit("locks", cwd=root, env=env)
    return "environment t is locked by" in listed.stdout


@pytest.mark.parametrize("backend", ["local", "consul", "s3"])
def test_five_concurrent_applies_one_applies_and_every_loser_names_the_holder(
        backend: str, tmp_path: Path, services: tuple[AgentProcess, MotoProcess]) -> None:
    env = environment(services)
    # the winner holds the lock for 8 s, long enough for the others to meet it held; on a loaded CI
    # machine one may still start only after the release, and then it must find nothing to do
    root = repo(tmp_path, backend, services[1], SLOW.format(duration="8s", steps=2))
    runs = [opsgit(root, env, "apply", "--env", "t", "--auto-approve") for _ in range(5)]
    results = [finish(run) for run in runs]
    applied = [r for r in results if "Apply complete! Resources: 3 added" in r[1]]
    refused = [r for r in results if r[0] != 0]
    late = [r for r in results if r[0] == 0 and r not in applied]
    assert len(applied) == 1, [r[2] for r in results]
    assert len(refused) >= 1, [r[1] for r in results]
    for code, out, err in refused:
        assert code == 1, err
        assert "Creating" not in out
        line = next(line for line in err.splitlines() if line.startswith("error: "))
        assert "environment t is locked by bob (apply" in line and ", since 20" in line, line
    for _, out, _ in late:  # started after the release: the winner's state, nothing applied twice
        assert "No changes." in out and "Creating" not in out, out
    assert state_addresses(root) == {f"module.m.{a}" for a in ("time_sleep.rollout", "null_resource.step[0]",
                                                              "null_resource.step[1]")}
    assert not lock_held(root, env)  # released: no loser erased or kept the holder's record


def test_a_local_lock_is_listed_with_its_holder_while_losers_come_and_go(
        tmp_path: Path, services: tuple[AgentProcess, MotoProcess]) -> None:
    env = environment(services)
    # the holder keeps the lock 10 s: the checks below are six opsgit runs, slow on a loaded machine
    root = repo(tmp_path, "local", services[1], SLOW.format(duration="10s", steps=1))
    holder = opsgit(root, env, "apply", "--env", "t", "--auto-approve")
    wait_for(lambda: lock_held(root, env), timeout=30)
    losers = [opsgit(root, env, "apply", "--env", "t", "--auto-approve") for _ in range(3)]
    for loser in losers:
        code, _, err = finish(loser)
        assert code == 1 and "locked by bob (apply on" in err
    listed = run_opsgit("locks", cwd=root, env=env)
    assert "locked by bob (apply on" in listed.stdout  # the losers left the holder's record alone
    unlocked = run_opsgit("unlock", "--env", "t", "--force", cwd=root, env=env)
    assert unlocked.returncode == 1 and "held by a live process" in unlocked.stderr
    planned = run_opsgit("plan", "--env", "t", cwd=root, env=env)
    assert planned.returncode == 0, planned.stderr
    assert "environment t is locked by bob (apply on" in planned.stderr and "planning anyway" in planned.stderr
    assert finish(holder)[0] == 0


def test_state_rm_waits_for_a_consul_locked_apply_and_is_not_undone(
        tmp_path: Path, services: tuple[AgentProcess, MotoProcess]) -> None:
    env = environment(services)
    root = repo(tmp_path, "consul", services[1], SLOW.format(duration="1s", steps=2))
    assert finish(opsgit(root, env, "apply", "--env", "t", "--auto-approve"))[0] == 0
    (root / "modules/m/module.yaml").write_text(SLOW.format(duration="4s", steps=3).replace("rollout", "second"))
    apply = opsgit(root, env, "apply", "--env", "t", "--auto-approve")
    wait_for(lambda: lock_held(root, env), timeout=30)
    code, _, err = finish(opsgit(root, env, "state", "rm", "--env", "t", "module.m.time_sleep.rollout"))
    assert code == 1 and "environment t is locked by bob (apply" in err  # refused, not done behind the apply
    waiting = opsgit(root, env, "state", "rm", "--env", "t", "module.m.time_sleep.rollout", "--lock-timeout",
                     "60s")
    assert finish(apply)[0] == 0
    code, out, err = finish(waiting)
    assert code == 0, err
    assert "Removed module.m.time_sleep.rollout" in out
    assert "module.m.time_sleep.rollout" not in state_addresses(root)  # the apply did not write it back
    assert "module.m.time_sleep.second" in state_addresses(root)


def test_an_apply_whose_consul_session_is_destroyed_stops_at_once(
        tmp_path: Path, services: tuple[AgentProcess, MotoProcess]) -> None:
    agent, _ = services
    env = environment(services)
    root = repo(tmp_path, "consul", services[1], CHAIN.format(count=12), lock_delay="1s")
    apply = opsgit(root, env, "apply", "--env", "t", "--auto-approve", "--parallelism", "1")
    client = pyconsul.Consul(host="127.0.0.1", port=int(agent.address.rsplit(":", 1)[1]))
    wait_for(lambda: (client.kv.get("opsgit/locks/t/.lock")[1] or {}).get("Session"), timeout=30)
    wait_for(lambda: len(state_addresses(root)) >= 1, timeout=30)  # it is applying
    session = client.kv.get("opsgit/locks/t/.lock")[1]["Session"]
    destroyed = time.monotonic()
    assert client.session.destroy(session)
    code, out, err = finish(apply)
    assert time.monotonic() - destroyed < 2.0
    assert code == 1
    assert "the run lock of t was lost while this run held it" in err
    done = state_addresses(root)
    assert 0 < len(done) < 12  # what finished is kept; nothing more was started
    time.sleep(1.5)  # the lock-delay Consul applies after a session is invalidated
    code, out, err = finish(opsgit(root, env, "apply", "--env", "t", "--auto-approve", "--lock-timeout", "20s"))
    assert code == 0, err
    assert f"Apply complete! Resources: {12 - len(done)} added" in out
    assert len(state_addresses(root)) == 12


@pytest.mark.parametrize("backend", ["s3", "local"])
def test_an_apply_whose_lock_is_taken_away_stops(backend: str, tmp_path: Path,
                                                 services: tuple[AgentProcess, MotoProcess]) -> None:
    _, moto = services
    env = environment(services)
    root = repo(tmp_path, backend, moto, CHAIN.format(count=12))
    apply = opsgit(root, env, "apply", "--env", "t", "--auto-approve", "--parallelism", "1")
    wait_for(lambda: len(state_addresses(root)) >= 1, timeout=30)
    taken = time.monotonic()
    if backend == "s3":  # someone force-unlocked it and took it: the object is another holder's now
        bucket = yaml.safe_load((root / "environments/t/env.yaml").read_text())["lock"]["bucket"]
        boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="t",
                     aws_secret_access_key="t").put_object(Bucket=bucket, Key="locks/t.lock", Body=b'{"who": "carol"}')
    else:  # the lock file removed under it: another run can take a new one
        (root / ".opsgit/state/t.lock").unlink()
    code, _, err = finish(apply)
    assert time.monotonic() - taken < 3.0
    assert code == 1 and "the run lock of t was lost while this run held it" in err
    assert len(state_addresses(root)) < 12
