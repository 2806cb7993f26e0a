"""The AWS endpoint throttles and fails: opsgit retries through it; when the failures do not stop
it fails clearly with a consistent state, and the next apply converges."""

from __future__ import annotations

import os
import random
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests

from opsgit.engine.backends.local import LocalBackend
from tests.agent_process import MotoProcess
from tests.conftest import run_opsgit, write_tree
from tests.faults.conftest import record, trials
from tests.faults.test_apply_sigkill import ENV, MODULE, NODES

# Fault trials: `make test-slow` and `make test-faults` run them.
pytestmark = pytest.mark.slow

EC2_THROTTLE = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                b"</Message></Error></Errors><RequestID>f</RequestID></Response>")
QUERY_THROTTLE = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
                  b"</Message></Error><RequestId>f</RequestId></ErrorResponse>")
UNAVAILABLE = (b"<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>"
               b"</ErrorResponse>")


class FaultyProxy(ThreadingHTTPServer):
    """Forwards to moto_server, answering a share of requests with throttling or a 503 instead."""

    def __init__(self, upstream: str, rate: float, seed: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.rate = rate
        self.fail_action: str | None = None  # every request with this Action fails
        self.random = random.Random(seed)
        self.injected = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FaultyProxy

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            always = self.server.fail_action is not None and f"Action={self.server.fail_action}".encode() in body
            inject = always or self.server.random.random() < self.server.rate
            if inject:
                self.server.injected += 1
        if inject:
            if always or self.server.random.random() < 0.5:
                status, payload = 503, UNAVAILABLE
            else:
                status, payload = 400, EC2_THROTTLE if b"Version=2016-11-15" in body else QUERY_THROTTLE
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(self.command, self.server.upstream + self.path, data=body, headers=headers,
                                  timeout=60)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


@pytest.fixture
def proxy(moto: MotoProcess) -> Iterator[FaultyProxy]:
    requests.post(moto.url + "/moto-api/reset", timeout=10)
    server = FaultyProxy(moto.url, rate=0.25, seed=42)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def run(root: Path, proxy: FaultyProxy, *args: str, attempts: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSGIT_"))}
    env.update({"AWS_ENDPOINT_URL": proxy.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_RETRY_MODE": "standard"})
    if attempts:
        env["AWS_MAX_ATTEMPTS"] = str(attempts)
    return run_opsgit(*args, cwd=root, env=env, timeout=600)


def test_throttling_and_5xx_are_retried_then_fail_clearly(tmp_path: Path, proxy: FaultyProxy,
                                                          moto: MotoProcess) -> None:
    runs = trials(1)
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    for trial in range(runs):
        requests.post(moto.url + "/moto-api/reset", timeout=10)
        root = write_tree(tmp_path / f"t{trial}", {"environments/t/env.yaml": ENV, "modules/app/module.yaml": MODULE})
        applied = run(root, proxy, "apply", "--env", "t", "--auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        planned = run(root, proxy, "plan", "--env", "t", "--detailed-exitcode")
        assert planned.returncode == 0, planned.stdout + planned.stderr
    running = [i for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])[
        "Reservations"] for i in r["Instances"]]
    assert len(running) == NODES
    retried = proxy.injected

    # Failures that do not stop: a clear error, the state holds what was done, then convergence.
    requests.post(moto.url + "/moto-api/reset", timeout=10)
    root = write_tree(tmp_path / "stuck", {"environments/t/env.yaml": ENV, "modules/app/module.yaml": MODULE})
    proxy.rate, proxy.fail_action = 0.0, "RunInstances"
    failed = run(root, proxy, "apply", "--env", "t", "--auto-approve", attempts=2)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ServiceUnavailable" in failed.stdout + failed.stderr and "Traceback" not in failed.stderr
    state = LocalBackend({}, "t", root).load()
    assert "module.app.aws_security_group.app" in state.resources
    assert not any(address.startswith("module.app.aws_instance") for address in state.resources)
    proxy.fail_action = None
    healed = run(root, proxy, "apply", "--env", "t", "--auto-approve")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["faults-sg"]}])
    assert len(groups["SecurityGroups"]) == 1
    record("AWS endpoint answering 25% of requests with throttling or 503 (a fault-injecting proxy before "
           "moto_server), then failing every RunInstances", trials=runs + 1, faults=proxy.injected, lost=0,
           note=f"{retried} faults retried through; the unending one failed the apply in one clear line, "
                "the state kept the security group, the next apply converged")
