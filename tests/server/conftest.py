"""The dashboard as a real process (`opsgit server`) beside a real dev agent, read with httpx
(and a browser in test_browser.py), over monorepos whose runs the real CLI made."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.agent_process import AgentProcess, start_agent
from tests.conftest import start_opsgit, write_tree

TOKEN = "dashboard-token-0123456789"
ENV = "description: the test environment\nmodules:\n  app:\n    source: app\n"
MODULE = ("resources:\n  null_resource.node:\n    count: 2\n    triggers: {index: \"${count.index}\"}\n"
          "  time_sleep.settle:\n    create_duration: DURATION\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def monorepo(root: Path, duration: str = "10ms") -> Path:
    return write_tree(root, {"environments/t/env.yaml": ENV,
                             "modules/app/module.yaml": MODULE.replace("DURATION", duration),
                             "environments/u/env.yaml": "description: another\nmodules: {}\n"})


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    root: Path
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # what the server printed (an error's traceback) belongs in a failing test's output
        print(self.log.read_text()[-4000:])


def start_server(root: Path, agent: AgentProcess | None, *args: str, token: str | None = TOKEN,
                 address: str | None = None) -> Server:
    port = free_port()
    extra = {"CONSUL_HTTP_ADDR": agent.address if agent else "127.0.0.1:9"}
    if token:
        extra["OPSGIT_SERVER_TOKEN"] = token
    log = root.parent / f"server-{port}.log"
    with log.open("w") as sink:  # a file, not a pipe: a pipe nobody reads would stop the server once full
        process = start_opsgit("server", "--http-addr", address or f"127.0.0.1:{port}", *args, cwd=root,
                               extra=extra, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text()
        if "opsgit server on" in text:
            url = text.split("opsgit server on ", 1)[1].split()[0].rstrip("/").replace("0.0.0.0", "127.0.0.1")
            try:
                httpx.get(url + "/login", timeout=1)
                return Server(process, url, root, log)
            except httpx.TransportError:
                pass
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard exited: {text}")
        time.sleep(0.1)
    raise RuntimeError("the dashboard did not answer")


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentProcess]:
    started = start_agent()
    yield started
    started.stop()


def sign_in(client: httpx.Client, name: str = "alice", token: str = TOKEN) -> str:
    """Sign in; the CSRF token of the new session (read off a page, as a browser's form has it)."""
    response = client.post("/login", data={"name": name, "token": token, "next": "/locks"})
    assert response.status_code == 303, response.text
    page = client.get("/locks").text
    marker = 'name="csrf" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]
