"""`scripts/devservices.py` (what `make demo` and `make demo-down` run) in two checkouts on one
machine, on different ports at the same time: each starts and stops only its own services, and
a port that another checkout holds is an error naming the variable to set."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def checkout(root: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "scripts/devservices.py", root / "scripts/devservices.py")
    return root


def services(root: Path, action: str, aws: int, consul: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPSGIT_DEMO_AWS_PORT": str(aws), "OPSGIT_DEMO_CONSUL_PORT": str(consul)}
    return subprocess.run([sys.executable, str(root / "scripts/devservices.py"), action], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def answers(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
            return True
    except OSError:
        return False


def test_two_checkouts_run_their_demos_side_by_side(tmp_path: Path) -> None:
    first, second = checkout(tmp_path / "first"), checkout(tmp_path / "second")
    ports = {first: (free_port(), free_port()), second: (free_port(), free_port())}
    try:
        for root, (aws, consul) in ports.items():
            started = services(root, "up", aws, consul)
            assert started.returncode == 0, started.stderr
            assert f"AWS API (moto_server) on 127.0.0.1:{aws}" in started.stdout
            assert answers(aws, "/moto-api/") and answers(consul, "/v1/status/leader")
        again = services(first, "up", *ports[first])
        assert again.stdout.count("already running") == 2, again.stdout
        taken = services(second, "up", *ports[first])  # the first checkout's ports
        assert taken.returncode != 0 and "set OPSGIT_DEMO_AWS_PORT to a free port" in taken.stderr, taken.stderr
        stopped = services(first, "down", *ports[first])
        assert stopped.returncode == 0 and stopped.stdout.count("stopped") == 2, stopped.stdout
        assert answers(ports[second][0], "/moto-api/") and answers(ports[second][1], "/v1/status/leader")
    finally:
        for root, (aws, consul) in ports.items():
            services(root, "down", aws, consul)


def make_checkout(root: Path) -> Path:
    """A copy of the repository that runs the Makefile with this checkout's virtual environments
    (the pyproject's time set back so make sees them up to date and installs nothing)."""
    from tests.conftest import copy_example

    copy_example(root)
    shutil.copy2(REPO_ROOT / "Makefile", root / "Makefile")
    shutil.copytree(REPO_ROOT / "scripts", root / "scripts")
    os.utime(root / "pyproject.toml", (0, 0))
    return root


def make(root: Path, target: str, aws: int, consul: int, dashboard: int) -> subprocess.Popen[str]:
    ports = [f"OPSGIT_DEMO_AWS_PORT={aws}", f"OPSGIT_DEMO_CONSUL_PORT={consul}",
             f"OPSGIT_DEMO_DASHBOARD_PORT={dashboard}"]
    return subprocess.Popen(["make", "--no-print-directory", target, f"VENV={REPO_ROOT / '.venv'}",
                             f"CHECKOV_VENV={REPO_ROOT / '.venv-checkov'}", *ports], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith(("AWS_", "CONSUL_", "OPSGIT_"))})


@pytest.mark.slow
@pytest.mark.skipif(not (REPO_ROOT / ".venv/bin/opsgit").exists(), reason="runs the Makefile with .venv")
def test_two_clones_run_make_demo_at_the_same_time(tmp_path: Path) -> None:
    """`make demo` in two checkouts at once, each on its own ports: both apply dev against their
    own moto_server and agent (read back with boto3), and `make demo-down` in one leaves the other's
    services running."""
    import boto3

    first, second = make_checkout(tmp_path / "first"), make_checkout(tmp_path / "second")
    ports = {first: (free_port(), free_port(), free_port()), second: (free_port(), free_port(), free_port())}
    try:
        runs = {root: make(root, "demo", *ports[root]) for root in (first, second)}
        for root, run in runs.items():
            log, _ = run.communicate(timeout=900)
            assert run.returncode == 0, log[-4000:]
            assert f"on 127.0.0.1:{ports[root][0]}" in log and "Apply complete!" in log, log[-4000:]
            assert f"The dashboard: http://127.0.0.1:{ports[root][2]}/" in log, log[-4000:]
            assert answers(ports[root][2], "/")  # it shows the demo's runs
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[first][2]}/environments/dev", timeout=10) as page:
            assert "APPLIED" in page.read().decode()
        for aws, _, _ in ports.values():
            ec2 = boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{aws}", region_name="us-east-1",
                               aws_access_key_id="dev", aws_secret_access_key="dev")
            groups = [group["GroupName"] for group in ec2.describe_security_groups()["SecurityGroups"]]
            assert groups.count("dev-allow-all") == 1, groups  # each demo applied to its own moto only
        down = make(first, "demo-down", *ports[first])
        log, _ = down.communicate(timeout=120)
        assert down.returncode == 0 and log.count("stopped") == 3, log  # moto, the agent, the dashboard
        assert not answers(ports[first][0], "/moto-api/") and not answers(ports[first][1], "/v1/status/leader")
        assert not answers(ports[first][2], "/login")
        assert answers(ports[second][0], "/moto-api/") and answers(ports[second][1], "/v1/status/leader")
        assert answers(ports[second][2], "/login")
    finally:
        for root, (aws, consul, _) in ports.items():
            services(root, "down", aws, consul)
