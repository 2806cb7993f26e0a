"""`opsgit lock`'s `consul lock` flags, as its users type them, checked through py-consul."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import consul as py_consul
import requests

from tests.agent_process import AgentProcess, data_dir_agent, free_port, start_agent, wait_for
from tests.conftest import run_opsgit, start_opsgit
from tests.consul.test_lock import opsgit_lock, wait_for_holder


def py(agent: AgentProcess) -> py_consul.Consul:
    host, port = agent.address.split(":")
    return py_consul.Consul(host=host, port=int(port))


def test_go_spellings_name_the_session_tied_to_serf_health(agent: AgentProcess) -> None:
    holder = opsgit_lock(agent, "-name=nightly-backup", "-session-ttl=12s", "-verbose", "-shell=false",
                         "locks/spelled", "sleep", "30")
    try:
        entry = wait_for_holder(agent, "locks/spelled/.lock")
        _, session = py(agent).session.info(str(entry["Session"]))
        assert session is not None
        assert (session["Name"], session["TTL"], session["NodeChecks"], session["Behavior"]) == (
            "nightly-backup", "12s", ["serfHealth"], "release")
        for spelling in (("-timeout=1s",), ("-try=1s",), ("--try", "1s"), ("-timeout", "1s")):
            started = time.monotonic()
            waiter = opsgit_lock(agent, *spelling, "locks/spelled", "true")
            _, err = waiter.communicate(timeout=30)
            assert waiter.returncode == 1 and "timeout during lock acquisition" in err, (spelling, err)
            assert time.monotonic() - started < 10
    finally:
        holder.send_signal(signal.SIGTERM)
        _, err = holder.communicate(timeout=30)
    assert [line for line in err.splitlines() if not line.startswith("note:")] == [
        "Setting up lock at path: locks/spelled/.lock", "Attempting lock acquisition", "Starting handler",
        "Shutdown triggered, the child has ended", "Cleanup succeeded"]


def test_shell_runs_one_line_through_sh_and_the_default_runs_the_argument_list(agent: AgentProcess) -> None:
    line = 'test "$CONSUL_LOCK_HELD" = true && echo held through a shell'
    env = {**agent.env(), "SHELL": "/bin/sh"}
    shelled = start_opsgit("lock", "-shell", "locks/shell", line, env=env, cwd=None)
    out, err = shelled.communicate(timeout=30)
    assert shelled.returncode == 0 and out == "held through a shell\n", err
    direct = start_opsgit("lock", "locks/shell", line, env=env, cwd=None)
    _, err = direct.communicate(timeout=30)
    assert direct.returncode == 1 and "command not found" in err and "--shell" in err and "Traceback" not in err
    words = start_opsgit("lock", "locks/shell", "--", "printf", "%s|", "a b", "$HOME", env=env, cwd=None)
    out, _ = words.communicate(timeout=30)
    assert out == "a b|$HOME|"  # exactly as given: no second round of shell quoting


def test_standard_input_reaches_the_command_only_with_pass_stdin(agent: AgentProcess) -> None:
    for flags, expected in (((), ""), (("-pass-stdin",), "from the pipe\n")):
        result = run_opsgit("lock", *flags, "locks/stdin", "cat", env=agent.env(), cwd=None, timeout=30,
                            input="from the pipe\n")
        assert result.returncode == 0 and result.stdout == expected, (flags, result.stderr)


def test_a_critical_serf_health_ends_the_lock_and_stops_the_child() -> None:
    agent = start_agent()
    try:
        client = py(agent)
        node = client.agent.self()["Config"]["NodeName"]
        holder = opsgit_lock(agent, "-child-exit-code", "locks/serf", "sleep", "300")
        wait_for_holder(agent, "locks/serf/.lock")
        client.catalog.register(node, "127.0.0.1", check={"CheckID": "serfHealth", "Name": "Serf Health Status",
                                                          "Status": "critical"})
        _, err = holder.communicate(timeout=30)
        assert holder.returncode == 2 and "lock lost" in err
        assert client.session.list()[1] == []  # Consul invalidated the session with its check
        _, pair = client.kv.get("locks/serf/.lock")
        assert pair is None or not pair.get("Session")
    finally:
        agent.stop()


def test_monitor_retry_rides_out_a_short_outage_and_zero_does_not(tmp_path: Path) -> None:
    port = free_port()
    agent = data_dir_agent(tmp_path / "data", port=port)
    strict = opsgit_lock(agent, "-monitor-retry=0", "-child-exit-code", "locks/strict", "sleep", "300")
    patient = opsgit_lock(agent, "locks/patient", "sleep", "300")  # consul lock's 3 retries
    try:
        wait_for_holder(agent, "locks/strict/.lock")
        wait_for_holder(agent, "locks/patient/.lock")
        agent.stop(signal.SIGKILL)
        _, err = strict.communicate(timeout=30)
        assert strict.returncode == 2 and "lock lost" in err
        agent = data_dir_agent(tmp_path / "data", port=port)
        time.sleep(3)  # past the monitor's retries: the patient holder has reached Consul again
        assert patient.poll() is None
        assert wait_for(lambda: requests.get(f"{agent.url}/v1/kv/locks/patient/.lock", timeout=5).json()[0]
                        .get("Session")) is None
    finally:
        for process in (strict, patient):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        _, patient_err = patient.communicate(timeout=30)
        agent.stop()
    assert patient.returncode == 0 and "lock lost" not in patient_err
