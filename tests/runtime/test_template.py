"""`opsgit template` against the dev agent, as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.agent_process import AgentProcess, start_agent
from tests.conftest import REPO_ROOT


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    process = start_agent()
    yield process
    process.stop()


def put(agent: AgentProcess, key: str, value: str) -> None:
    assert requests.put(f"{agent.url}/v1/kv/{key}", data=value.encode()).json() is True


def template(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsgit", "template", *args], env=agent.env(), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def wait_for(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_example_role_configs_render_from_kv_and_catalog(agent: AgentProcess, tmp_path: Path) -> None:
    put(agent, "service/binstore/postgres_addr", "10.0.0.5:5432")
    put(agent, "service/binstore/redis_addr", "10.0.0.9:6379")
    put(agent, "config/consul/servers/a", "10.1.0.1")
    put(agent, "config/consul/servers/b", "10.1.0.2")
    for node, address in (("bin-1", "10.2.0.1"), ("bin-2", "10.2.0.2")):
        requests.put(f"{agent.url}/v1/catalog/register", json={
            "Node": node, "Address": address, "Service": {"Service": "binstore", "Port": 8080},
            "Check": {"Name": "alive", "Status": "passing", "ServiceID": "binstore"}})
    result = template(agent, "--once",
                      "--template", f"roles/binstore/templates/binstore.json.j2:{tmp_path}/binstore.json",
                      "--template", f"roles/web/templates/haproxy.cfg.j2:{tmp_path}/haproxy.cfg",
                      "--template", f"roles/consul/templates/consul.json.j2:{tmp_path}/agent.json")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "binstore.json").read_text())["redis_addr"] == "10.0.0.9:6379"
    haproxy = (tmp_path / "haproxy.cfg").read_text()
    assert "server bin-1 10.2.0.1:8080 check" in haproxy and "server bin-2 10.2.0.2:8080 check" in haproxy
    assert json.loads((tmp_path / "agent.json").read_text())["retry_join"] == ["10.1.0.1", "10.1.0.2"]


def test_a_missing_key_fails_naming_it(agent: AgentProcess, tmp_path: Path) -> None:
    result = template(agent, "--once", "--missing-key-timeout", "1s",
                      "--template", f"roles/binstore/templates/binstore.json.j2:{tmp_path}/out.json")
    assert result.returncode == 1
    assert "key 'service/binstore/postgres_addr' does not exist in Consul" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_kv_write_rerenders_and_runs_the_command_once(agent: AgentProcess, tmp_path: Path) -> None:
    put(agent, "service/binstore/postgres_addr", "10.0.0.5:5432")
    out, log = tmp_path / "binstore.json", tmp_path / "reloads"
    process = subprocess.Popen(
        [sys.executable, "-m", "opsgit", "template", "--template",
         f"roles/binstore/templates/binstore.json.j2:{out}:sh -c 'echo reload >> {log}'"],
        env=agent.env(), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: out.exists() and log.exists())
        assert log.read_text().count("reload") == 1
        put(agent, "service/binstore/redis_addr", "10.9.9.9:6379")
        wait_for(lambda: "10.9.9.9:6379" in out.read_text())
        wait_for(lambda: log.read_text().count("reload") == 2)
        before = out.stat().st_mtime_ns
        put(agent, "service/binstore/redis_addr", "10.9.9.9:6379")  # the same value: nothing to write
        time.sleep(1.0)
        assert out.stat().st_mtime_ns == before and log.read_text().count("reload") == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_malformed_specs_and_template_errors(agent: AgentProcess, tmp_path: Path) -> None:
    bad = template(agent, "--once", "--template", "only-a-source.j2")
    assert bad.returncode == 1 and "malformed --template" in bad.stderr
    broken = tmp_path / "broken.j2"
    broken.write_text("line one\n{{ key('x' }}\n")
    failed = template(agent, "--once", "--template", f"{broken}:{tmp_path}/out")
    assert failed.returncode == 1 and f"{broken}:2: template syntax error" in failed.stderr
    assert not (tmp_path / "out").exists()


def test_consul_outage_keeps_the_file_and_updates_resume(tmp_path: Path) -> None:
    from tests.agent_process import data_dir_agent, free_port

    port = free_port()
    agent = data_dir_agent(tmp_path / "data", port=port)
    put(agent, "service/binstore/postgres_addr", "10.0.0.5:5432")
    out = tmp_path / "binstore.json"
    process = subprocess.Popen([sys.executable, "-m", "opsgit", "template", "--template",
                                f"roles/binstore/templates/binstore.json.j2:{out}"], env=agent.env(), cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: out.exists())
        kept = out.read_text()
        agent.stop(signal.SIGKILL)
        time.sleep(2)
        assert out.read_text() == kept and process.poll() is None  # still running, file untouched
        agent = data_dir_agent(tmp_path / "data", port=port)
        put(agent, "service/binstore/postgres_addr", "10.0.0.6:5432")
        wait_for(lambda: "10.0.0.6:5432" in out.read_text(), timeout=40)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        agent.stop()
    assert "Consul unreachable" in err and "keeping the last files" in err
