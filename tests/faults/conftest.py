"""The fault suite: each scenario injects faults over several trials and records its figures
(trials, faults injected, data lost) for docs/reliability.md.

`make test` runs a few trials of each; `make test-faults` runs many (OPSGIT_FAULT_TRIALS) and
writes the figures to build/fault-report.jsonl.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_process import MotoProcess, start_moto

REPORT = Path(os.environ.get("OPSGIT_FAULT_REPORT", "build/fault-report.jsonl"))


def trials(default: int = 2) -> int:
    return int(os.environ.get("OPSGIT_FAULT_TRIALS", default))


def record(scenario: str, *, trials: int, faults: int, lost: int, note: str = "") -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as handle:
        handle.write(json.dumps({"scenario": scenario, "trials": trials, "faults": faults, "lost": lost,
                                 "note": note}) + "\n")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    server = start_moto()
    yield server
    server.stop()
