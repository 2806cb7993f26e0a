"""`opsgit exec` against the dev agent, as real processes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.agent_process import AgentProcess, data_dir_agent, free_port, wait_for
from tests.conftest import REPO_ROOT, run_opsgit, start_opsgit

# The child logs each start with the variable it was given, and logs the signals it receives.
CHILD = """
echo "start $postgres_addr" >> "$LOG"
trap 'echo "HUP $postgres_addr" >> "$LOG"' HUP
trap 'echo TERM >> "$LOG"; exit 3' TERM
while :; do sleep 0.05; done
"""


def opsgit_exec(agent: AgentProcess, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    return run_opsgit("exec", *args, env={**agent.env(), **(env or {})}, cwd=REPO_ROOT, timeout=60)


def start_exec(agent: AgentProcess, log: Path, *args: str) -> subprocess.Popen[str]:
    return start_opsgit("exec", *args, "--", "sh", "-c", CHILD, env={**agent.env(), "LOG": str(log)}, cwd=REPO_ROOT)


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def seed(agent: AgentProcess) -> None:
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    agent.put("service/binstore/s3/bucket", "binstore-dev")
    agent.put("service/binstore2/postgres_addr", "must-not-appear")


def test_prefix_keys_become_the_childs_variables(agent: AgentProcess) -> None:
    seed(agent)
    result = opsgit_exec(agent, "--prefix", "service/binstore", "--", "env", env={"KEPT": "yes"})
    assert result.returncode == 0, result.stderr
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert variables["postgres_addr"] == "10.0.0.5:5432"  # service/binstore2/ is not under service/binstore
    assert variables["s3/bucket"] == "binstore-dev" and variables["KEPT"] == "yes"


def test_pristine_gives_only_the_kv_variables_and_later_prefixes_win(agent: AgentProcess) -> None:
    seed(agent)
    agent.put("service/override/postgres_addr", "10.0.0.99:5432")
    result = opsgit_exec(agent, "--pristine", "--sanitize", "--upcase", "--prefix", "service/binstore",
                         "--prefix", "service/override", "--", "/usr/bin/env")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["POSTGRES_ADDR=10.0.0.99:5432", "S3_BUCKET=binstore-dev"]


def test_a_service_gives_its_address_and_port(agent: AgentProcess) -> None:
    seed(agent)
    requests.put(f"{agent.url}/v1/catalog/register", timeout=10, json={
        "Node": "redis-1", "Address": "10.0.3.1", "Service": {"Service": "redis", "Port": 6379}})
    result = opsgit_exec(agent, "--pristine", "--upcase", "--service", "redis", "--", "/usr/bin/env")
    assert result.returncode == 0, result.stderr
    assert "REDIS_ADDRESS=10.0.3.1" in result.stdout and "REDIS_PORT=6379" in result.stdout


def test_one_restart_per_real_change_none_for_the_same_value(agent: AgentProcess, tmp_path: Path) -> None:
    seed(agent)
    log = tmp_path / "child.log"
    process = start_exec(agent, log, "--prefix", "service/binstore", "--kill-timeout", "5s")
    try:
        wait_for(lambda: lines(log) == ["start 10.0.0.5:5432"])
        agent.put("service/binstore/postgres_addr", "10.0.0.6:5432")
        wait_for(lambda: "start 10.0.0.6:5432" in lines(log))
        agent.put("service/binstore/postgres_addr", "10.0.0.6:5432")  # the same value again
        agent.put("service/binstore/s3/bucket", "binstore-dev")
        agent.put("service/binstore2/postgres_addr", "elsewhere")  # not ours
        time.sleep(1.5)
        assert lines(log) == ["start 10.0.0.5:5432", "TERM", "start 10.0.0.6:5432"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert "postgres_addr changed; restarting the child" in err and "10.0.0.6" not in err  # names, never values


def test_sigterm_reaches_the_child_and_its_exit_code_becomes_opsgits(agent: AgentProcess, tmp_path: Path) -> None:
    seed(agent)
    log = tmp_path / "child.log"
    process = start_exec(agent, log, "--prefix", "service/binstore")
    wait_for(lambda: lines(log) == ["start 10.0.0.5:5432"])
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert lines(log)[-1] == "TERM" and process.returncode == 3
    assert opsgit_exec(agent, "--prefix", "service/binstore", "--", "sh", "-c", "exit 7").returncode == 7


def test_reload_signal_signals_instead_of_restarting(agent: AgentProcess, tmp_path: Path) -> None:
    seed(agent)
    log = tmp_path / "child.log"
    process = start_exec(agent, log, "--prefix", "service/binstore", "--reload-signal", "HUP")
    try:
        wait_for(lambda: lines(log) == ["start 10.0.0.5:5432"])
        agent.put("service/binstore/postgres_addr", "10.0.0.7:5432")
        wait_for(lambda: len(lines(log)) == 2)
        time.sleep(0.5)
        assert lines(log) == ["start 10.0.0.5:5432", "HUP 10.0.0.5:5432"]  # the same process, signalled
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_the_child_waits_for_data_and_once_does_not_watch(agent: AgentProcess, tmp_path: Path) -> None:
    log, errors = tmp_path / "child.log", tmp_path / "exec.err"
    with errors.open("w") as sink:  # read while it runs: the test waits for the message, not a fixed time
        process = start_opsgit("exec", "--once", "--prefix", "service/binstore", "--", "sh", "-c", CHILD,
                               env={**agent.env(), "LOG": str(log)}, cwd=REPO_ROOT, stderr=sink)
    try:
        wait_for(lambda: "waiting for keys under service/binstore/ in Consul" in errors.read_text())
        time.sleep(0.5)
        assert not log.exists()  # no keys yet: not started
        seed(agent)
        wait_for(lambda: lines(log) == ["start 10.0.0.5:5432"])
        agent.put("service/binstore/postgres_addr", "10.0.0.8:5432")
        time.sleep(1.0)
        assert lines(log) == ["start 10.0.0.5:5432"]  # --once: no restart
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_consul_outage_keeps_the_child_and_updates_resume(tmp_path: Path) -> None:
    port = free_port()
    agent = data_dir_agent(tmp_path / "data", port=port)
    seed(agent)
    log = tmp_path / "child.log"
    process = start_exec(agent, log, "--prefix", "service/binstore")
    try:
        wait_for(lambda: lines(log) == ["start 10.0.0.5:5432"])
        agent.stop(signal.SIGKILL)
        time.sleep(2)
        assert process.poll() is None and lines(log) == ["start 10.0.0.5:5432"]
        agent = data_dir_agent(tmp_path / "data", port=port)
        agent.put("service/binstore/postgres_addr", "10.0.0.6:5432")
        wait_for(lambda: "start 10.0.0.6:5432" in lines(log), timeout=40)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        agent.stop()
    assert "Consul unreachable" in err and "the child keeps its environment" in err


def test_bad_input_is_one_line_and_exit_1(agent: AgentProcess) -> None:
    for args, message in [(["--prefix", "a"], "no command given"),
                          (["--", "env"], "nothing to read from Consul"),
                          (["--prefix", "a", "--kill-signal", "SIGNOPE", "--", "env"], "unknown signal 'SIGNOPE'"),
                          (["--prefix", "a", "--once", "--", "/nonexistent/binstore"], "command not found")]:
        if "--once" in args:
            agent.put("a/x", "1")
        result = opsgit_exec(agent, *args)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_wait_gathers_quick_changes_into_one_restart(agent: AgentProcess, tmp_path: Path) -> None:
    seed(agent)
    log = tmp_path / "child.log"
    process = start_exec(agent, log, "--prefix", "service/binstore", "--wait", "700ms:3s", "--splay", "100ms")
    try:
        wait_for(lambda: lines(log) == ["start 10.0.0.5:5432"])
        for last in range(6, 10):  # four changes within the quiet period
            agent.put("service/binstore/postgres_addr", f"10.0.0.{last}:5432")
            time.sleep(0.1)
        wait_for(lambda: "start 10.0.0.9:5432" in lines(log))
        time.sleep(1.0)
        assert lines(log) == ["start 10.0.0.5:5432", "TERM", "start 10.0.0.9:5432"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
