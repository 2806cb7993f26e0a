"""Hostile input: sandbox escapes at run time, symlink tricks, slow and malformed clients."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.agent_process import AgentProcess, start_agent
from tests.conftest import REPO_ROOT, run_opsgit


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    process = start_agent()
    yield process
    process.stop()


def template(agent: AgentProcess, *args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = agent.env()
    if path is not None:
        env["PATH"] = f"{path}:{env['PATH']}"
    return run_opsgit("template", "--once", *args, cwd=REPO_ROOT, env=env, timeout=60)


@pytest.mark.parametrize("expression", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ key.__globals__['os'].system('touch /tmp/opsgit-pwned') }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% import 'os' as os %}{{ os }}",
    "{{ env.__self__ }}",
    "{{ range(10**10) | list | length }}",
])
def test_a_host_template_cannot_leave_the_sandbox(agent: AgentProcess, tmp_path: Path, expression: str) -> None:
    source = tmp_path / "evil.j2"
    source.write_text(f"line one\n{expression}\n")
    result = template(agent, "--template", f"{source}:{tmp_path}/out")
    assert result.returncode == 1 and f"{source}:2:" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not Path("/tmp/opsgit-pwned").exists()


def test_a_symlink_out_of_the_allowed_places_is_refused(agent: AgentProcess, tmp_path: Path) -> None:
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    image, outside = tmp_path / "image", tmp_path / "outside"
    outside.mkdir()
    (image / "etc").mkdir(parents=True)
    (image / "etc/binstore").symlink_to(outside)  # /etc/binstore -> somewhere else
    refused = template(agent, "--role", "binstore", "--destination-root", str(image))
    assert refused.returncode == 1 and "refusing to write" in refused.stderr and "outside" in refused.stderr
    assert list(outside.iterdir()) == []
    (image / "etc/binstore").unlink()
    (image / "etc/binstore").mkdir()
    (image / "etc/binstore/binstore.json").symlink_to(outside / "stolen")
    refused = template(agent, "--role", "binstore", "--destination-root", str(image))
    assert refused.returncode == 1 and "it is a symbolic link" in refused.stderr
    (image / "etc/binstore/binstore.json").unlink()
    tools = tmp_path / "bin"  # the role reloads its service with systemctl, which this machine lacks
    tools.mkdir()
    (tools / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    (tools / "systemctl").chmod(0o755)
    written = template(agent, "--role", "binstore", "--destination-root", str(image), path=tools)
    assert written.returncode == 0, written.stderr
    assert '"postgres_addr": "10.0.0.5:5432"' in (image / "etc/binstore/binstore.json").read_text()


def test_the_agent_keeps_answering_while_slow_clients_hold_connections(agent: AgentProcess) -> None:
    host, port = agent.address.split(":")
    slow = []
    for _ in range(50):
        connection = socket.create_connection((host, int(port)))
        connection.sendall(b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nab")
        slow.append(connection)
    try:
        for _ in range(20):
            started = time.monotonic()
            assert requests.get(f"{agent.url}/v1/status/leader", timeout=5).status_code == 200
            assert time.monotonic() - started < 2.0  # answered beside them, not after them
        assert requests.get(f"{agent.url}/v1/kv/slow", timeout=5).status_code == 404  # nothing half-written
    finally:
        for connection in slow:
            connection.close()


@pytest.mark.parametrize("request_bytes", [
    b"GET /v1/kv/\xff\xfe HTTP/1.1\r\n\r\n",
    b"PUT /v1/kv/x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"PUT /v1/kv/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /v1/kv/x?index=notanumber HTTP/1.1\r\n\r\n",
    b"\x00\x01\x02\x03" * 100 + b"\r\n\r\n",
])
def test_malformed_requests_get_an_error_and_the_agent_lives(agent: AgentProcess, request_bytes: bytes) -> None:
    host, port = agent.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request_bytes)
        answer = connection.recv(100)
    assert answer.startswith(b"HTTP/1.1 4"), answer
    assert requests.get(f"{agent.url}/v1/status/leader", timeout=5).status_code == 200
