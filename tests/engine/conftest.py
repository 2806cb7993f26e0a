from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_process import AgentProcess, MotoProcess, start_agent, start_moto
from tests.conftest import apply_global, copy_example


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def consul_agent() -> Iterator[AgentProcess]:
    agent = start_agent()
    yield agent
    agent.stop()


@pytest.fixture
def dev_env(moto: MotoProcess, consul_agent: AgentProcess) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONSUL_", "OPSGIT_"))}
    environment.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1", "CONSUL_HTTP_ADDR": consul_agent.address})
    return environment


@pytest.fixture
def fresh_moto(moto: MotoProcess) -> MotoProcess:
    import requests

    requests.post(moto.url + "/moto-api/reset", timeout=10)
    return moto


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "ops")


@pytest.fixture
def global_applied(ops: Path, dev_env: dict[str, str], fresh_moto: MotoProcess) -> Path:
    """The example with `global` applied on a fresh moto: dev reads its outputs."""
    apply_global(ops, dev_env)
    return ops
