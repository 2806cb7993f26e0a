from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent_process import AgentProcess, start_agent


@pytest.fixture
def agent() -> Iterator[AgentProcess]:
    process = start_agent()
    yield process
    process.stop()
