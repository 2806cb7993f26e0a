"""With --data-dir every acknowledged write survives a restart, even after SIGKILL."""

from __future__ import annotations

import signal
from pathlib import Path

import requests

from tests.agent_process import data_dir_agent


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    agent = data_dir_agent(tmp_path / "data")
    acknowledged = {}
    with requests.Session() as http:
        for number in range(300):
            answer = http.put(f"{agent.url}/v1/kv/durable/{number}", data=f"value-{number}".encode())
            if answer.status_code == 200 and answer.json() is True:
                acknowledged[f"durable/{number}"] = f"value-{number}".encode()
        http.delete(f"{agent.url}/v1/kv/durable/7")
        acknowledged.pop("durable/7")
        last_index = int(http.get(f"{agent.url}/v1/kv/durable/299").headers["X-Consul-Index"])
    agent.stop(signal.SIGKILL)

    again = data_dir_agent(tmp_path / "data")
    try:
        tree = requests.get(f"{again.url}/v1/kv/durable?recurse").json()
        import base64
        restored = {entry["Key"]: base64.b64decode(entry["Value"]) for entry in tree}
        assert restored == acknowledged
        requests.put(f"{again.url}/v1/kv/durable/after", data=b"x")
        assert int(requests.get(f"{again.url}/v1/kv/durable/after").headers["X-Consul-Index"]) > last_index
    finally:
        again.stop()


def test_sessions_and_locks_survive_a_restart(tmp_path: Path) -> None:
    agent = data_dir_agent(tmp_path / "data")
    session = requests.put(f"{agent.url}/v1/session/create", json={"TTL": "60s", "Checks": []}).json()["ID"]
    requests.put(f"{agent.url}/v1/kv/locks/x?acquire={session}", data=b"holder")
    agent.stop()
    again = data_dir_agent(tmp_path / "data")
    try:
        assert requests.get(f"{again.url}/v1/session/info/{session}").json()[0]["ID"] == session
        assert requests.get(f"{again.url}/v1/kv/locks/x").json()[0]["Session"] == session
    finally:
        again.stop()
