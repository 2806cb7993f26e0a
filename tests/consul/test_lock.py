"""`opsgit lock` as real processes contending on the dev agent."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.agent_process import AgentProcess
from tests.conftest import start_opsgit

CRITICAL_SECTION = textwrap.dedent("""\
    import os, sys, time
    directory = sys.argv[1]
    mine = os.path.join(directory, "holder-%d" % os.getpid())
    open(mine, "w").close()
    inside = len([f for f in os.listdir(directory) if f.startswith("holder-")])
    with open(os.path.join(directory, "log"), "a") as log:
        log.write("%d\\n" % inside)
    time.sleep(0.15)
    os.remove(mine)
""")


def opsgit_lock(agent: AgentProcess, *args: str) -> subprocess.Popen[str]:
    return start_opsgit("lock", *args, env=agent.env(), cwd=None)


def contend(agent: AgentProcess, tmp_path: Path, limit: int) -> list[int]:
    script = tmp_path / "critical.py"
    script.write_text(CRITICAL_SECTION)
    prefix = f"locks/{uuid.uuid4().hex[:8]}"
    processes = [opsgit_lock(agent, "-n", str(limit), prefix, "--", sys.executable, str(script), str(tmp_path))
                 for _ in range(8)]
    for process in processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    counts = [int(line) for line in (tmp_path / "log").read_text().split()]
    assert len(counts) == 8
    assert requests.get(f"{agent.url}/v1/kv/{prefix}?recurse").status_code == 404  # cleaned up
    return counts


def test_eight_contenders_never_overlap(agent: AgentProcess, tmp_path: Path) -> None:
    assert max(contend(agent, tmp_path, 1)) == 1


def test_semaphore_admits_at_most_three(agent: AgentProcess, tmp_path: Path) -> None:
    counts = contend(agent, tmp_path, 3)
    assert max(counts) <= 3
    assert max(counts) >= 2  # it does admit several at once


def test_exit_status_is_consul_locks_and_child_exit_code_asks_for_failure(agent: AgentProcess) -> None:
    """`consul lock` exits 0 once it held the lock, whatever the child did; -child-exit-code makes a
    failed child exit 2. The child sees CONSUL_LOCK_HELD=true."""
    child = ("sh", "-c", 'test "$CONSUL_LOCK_HELD" = true && exit 7')
    quiet = opsgit_lock(agent, "locks/exit", "--", *child)
    _, err = quiet.communicate(timeout=30)
    assert quiet.returncode == 0 and "the command exited 7" in err and "-child-exit-code" in err
    asked = opsgit_lock(agent, "-child-exit-code", "locks/exit", *child)
    asked.communicate(timeout=30)
    assert asked.returncode == 2
    fine = opsgit_lock(agent, "--child-exit-code", "locks/exit", "--", "sh", "-c", 'test "$CONSUL_LOCK_HELD" = true')
    _, err = fine.communicate(timeout=30)
    assert fine.returncode == 0 and "exited" not in err


def wait_for_holder(agent: AgentProcess, key: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = requests.get(f"{agent.url}/v1/kv/{key}")
        if answer.status_code == 200 and answer.json()[0].get("Session"):
            return dict(answer.json()[0])
        time.sleep(0.05)
    raise AssertionError(f"nobody holds {key}")


def test_losing_the_lock_stops_the_childs_process_group(agent: AgentProcess, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    process = opsgit_lock(agent, "-child-exit-code", "locks/lose", "--", "sh", "-c",
                          f"sleep 300 & echo $! > {marker}; wait")
    wait_for_holder(agent, "locks/lose/.lock")
    requests.delete(f"{agent.url}/v1/kv/locks/lose/.lock")  # someone breaks the lock
    _, err = process.communicate(timeout=30)
    assert "lock lost" in err
    assert process.returncode == 2  # the child was stopped: it failed
    grandchild = int(marker.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]


def test_sigterm_is_forwarded_to_the_child(agent: AgentProcess, tmp_path: Path) -> None:
    got = tmp_path / "got-term"
    process = opsgit_lock(agent, "locks/forward", "--", "sh", "-c",
                          f"trap 'touch {got}; exit 42' TERM; while true; do sleep 0.05; done")
    wait_for_holder(agent, "locks/forward/.lock")
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert got.exists()
    assert process.returncode == 0 and "the command exited 42" in err
    assert requests.get(f"{agent.url}/v1/kv/locks/forward/.lock").status_code == 404  # released


@pytest.mark.slow  # waits out a real session TTL and lock-delay: `make test-slow`
def test_a_killed_holders_lock_passes_on_after_ttl_and_lock_delay(agent: AgentProcess, tmp_path: Path) -> None:
    holder = start_opsgit("lock", "--session-ttl", "10s", "--lock-delay", "1s", "locks/crash", "--", "sleep", "301",
                          env=agent.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=None)
    entry = wait_for_holder(agent, "locks/crash/.lock")
    child_pids = [int(p) for p in subprocess.run(["pgrep", "-f", "sleep 301"], capture_output=True, text=True)
                  .stdout.split()]
    killed_at = time.monotonic()
    holder.kill()  # opsgit dies without releasing anything; only the session's TTL can free the lock
    holder.wait()
    try:
        waiter = opsgit_lock(agent, "--session-ttl", "10s", "locks/crash", "--", "true")
        waiter.communicate(timeout=60)
        waited = time.monotonic() - killed_at
        assert waiter.returncode == 0
        assert 10.0 <= waited < 30, waited  # Consul's 2 * TTL (20 s) plus the lock-delay (1 s), not much more
        assert json.dumps(entry)  # the dead holder had held it
    finally:
        for pid in child_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_timeout_gives_up_with_exit_1(agent: AgentProcess) -> None:
    holder = opsgit_lock(agent, "locks/busy", "--", "sleep", "30")
    wait_for_holder(agent, "locks/busy/.lock")
    try:
        started = time.monotonic()
        waiter = opsgit_lock(agent, "--timeout", "1s", "locks/busy", "--", "true")
        _, err = waiter.communicate(timeout=30)
        assert waiter.returncode == 1
        assert "timeout during lock acquisition" in err
        assert time.monotonic() - started < 10
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.communicate(timeout=30)
