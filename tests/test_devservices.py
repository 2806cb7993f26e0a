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
