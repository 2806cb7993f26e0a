from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent_process import AgentProcess, MotoProcess, start_agent, start_moto


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[AgentProcess, MotoProcess]]:
    """The dev agent (Consul) and moto_server (S3) the lock backends use, one pair per module."""
    agent, moto = start_agent(), start_moto()
    yield agent, moto
    agent.stop()
    moto.stop()
