"""SIGKILL of the dev agent while clients write: every acknowledged write survives the restart,
and the X-Consul-Index a client has seen never goes back (blocking queries rely on it)."""

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
    data = tmp_path / "data"  # one data directory, killed and restarted again and again
    acknowledged: dict[str, bytes] = {}
    highest_index = 0
    lost = 0
    for trial in range(runs):
        agent = data_dir_agent(data, port=port)
        lock = threading.Lock()
        stop = threading.Event()
        seen: list[int] = []

        def reader(agent_url: str = agent.url, stop: threading.Event = stop, seen: list[int] = seen) -> None:
            with requests.Session() as http:
                while not stop.is_set():
                    try:
                        answer = http.get(f"{agent_url}/v1/kv/w0/?keys", timeout=5)
                    except requests.RequestException:
                        return
                    if "X-Consul-Index" in answer.headers:
                        seen.append(int(answer.headers["X-Consul-Index"]))

        def writer(number: int, agent_url: str = agent.url, stop: threading.Event = stop,
                   lock: threading.Lock = lock, acknowledged: dict[str, bytes] = acknowledged,
                   trial: int = trial) -> None:
            with requests.Session() as http:
                sequence = 0
                while not stop.is_set():
                    key, value = f"w{number}/{trial}-{sequence}", f"{number}-{sequence}-{'x' * 64}".encode()
                    try:
                        answer = http.put(f"{agent_url}/v1/kv/{key}", data=value, timeout=5)
                    except requests.RequestException:
                        return  # the agent died mid-request: this write was never acknowledged
                    if answer.status_code == 200 and answer.json() is True:
                        with lock:
                            acknowledged[key] = value
                    sequence += 1

        writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)] + [threading.Thread(target=reader)]
        for thread in writers:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        agent.stop(signal.SIGKILL)
        stop.set()
        for thread in writers:
            thread.join()
        assert seen, "the reader saw no index before the kill"
        highest_index = max(highest_index, *seen)
        again = data_dir_agent(data, port=port)
        try:
            answer = requests.get(f"{again.url}/v1/kv/?recurse", timeout=10)
            stored = {entry["Key"]: base64.b64decode(entry["Value"] or "") for entry in answer.json() or []}
            index_after = int(answer.headers["X-Consul-Index"])
        finally:
            again.stop()
        missing = [key for key, value in acknowledged.items() if stored.get(key) != value]
        lost += len(missing)
        assert not missing, f"trial {trial}: {len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        assert acknowledged, "the writers wrote nothing before the kill"
        assert index_after >= highest_index, f"trial {trial}: X-Consul-Index went back {highest_index} -> {index_after}"
        highest_index = index_after
    record("SIGKILL of the dev agent (`--data-dir`) during 4 concurrent writers and a reader, one data directory "
           "restarted after each kill", trials=runs, faults=runs, lost=lost,
           note=f"{len(acknowledged)} acknowledged writes checked after every restart; X-Consul-Index never went back "
                f"(last {highest_index})")
