"""`opsgit agent --dev --config-dir`: the example's rendered service definitions (what its images
ship in /etc/consul.d/) load at start; editing one and sending SIGHUP, or PUT /v1/agent/reload,
updates the catalog; a bad file is one line naming it. Read back with py-consul."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import consul as py_consul
import requests

from tests.agent_process import AgentProcess, start_agent
from tests.conftest import copy_example, run_opsgit


def client(agent: AgentProcess) -> py_consul.Consul:
    host, port = agent.address.split(":")
    return py_consul.Consul(host=host, port=int(port))


def rendered_definitions(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "ops")
    assert run_opsgit("render", cwd=root).returncode == 0
    consul_d = tmp_path / "consul.d"
    consul_d.mkdir()
    for path in (root / "build/roles").glob("*/consul/*.json"):
        shutil.copy(path, consul_d / path.name)
    return consul_d


def wait_for(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_examples_definitions_load_and_reload(tmp_path: Path) -> None:
    consul_d = rendered_definitions(tmp_path)
    names = sorted(json.loads(p.read_text())["service"]["name"] for p in consul_d.glob("*.json"))
    assert "binstore" in names
    agent = start_agent("--config-dir", str(consul_d))
    try:
        consul = client(agent)
        assert sorted(consul.agent.services()) == names
        binstore = consul.agent.services()["binstore"]
        assert binstore["Port"] == 8080
        assert any(c["Name"] == "binstore health" for c in consul.agent.checks().values())
        path = next(p for p in consul_d.glob("*.json") if json.loads(p.read_text())["service"]["name"] == "binstore")
        definition = json.loads(path.read_text())
        definition["service"]["port"] = 9090
        path.write_text(json.dumps(definition))
        agent.process.send_signal(signal.SIGHUP)
        wait_for(lambda: consul.agent.services()["binstore"]["Port"] == 9090)
        assert consul.catalog.service("binstore")[1][0]["ServicePort"] == 9090
        path.unlink()
        assert requests.put(f"{agent.url}/v1/agent/reload", timeout=10).status_code == 200
        assert "binstore" not in consul.agent.services()
        consul.agent.service.register("by-api", service_id="by-api")  # not from a file: reloads leave it
        (consul_d / "broken.json").write_text('{"service": {"name": "x",\n  oops}')
        answer = requests.put(f"{agent.url}/v1/agent/reload", timeout=10)
        assert answer.status_code == 500 and "broken.json" in answer.text
        assert "by-api" in consul.agent.services() and sorted(consul.agent.services()) == sorted(
            [n for n in names if n != "binstore"] + ["by-api"])
    finally:
        agent.stop()


def test_a_bad_file_at_start_is_one_line(tmp_path: Path) -> None:
    consul_d = tmp_path / "consul.d"
    consul_d.mkdir()
    (consul_d / "web.json").write_text('{"service": {"name": "web",\n  "port": }}')
    result = run_opsgit("agent", "--dev", "--http-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0", "--config-dir",
                        str(consul_d), cwd=tmp_path, timeout=30)
    assert result.returncode == 1 and f"{consul_d / 'web.json'}:2" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


HCL = """
# as Consul's documentation writes a definition
service {
  name = "redis"
  id   = "redis-1"
  port = 6379
  tags = ["primary"]
  meta = { engine = "7.2" }
  check {
    id       = "redis-ttl"
    name     = "redis alive"
    ttl      = "30s"
  }
}
service {
  name = "webapp"
  port = 8080
}
check {
  id   = "disk"
  name = "disk space"
  ttl  = "1m"
}
"""


def test_hcl_definitions_load_and_a_bad_one_names_its_line(tmp_path: Path) -> None:
    consul_d = tmp_path / "consul.d"
    consul_d.mkdir()
    (consul_d / "services.hcl").write_text(HCL)
    agent = start_agent("--config-dir", str(consul_d))
    try:
        services = client(agent).agent.services()
        assert sorted(services) == ["redis-1", "webapp"]
        assert services["redis-1"]["Tags"] == ["primary"] and services["redis-1"]["Meta"] == {"engine": "7.2"}
        checks = client(agent).agent.checks()
        assert checks["redis-ttl"]["ServiceID"] == "redis-1" and "disk" in checks
        (consul_d / "services.hcl").write_text(HCL + 'service {\n  name = "cut off"\n  port = \n')
        reload = requests.put(f"{agent.url}/v1/agent/reload", timeout=10)
        assert reload.status_code == 500 and "services.hcl" in reload.text and "line" in reload.text
        assert sorted(client(agent).agent.services()) == ["redis-1", "webapp"]  # what ran stays
    finally:
        agent.stop()
