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


def test_a_full_uint64_flag_round_trips_across_a_restart_and_the_index_never_goes_back(tmp_path: Path) -> None:
    import consul as pyconsul

    biggest = 2**64 - 1
    agent = data_dir_agent(tmp_path / "data")
    port = int(agent.address.rsplit(":", 1)[1])
    client = pyconsul.Consul(host="127.0.0.1", port=port)
    try:
        assert client.kv.put("flags/max", "v", flags=biggest) is True
        assert client.kv.put("flags/semaphore", "v", flags=0xE0F69A2BAA414DE0) is True
        index, entry = client.kv.get("flags/max")
        assert entry["Flags"] == biggest
        too_big = requests.put(f"{agent.url}/v1/kv/flags/over?flags={2**64}", data=b"v", timeout=10)
        assert too_big.status_code == 400  # as Consul: not a uint64
        assert requests.get(f"{agent.url}/v1/kv/flags/over", timeout=10).status_code == 404  # no trace of it
    finally:
        agent.stop(signal.SIGKILL)
    again = data_dir_agent(tmp_path / "data")
    try:
        client = pyconsul.Consul(host="127.0.0.1", port=int(again.address.rsplit(":", 1)[1]))
        after, entry = client.kv.get("flags/max")
        assert entry["Flags"] == biggest and int(after) >= int(index)
        assert client.kv.get("flags/semaphore")[1]["Flags"] == 0xE0F69A2BAA414DE0
    finally:
        again.stop()


def test_opsgit_lock_semaphore_works_against_a_data_dir_agent(tmp_path: Path) -> None:
    from tests.conftest import run_opsgit

    agent = data_dir_agent(tmp_path / "data")
    try:
        done = run_opsgit("lock", "-n", "2", "locks/binstore", "--", "sh", "-c", "echo held=$CONSUL_LOCK_HELD",
                          cwd=tmp_path, env=agent.env(), timeout=60)
        assert done.returncode == 0, done.stderr
        assert "held=true" in done.stdout
    finally:
        agent.stop()
