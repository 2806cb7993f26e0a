"""Script checks as Consul runs them (exit 0 passing, 1 warning, else critical, output kept),
only with --enable-script-checks; HTTP checks keep the body as their output. Registered and read
back with py-consul against the real agent process."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import consul as py_consul
import pytest

from tests.agent_process import AgentProcess, start_agent


def client(agent: AgentProcess) -> py_consul.Consul:
    host, port = agent.address.split(":")
    return py_consul.Consul(host=host, port=int(port))


def check_state(consul: py_consul.Consul, check_id: str) -> tuple[str, str]:
    found = consul.agent.checks()[check_id]
    return found["Status"], found["Output"]


def wait_for_state(consul: py_consul.Consul, check_id: str, status: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, output = check_state(consul, check_id)
        if found == status and output:  # a new check starts critical with no output: wait for a run
            return output
        time.sleep(0.1)
    raise AssertionError(f"{check_id} never became {status}: {check_state(consul, check_id)}")


@pytest.fixture
def scripting() -> Iterator[AgentProcess]:
    started = start_agent("--enable-script-checks")
    yield started
    started.stop()


def test_a_script_check_follows_its_exit_code_and_keeps_its_output(scripting: AgentProcess, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.write_text("0")
    script = tmp_path / "check.sh"
    script.write_text(f'#!/bin/sh\nc=$(cat {code})\necho "disk usage check: exit $c"\nexit $c\n')
    script.chmod(0o755)
    consul = client(scripting)
    consul.agent.service.register("binstore", service_id="binstore-1", port=8080,
                                  check=py_consul.Check.script([str(script)], "200ms"))
    assert wait_for_state(consul, "service:binstore-1", "passing") == "disk usage check: exit 0\n"
    code.write_text("1")
    assert wait_for_state(consul, "service:binstore-1", "warning") == "disk usage check: exit 1\n"
    code.write_text("2")
    assert wait_for_state(consul, "service:binstore-1", "critical") == "disk usage check: exit 2\n"
    [entry] = consul.health.service("binstore")[1]
    assert {c["CheckID"]: c["Status"] for c in entry["Checks"]}["service:binstore-1"] == "critical"


def test_a_slow_script_times_out_critical(scripting: AgentProcess) -> None:
    consul = client(scripting)
    consul.agent.check.register("slow", check={"Args": ["sleep", "5"], "Interval": "10s", "Timeout": "300ms"})
    assert "Timed out (0.3s)" in wait_for_state(consul, "slow", "critical")


def test_without_the_flag_a_script_check_is_refused_as_consul_refuses_it(tmp_path: Path) -> None:
    import requests

    agent = start_agent()
    try:
        answer = requests.put(f"{agent.url}/v1/agent/check/register", timeout=10,
                              json={"Name": "s", "Args": ["true"], "Interval": "1s"})
        assert answer.status_code == 400
        assert answer.text.startswith("Scripts are disabled on this agent; to enable, configure "
                                      "'enable_script_checks' or 'enable_local_script_checks' to true")
        service = requests.put(f"{agent.url}/v1/agent/service/register", timeout=10,
                               json={"Name": "x", "Check": {"Args": ["true"], "Interval": "1s"}})
        assert service.status_code == 400 and "x" not in client(agent).agent.services()  # nothing registered
        docker = requests.put(f"{agent.url}/v1/agent/check/register", timeout=10,
                              json={"Name": "d", "DockerContainerID": "abc", "Args": ["true"], "Interval": "1s"})
        assert docker.status_code == 400
    finally:
        agent.stop()


class Body(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "degraded", "queue": 812}' + b"x" * 6000
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def test_an_http_check_keeps_the_body_as_its_output() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Body)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    agent = start_agent()
    try:
        consul = client(agent)
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        consul.agent.check.register("web", check=py_consul.Check.http(url, "200ms"))
        output = wait_for_state(consul, "web", "critical")
        assert output.startswith(f"HTTP GET {url}: 503 Service Unavailable Output: " + '{"status": "degraded"')
        assert len(output) < 4 * 1024 + 200  # the first 4 KB of the body
    finally:
        agent.stop()
        server.shutdown()
        server.server_close()
