"""`opsgit image` and `opsgit verify` with the real packer, git and the dev agent (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from opsgit.images.packer import packer_binary
from tests.agent_process import AgentProcess, start_agent
from tests.conftest import copy_example, run_opsgit

pytestmark = pytest.mark.skipif(packer_binary() is None, reason="packer is installed by `make test`")


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    process = start_agent()
    yield process
    process.stop()


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "ops")
    for command in (["init", "-q", "-b", "main"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "example"]):
        subprocess.run(["git", *command], cwd=root, check=True)
    return root


def image(ops: Path, agent: AgentProcess, *args: str, role: str | None = "binstore",
          extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"CONSUL_HTTP_ADDR": agent.address, **(extra or {})}
    if role:
        env["HC_ROLE"] = role
    return run_opsgit("image", *args, cwd=ops, extra=env, timeout=300)


def test_a_dev_build_is_recorded_and_promoted_by_one_line(ops: Path, agent: AgentProcess) -> None:
    built = image(ops, agent, "--env", "dev")
    assert built.returncode == 0, built.stdout + built.stderr
    record = requests.get(f"{agent.url}/v1/kv/opsgit/images/dev/binstore?raw", timeout=10).json()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ops, capture_output=True, text=True).stdout.strip()
    assert record["role"] == "binstore" and record["builder"] == "local" and record["commit"] == commit
    assert record["image_id"].startswith("local-binstore-") and record["image_id"] in built.stdout
    history = [json.loads(line) for line in (ops / ".opsgit/images/dev.jsonl").read_text().splitlines()]
    assert [h["image_id"] for h in history] == [record["image_id"]]
    with tarfile.open(ops / "build/artefacts/dev/binstore/binstore.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"./etc/consul.d/binstore.json", "./etc/opsgit/templates/binstore.json.j2", "./etc/opsgit/templates.yaml",
            "./etc/systemd/system/binstore.service", "./etc/systemd/system/opsgit-template.service"} <= names

    again = image(ops, agent, "--env", "dev", "--promote")
    assert again.returncode == 0, again.stderr
    assert record["image_id"] in again.stdout  # the same files build the same artefact
    diff = subprocess.run(["git", "diff", "-U0", "--", "environments"], cwd=ops, capture_output=True,
                          text=True).stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-binstore: ami-12c6146b", f"+binstore: {record['image_id']}"]

    listed = run_opsgit("images", "--env", "dev", cwd=ops)
    assert listed.returncode == 0 and listed.stdout.count(record["image_id"]) == 2 and "(promoted)" in listed.stdout
    assert run_opsgit("render", "--env", "dev", cwd=ops).returncode == 0
    graph = json.loads((ops / "build/envs/dev/graph.json").read_text())
    images = {r["address"]: r["attributes"]["image_id"] for r in graph["resources"]
              if r["address"].startswith("module.binstore.aws_launch_configuration")}
    assert images == {"module.binstore.aws_launch_configuration.blue": "ami-12c6146b",
                      "module.binstore.aws_launch_configuration.green": record["image_id"]}


def test_verify_runs_the_roles_testinfra_tests_against_the_build(ops: Path, agent: AgentProcess) -> None:
    assert image(ops, agent, "--env", "dev").returncode == 0
    passed = run_opsgit("verify", "--role", "binstore", "--hosts", "local://", cwd=ops)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "4 passed" in passed.stdout
    role = ops / "roles/binstore/role.yaml"
    role.write_text(role.read_text().replace("port: 8080", "port: 9090"))
    assert image(ops, agent, "--env", "dev").returncode == 0
    failed = run_opsgit("verify", "--role", "binstore", cwd=ops)
    assert failed.returncode == 1
    assert "test_the_consul_service_definition_is_valid" in failed.stdout and "9090" in failed.stdout
    assert "1 failed, 3 passed" in failed.stdout


def test_bad_input_is_one_line_and_records_nothing(ops: Path, agent: AgentProcess, tmp_path: Path) -> None:
    cases = [
        (image(ops, agent, role=None), "no role given (set HC_ROLE"),
        (image(ops, agent, role="binstor"), "unknown role 'binstor' (did you mean 'binstore'?)"),
        (image(ops, agent, "--var", "regoin=eu-west-1"), "Packer variable 'regoin' (from --var) is not declared"),
        (image(ops, agent, "--env", "prod", "--only", "lcoal"), "builder 'lcoal' (from --only) is not in"),
    ]
    tools = tmp_path / "bin"
    tools.mkdir()
    os.symlink(shutil.which("git") or "/usr/bin/git", tools / "git")
    cases.append((image(ops, agent, extra={"PATH": str(tools)}), "packer is not installed (or not on PATH) "
                                                                  "(install it: `sudo apt-get install packer`"))
    cases.append((image(ops, agent, "--var", "output_dir=/proc/opsgit"), "packer build failed for binstore/dev"))
    for result, message in cases:
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (ops / ".opsgit/images").exists()
    assert requests.get(f"{agent.url}/v1/kv/opsgit/images/dev/binstore", timeout=10).status_code == 404


def test_the_invoke_tasks_build_and_verify(ops: Path, agent: AgentProcess) -> None:
    from tests.conftest import venv_bin

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGIT_")}
    env.update({"HC_ROLE": "binstore", "CONSUL_HTTP_ADDR": agent.address,
                "PATH": f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"})
    built = subprocess.run([venv_bin("invoke"), "image", "--env", "dev"], cwd=ops, env=env, capture_output=True,
                           text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Built binstore/dev: local-binstore-" in built.stdout
    verified = subprocess.run([venv_bin("invoke"), "verify", "--hosts", "local://"], cwd=ops, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    assert verified.returncode == 0 and "4 passed" in verified.stdout, verified.stdout + verified.stderr
    env.pop("HC_ROLE")
    unset = subprocess.run([venv_bin("invoke"), "image"], cwd=ops, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert unset.returncode == 1 and "no role given" in unset.stderr


def test_a_failed_build_is_a_run_with_packers_log_on_the_dashboard(ops: Path, agent: AgentProcess) -> None:
    """Failed builds are recorded too (as runs, with Packer's whole log), and the dashboard's
    images page lists each build with its result, builder and artefact."""
    import httpx

    from tests.server.conftest import start_server

    failed = image(ops, agent, "--var", "output_dir=/proc/opsgit")
    assert failed.returncode == 1 and "packer build failed for binstore/dev" in failed.stderr
    built = image(ops, agent, "--env", "dev")
    assert built.returncode == 0, built.stderr
    first = json.loads(run_opsgit("history", "--env", "dev", "--run", "1", "--json", cwd=ops).stdout)
    assert first["kind"] == "image" and first["status"] == "errored" and first["role"] == "binstore"
    assert "packer build failed for binstore/dev" in first["error"]
    assert "binstore/dev" in first["log"] and "|" in first["log"]  # Packer's own lines, as the terminal showed them
    second = json.loads(run_opsgit("history", "--env", "dev", "--run", "2", "--json", cwd=ops).stdout)
    assert second["status"] == "built" and second["images"][0]["image_id"] in built.stdout
    server = start_server(ops, agent)
    try:
        page = httpx.get(server.url + "/images", timeout=10).text
        rows = page.split("<tbody>", 1)[1]
        assert rows.index("BUILT") < rows.index("ERRORED")  # newest first
        assert second["images"][0]["image_id"] in rows and "local" in rows  # the artefact and its builder
        log = httpx.get(server.url + "/environments/dev/runs/1", timeout=10).text
        assert "Packer log" in log and "ERRORED" in log
    finally:
        server.stop()
