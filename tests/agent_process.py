"""Start `opsgit agent --dev` as a real process on a free loopback port, and stop it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import start_opsgit


@dataclass
class AgentProcess:
    process: subprocess.Popen[str]
    url: str
    address: str
    log_path: str = ""
    dns_port: int = 0

    def log(self) -> str:
        """What the agent wrote to stderr so far."""
        return Path(self.log_path).read_text(errors="replace") if self.log_path else ""

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def put(self, key: str, value: str) -> None:
        assert requests.put(f"{self.url}/v1/kv/{key}", data=value.encode(), timeout=10).json() is True

    def env(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
        environment["CONSUL_HTTP_ADDR"] = self.address
        return environment


def wait_for(predicate: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def start_agent(*args: str, port: int = 0) -> AgentProcess:
    log = tempfile.NamedTemporaryFile(prefix="opsgit-agent-", suffix=".log", delete=False)  # noqa: SIM115
    dns = () if "--dns-addr" in args else ("--dns-addr", "127.0.0.1:0")  # many agents at once: a free port each
    process = start_opsgit("agent", "--dev", "--http-addr", f"127.0.0.1:{port}", *dns, *args, stderr=log, cwd=None)
    log.close()
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://([\d.]+:\d+)", line)
    if not match:
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"agent did not start: {line}{Path(log.name).read_text()}")
    dns_port = re.search(r"DNS on [\d.]+:(\d+)", line)
    agent = AgentProcess(process, f"http://{match.group(1)}", match.group(1), log.name,
                         int(dns_port.group(1)) if dns_port else 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(agent.url + "/v1/status/leader", timeout=1,
                         headers={"X-Consul-Token": _token(args)} if _token(args) else {})
            return agent
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("agent did not answer")


def _token(args: tuple[str, ...]) -> str | None:
    return args[args.index("--token") + 1] if "--token" in args else None


def data_dir_agent(directory: Path, port: int = 0) -> AgentProcess:
    return start_agent("--data-dir", str(directory), port=port)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MotoProcess:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_moto(extra_env: dict[str, str] | None = None) -> MotoProcess:
    """moto's server mode, the AWS API on loopback."""
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, **(extra_env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/moto-api/", timeout=1)
            return MotoProcess(process, url)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto_server did not start")
