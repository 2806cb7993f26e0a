from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsgit.consul import Consul
from tests.agent_process import AgentProcess, start_agent


@pytest.fixture(scope="session")
def agent() -> Iterator[AgentProcess]:
    process = start_agent()
    yield process
    process.stop()


@pytest.fixture
def consul(agent: AgentProcess) -> Iterator[Consul]:
    client = Consul(agent.address, token="")
    yield client
    client.close()
