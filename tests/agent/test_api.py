"""The dev agent over raw HTTP: Consul's headers, index rules, sessions, and refusal of bad input."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.agent_process import AgentProcess, start_agent


@pytest.fixture
def http(agent: AgentProcess) -> Iterator[requests.Session]:
    session = requests.Session()
    session.base_url = agent.url  # type: ignore[attr-defined]
    yield session
    session.close()


def url(agent: AgentProcess, path: str) -> str:
    return agent.url + path


def key() -> str:
    return f"agent-test/{uuid.uuid4().hex[:10]}"


def test_every_answer_carries_consul_headers(agent: AgentProcess) -> None:
    for response in (requests.get(url(agent, f"/v1/kv/{key()}")),  # a 404
                     requests.get(url(agent, "/v1/status/leader")),
                     requests.put(url(agent, f"/v1/kv/{key()}"), data=b"v")):
        assert int(response.headers["X-Consul-Index"]) >= 1
        assert response.headers["X-Consul-KnownLeader"] == "true"
        assert response.headers["X-Consul-LastContact"] == "0"
    missing = requests.get(url(agent, f"/v1/kv/{key()}"))
    assert missing.status_code == 404 and missing.content == b""


def test_indexes_are_monotonic_and_per_key(agent: AgentProcess) -> None:
    name = key()
    seen = []
    for value in (b"1", b"2", b"3"):
        requests.put(url(agent, f"/v1/kv/{name}"), data=value)
        seen.append(int(requests.get(url(agent, f"/v1/kv/{name}")).headers["X-Consul-Index"]))
    assert seen == sorted(seen) and len(set(seen)) == 3
    entry = requests.get(url(agent, f"/v1/kv/{name}")).json()[0]
    assert entry["CreateIndex"] < entry["ModifyIndex"] == seen[-1]


def test_raw_value(agent: AgentProcess) -> None:
    name = key()
    requests.put(url(agent, f"/v1/kv/{name}"), data=b"\x00binary\xff")
    raw = requests.get(url(agent, f"/v1/kv/{name}?raw"))
    assert raw.content == b"\x00binary\xff"
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    assert raw.headers["Content-Type"] == "text/plain"  # Consul 1.22's kvs_endpoint.go, exactly
    assert raw.headers["Content-Security-Policy"] == "sandbox"
    assert int(raw.headers["X-Consul-Index"]) >= 1


def test_prefix_watch_wakes_on_delete(agent: AgentProcess) -> None:
    prefix = key()
    requests.put(url(agent, f"/v1/kv/{prefix}/a"), data=b"1")
    requests.put(url(agent, f"/v1/kv/{prefix}/b"), data=b"2")
    index = int(requests.get(url(agent, f"/v1/kv/{prefix}?recurse")).headers["X-Consul-Index"])
    threading.Timer(0.2, lambda: requests.delete(url(agent, f"/v1/kv/{prefix}/b"))).start()
    started = time.monotonic()
    answer = requests.get(url(agent, f"/v1/kv/{prefix}?recurse&index={index}&wait=10s"))
    assert time.monotonic() - started < 5
    assert [e["Key"] for e in answer.json()] == [f"{prefix}/a"]
    assert int(answer.headers["X-Consul-Index"]) > index


@pytest.mark.slow  # waits out a real session TTL and lock-delay: `make test-slow`
def test_session_ttl_expiry_releases_and_lock_delay_holds(agent: AgentProcess) -> None:
    name = key()
    session = requests.put(url(agent, "/v1/session/create"),
                           json={"TTL": "10s", "LockDelay": "1s", "Checks": []}).json()["ID"]
    assert requests.put(url(agent, f"/v1/kv/{name}?acquire={session}"), data=b"held").json() is True
    index = int(requests.get(url(agent, f"/v1/kv/{name}")).headers["X-Consul-Index"])
    started = time.monotonic()
    released = requests.get(url(agent, f"/v1/kv/{name}?index={index}&wait=40s")).json()[0]
    waited = time.monotonic() - started
    assert "Session" not in released and 19.5 < waited < 23  # Consul's timer: twice the TTL
    other = requests.put(url(agent, "/v1/session/create"), json={"TTL": "10s", "Checks": []}).json()["ID"]
    assert requests.put(url(agent, f"/v1/kv/{name}?acquire={other}"), data=b"x").json() is False  # lock-delay
    time.sleep(1.1)
    assert requests.put(url(agent, f"/v1/kv/{name}?acquire={other}"), data=b"x").json() is True
    requests.put(url(agent, f"/v1/session/destroy/{other}"))


def test_delete_behaviour_removes_held_keys(agent: AgentProcess) -> None:
    name = key()
    session = requests.put(url(agent, "/v1/session/create"),
                           json={"behavior": "delete", "ttl": "10s", "lockdelay": "0s", "checks": []}).json()["ID"]
    requests.put(url(agent, f"/v1/kv/{name}?acquire={session}"), data=b"x")
    requests.put(url(agent, f"/v1/session/destroy/{session}"))
    assert requests.get(url(agent, f"/v1/kv/{name}")).status_code == 404


def test_renew_of_unknown_session_is_404(agent: AgentProcess) -> None:
    answer = requests.put(url(agent, f"/v1/session/renew/{uuid.uuid4()}"))
    assert answer.status_code == 404 and "not found" in answer.text


@pytest.mark.parametrize(("method", "path", "body", "status", "text"), [
    ("PUT", "/v1/session/create", b"{not json", 400, "Request decode failed"),
    ("GET", "/v1/kv/x?index=1&wait=soon", None, 400, "Invalid wait time"),
    ("GET", "/v1/kv/x?index=abc", None, 400, "Invalid index"),
    ("GET", "/v1/kv/x?stale&consistent", None, 400, "Cannot specify ?stale with ?consistent"),
    ("PUT", "/v1/kv/x?cas=0&acquire=abc", b"v", 400, "Conflicting flags"),
    ("PUT", "/v1/kv/x?acquire=no-such-session", b"v", 500, "invalid session"),
    ("PUT", "/v1/kv/big", b"x" * (512 * 1024 + 1), 413, "too large"),
    ("PUT", "/v1/session/create", b'{"TTL": "5s"}', 500, "Invalid Session TTL '5000000000', must be between "
                                                         "[10s=24h0m0s]"),
    ("PUT", "/v1/session/create", b'{"Behavior": "explode"}', 500, "Invalid Behavior setting 'explode'"),
    ("PUT", "/v1/session/create", b'{"Node": "nowhere"}', 500, "Missing node registration"),
    ("PUT", "/v1/session/create", b'{"Checks": ["nope"]}', 500, "Missing check 'nope' registration"),
    ("GET", "/v1/kv/", None, 400, "Missing key name"),
    ("DELETE", "/v1/status/leader", None, 405, ""),
    ("PUT", "/v1/txn", b'{"KV": 1}', 400, "expected a list"),
    # Malformed fields: Consul's decoder refuses them with 400, never a 500 with a traceback.
    ("PUT", "/v1/txn", b'[{"KV": {"Verb": "cas", "Key": "a", "Index": "x"}}]', 400,
     "cannot unmarshal string into Go struct field KVTxnOp.KV.Index of type uint64"),
    ("PUT", "/v1/txn", b"[" * 100_000 + b"]" * 100_000, 400, "Request decode failed"),
    ("PUT", "/v1/session/create", b'{"TTL": 1e308}', 500, "Invalid Session TTL"),
    ("PUT", "/v1/session/create", b'{"Checks": 5}', 400, "cannot unmarshal number into Go struct field checks"),
    ("PUT", "/v1/session/create", b'{"Name": {"a": 1}}', 400, "cannot unmarshal object into Go struct field name"),
    ("PUT", "/v1/agent/service/register", b'{"Name": {"a": 1}}', 400, "cannot unmarshal object"),
    ("PUT", "/v1/agent/service/register", b'{"Name": "x", "Checks": 5}', 400, "cannot unmarshal number"),
    ("PUT", "/v1/catalog/register", b'{"Node": ["x"], "Address": "1.2.3.4"}', 400,
     "cannot unmarshal array into Go struct field node of type string"),
])
def test_bad_requests_get_consuls_answers(agent: AgentProcess, method: str, path: str, body: bytes | None,
                                          status: int, text: str) -> None:
    answer = requests.request(method, url(agent, path), data=body)
    assert answer.status_code == status
    assert text in answer.text
    assert requests.get(url(agent, "/v1/status/leader")).status_code == 200  # still serving
    if status == 400:
        assert "Traceback" not in agent.log()


def test_txn_rollback_is_409_and_changes_nothing(agent: AgentProcess) -> None:
    name = key()
    answer = requests.put(url(agent, "/v1/txn"), json=[
        {"KV": {"Verb": "set", "Key": name, "Value": "YQ=="}},
        {"KV": {"Verb": "cas", "Key": name + "-other", "Value": "Yg==", "Index": 99}}])
    assert answer.status_code == 409
    assert answer.json()["Errors"][0]["OpIndex"] == 1
    assert requests.get(url(agent, f"/v1/kv/{name}")).status_code == 404


def raw_exchange(agent: AgentProcess, payload: bytes) -> bytes:
    host, port = agent.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_malformed_http_and_huge_headers_are_refused(agent: AgentProcess) -> None:
    assert raw_exchange(agent, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    huge = b"GET /v1/status/leader HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 500) for i in range(200))
    assert raw_exchange(agent, huge + b"\r\n").startswith(b"HTTP/1.1 431")
    assert requests.get(url(agent, "/v1/status/leader")).status_code == 200


def test_lengths_and_repeated_headers_as_go_reads_them(agent: AgentProcess) -> None:
    """A Content-Length is digits only (Python's int() would take "+1_0"), two different ones
    are refused, and of a repeated header the first counts (Go's Header.Get)."""
    put = b"PUT /v1/kv/lengths HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    assert raw_exchange(agent, put + b"Content-Length: +1_0\r\n\r\n0123456789").startswith(b"HTTP/1.1 400")
    assert raw_exchange(agent, put + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc").startswith(
        b"HTTP/1.1 400")
    assert raw_exchange(agent, put + b"Content-Length: 3\r\n\r\nabc").startswith(b"HTTP/1.1 200")
    repeated = raw_exchange(agent, b"GET /v1/kv/lengths HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\nConnection: keep-alive\r\n\r\n")
    assert repeated.startswith(b"HTTP/1.1 200") and b"Connection: close" in repeated  # the first one counted


def test_token_is_required_when_configured() -> None:
    secured = start_agent("--token", "s3cret")
    try:
        anonymous = requests.get(secured.url + "/v1/kv/x")
        assert (anonymous.status_code, anonymous.text) == (403, "Permission denied")  # Consul's two texts
        unknown = requests.get(secured.url + "/v1/kv/x?token=wrong")
        assert (unknown.status_code, unknown.text) == (403, "ACL not found")
        assert requests.get(secured.url + "/v1/kv/x", headers={"X-Consul-Token": "s3cret"}).status_code == 404
        assert requests.get(secured.url + "/v1/kv/x", headers={"Authorization": "Bearer s3cret"}).status_code == 404
    finally:
        secured.stop()


def test_a_refused_request_shows_no_index_and_status_answers_without_a_token() -> None:
    secured = start_agent("--token", "s3cret")
    try:
        for _ in range(3):
            assert requests.put(secured.url + "/v1/kv/busy", data=b"x", headers={"X-Consul-Token": "s3cret"}).json()
        refused = requests.get(secured.url + "/v1/kv/busy?index=1&wait=1s")
        assert refused.status_code == 403 and "X-Consul-Index" not in refused.headers  # no window on writes
        assert requests.get(secured.url + "/v1/status/leader").status_code == 200  # as Consul, no token needed
        assert requests.get(secured.url + "/v1/status/peers").status_code == 200
    finally:
        secured.stop()


def test_clean_shutdown_on_sigterm() -> None:
    process = start_agent()
    assert process.stop() == 0


def test_effective_consistency_and_consuls_wait_forms(agent: AgentProcess) -> None:
    """Reads say which consistency they got, as Consul's servers do; a `wait` needs a unit
    (Go's durations), and a negative one waits Consul's default instead of failing."""
    assert requests.get(url(agent, "/v1/catalog/nodes")).headers["X-Consul-Effective-Consistency"] == "leader"
    assert requests.get(url(agent, "/v1/health/state/any?stale")).headers[
        "X-Consul-Effective-Consistency"] == "stale"
    assert requests.get(url(agent, "/v1/kv/nothing?consistent")).headers[
        "X-Consul-Effective-Consistency"] == "consistent"
    assert "X-Consul-Effective-Consistency" not in requests.get(url(agent, "/v1/agent/services")).headers
    unitless = requests.get(url(agent, "/v1/kv/x?index=1&wait=10"))
    assert (unitless.status_code, unitless.text) == (400, "Invalid wait time")
    key = f"waits/{uuid.uuid4().hex}"
    requests.put(url(agent, f"/v1/kv/{key}"), data=b"one")
    index = requests.get(url(agent, f"/v1/kv/{key}")).headers["X-Consul-Index"]
    answers: list[requests.Response] = []
    reader = threading.Thread(target=lambda: answers.append(
        requests.get(url(agent, f"/v1/kv/{key}?index={index}&wait=-1s"), timeout=30)))
    reader.start()
    time.sleep(1.0)
    assert answers == []  # still waiting: a negative wait is not "return now"
    requests.put(url(agent, f"/v1/kv/{key}"), data=b"two")
    reader.join(10)
    assert answers and answers[0].status_code == 200
