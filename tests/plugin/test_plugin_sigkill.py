"""opsgit SIGKILLed while a provider plugin creates an object: the provider finishes, its witness
keeps the answer and stops it (no process left behind), and the next apply records the object
instead of creating it again. The provider's own store is read directly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import OPSGIT, opsgit_environment, run_opsgit


def things(root: Path) -> list[dict[str, object]]:
    path = root.parent / "cloud.json"
    return list(json.loads(path.read_text()).values()) if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has ended
        return stat.read().split(") ", 1)[1][0] != "Z"


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigkill_while_a_create_is_in_flight_creates_nothing_twice(plugin_repo: Path) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    store:", "    fail: slow-create\n    store:"))
    apply = subprocess.Popen([*OPSGIT, "apply", "--env", "dev", "--auto-approve"], cwd=plugin_repo,
                             env=opsgit_environment(None, None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the provider has made `web` and not yet answered: opsgit dies now
    assert wait_for(lambda: len(things(plugin_repo)) == 1, 60), "the create never happened"
    apply.send_signal(signal.SIGKILL)
    apply.wait()
    provider_pid = int((plugin_repo.parent / "cloud.pid").read_text())
    receipts = plugin_repo / ".opsgit/receipts"
    assert wait_for(lambda: any(receipts.glob("*.bin")), 10), "the witness kept no answer"
    assert wait_for(lambda: not alive(provider_pid), 10), "the provider was left running"

    env.write_text(env.read_text().replace("    fail: slow-create\n", ""))
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert "module.app.testing_thing.web: created by a run that was stopped before recording it" in plan.stderr
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.stdout, plan.stdout + plan.stderr  # only worker
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Resources: 1 added" in applied.stdout
    names = sorted(str(t["name"]) for t in things(plugin_repo))
    assert len(names) == 2 and names.count("web") == 1, names
    assert not list(receipts.iterdir())  # settled
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=plugin_repo)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr


def test_sigkill_of_a_plan_leaves_no_provider_running(plugin_repo: Path) -> None:
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    pid_file = plugin_repo.parent / "cloud.pid"
    pid_file.unlink()
    plan = subprocess.Popen([*OPSGIT, "plan", "--env", "dev"], cwd=plugin_repo, env=opsgit_environment(None, None),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(pid_file.exists, 60)
    plan.send_signal(signal.SIGKILL)
    plan.wait()
    provider_pid = int(pid_file.read_text())
    assert wait_for(lambda: not alive(provider_pid), 10), "the provider was left running"


def witnesses(receipts: Path) -> list[int]:
    """The witness processes serving this repository (their command line names its receipts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"opsgit.plugin.witness" in command and str(receipts).encode() in command and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_a_finished_plan_leaves_no_provider_or_witness_running(plugin_repo: Path) -> None:
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert plan.returncode == 0, plan.stderr
    provider_pid = int((plugin_repo.parent / "cloud.pid").read_text())
    assert not alive(provider_pid)  # gone by the time opsgit has exited, not some seconds later
    assert witnesses(plugin_repo / ".opsgit/receipts") == []
