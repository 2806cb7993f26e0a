"""Run locks: a second apply is told who holds the environment, waits with --lock-timeout, and
`opsgit unlock` removes a lock; with the local, Consul (dev agent) and S3 (moto) backends."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest

from opsgit.locks import Held, hold, open_lock
from tests.agent_process import AgentProcess, MotoProcess
from tests.conftest import run_opsgit, write_tree

MODULE = "resources:\n  null_resource.one:\n    triggers: {a: b}\n"


@pytest.fixture(params=["local", "consul", "s3"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, services: tuple[AgentProcess, MotoProcess],
          monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str], dict[str, str]]:
    agent, moto = services
    backend = request.param
    environment = {"CONSUL_HTTP_ADDR": agent.address, "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "t",
                   "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1",
                   "GITHUB_REPOSITORY": "org/ops", "GITHUB_REF": "refs/pull/2488/merge", "GITHUB_ACTOR": "alice"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    lock = {"backend": backend}
    if backend == "s3":
        bucket = f"locks-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        lock["bucket"] = bucket
    lock_yaml = "{" + ", ".join(f"{k}: {v}" for k, v in lock.items()) + "}"
    env_yaml = f"lock: {lock_yaml}\nmodules:\n  m: {{source: m}}\n"
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": env_yaml, "modules/m/module.yaml": MODULE})
    child_env = {**{k: v for k, v in os.environ.items()}, **environment, "GITHUB_ACTOR": "bob"}
    return root, lock, child_env


def run_lock(settings: dict[str, str], env: str, root: Path, command: str) -> contextlib.AbstractContextManager[Held]:
    return hold(open_lock(settings, env, root), env, command)


def apply(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit("apply", "--env", "t", "--auto-approve", *args, cwd=root, env=env, timeout=120)


def test_a_second_run_is_told_who_holds_the_lock(setup: tuple[Path, dict[str, str], dict[str, str]]) -> None:
    root, lock, env = setup
    with run_lock(lock, "t", root, "apply"):
        blocked = apply(root, env)
    assert blocked.returncode == 1
    if lock["backend"] == "local":
        assert "environment t is locked by alice (apply on" in blocked.stderr
    else:
        assert "environment t is locked by org/ops#2488 (alice, apply, since " in blocked.stderr
    assert "Creating" not in blocked.stdout
    assert apply(root, env).returncode == 0  # free again once the holder is done


def test_lock_timeout_waits_for_the_holder(setup: tuple[Path, dict[str, str], dict[str, str]]) -> None:
    root, lock, env = setup
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with run_lock(lock, "t", root, "apply"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    waited = apply(root, env, "--lock-timeout", "30s")
    thread.join()
    assert waited.returncode == 0, waited.stderr
    assert time.monotonic() - started >= 1.2
    assert "Apply complete!" in waited.stdout


def test_unlock_shows_the_holder_and_removes_remote_locks(setup: tuple[Path, dict[str, str], dict[str, str]]) -> None:
    root, lock, env = setup
    if lock["backend"] == "local":
        pytest.skip("a local lock lives exactly as long as its process")
    stop = threading.Event()
    held = threading.Event()

    def holder() -> None:
        try:
            with run_lock(lock, "t", root, "apply"):
                held.set()
                stop.wait(20)
        except Exception:
            pass

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    held.wait(10)
    listed = run_opsgit("locks", cwd=root, env=env)
    assert "environment t is locked by org/ops#2488" in listed.stdout
    removed = run_opsgit("unlock", "--env", "t", "--force", cwd=root, env=env)
    assert removed.returncode == 0 and "environment t is unlocked." in removed.stdout
    assert apply(root, env).returncode == 0
    stop.set()
