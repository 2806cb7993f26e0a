"""SIGKILL of the dev agent while clients write: every acknowledged write survives the restart."""

from __future__ import annotations

import base64
import random
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.agent_process import data_dir_agent, free_port
from tests.faults.conftest import record, trials

# Fault trials: `make test-slow` and `make test-faults` run them.
pytestmark = pytest.mark.slow


def test_acknowledged_writes_survive_sigkill_during_writes(tmp_path: Path) -> None:
    runs = trials(3)
    port = free_port()
    rng = random.Random(99)
    acknowledged_total = lost = 0
    for trial in range(runs):
        data = tmp_path / f"data{trial}"
        agent = data_dir_agent(data, port=port)
        acknowledged: dict[str, bytes] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def writer(number: int, agent_url: str = agent.url, stop: threading.Event = stop,
                   lock: threading.Lock = lock, acknowledged: dict[str, bytes] = acknowledged) -> None:
            with requests.Session() as http:
                sequence = 0
                while not stop.is_set():
                    key, value = f"w{number}/{sequence}", f"{number}-{sequence}-{'x' * 64}".encode()
                    try:
                        answer = http.put(f"{agent_url}/v1/kv/{key}", data=value, timeout=5)
                    except requests.RequestException:
                        return  # the agent died mid-request: this write was never acknowledged
                    if answer.status_code == 200 and answer.json() is True:
                        with lock:
                            acknowledged[key] = value
                    sequence += 1

        writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in writers:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        agent.stop(signal.SIGKILL)
        stop.set()
        for thread in writers:
            thread.join()
        again = data_dir_agent(data, port=port)
        try:
            tree = requests.get(f"{again.url}/v1/kv/?recurse", timeout=10).json() or []
            stored = {entry["Key"]: base64.b64decode(entry["Value"] or "") for entry in tree}
        finally:
            again.stop()
        missing = [key for key, value in acknowledged.items() if stored.get(key) != value]
        lost += len(missing)
        acknowledged_total += len(acknowledged)
        assert not missing, f"trial {trial}: {len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        assert acknowledged, "the writers wrote nothing before the kill"
    record("SIGKILL of the dev agent (`--data-dir`) during 4 concurrent writers", trials=runs, faults=runs,
           lost=lost, note=f"{acknowledged_total} acknowledged writes checked after restarts")
