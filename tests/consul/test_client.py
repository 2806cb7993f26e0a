"""The client through a fake transport: retries, errors, tokens, and the watch loop's rules."""

from __future__ import annotations

import json
import threading

import pytest

from opsgit.consul import Consul, MockTransport, Request, Response
from opsgit.consul.durations import format_duration, parse_duration
from opsgit.consul.watch import watch
from opsgit.errors import ConsulError, ConsulUnavailable


def kv_body(key: str, value: str, index: int) -> bytes:
    import base64
    return json.dumps([{"Key": key, "Value": base64.b64encode(value.encode()).decode(), "Flags": 0,
                        "CreateIndex": index, "ModifyIndex": index, "LockIndex": 0}]).encode()


def test_token_header_and_kv_decoding() -> None:
    transport = MockTransport(lambda r: Response(200, kv_body("a", "hello", 7), {"X-Consul-Index": "7"}))
    consul = Consul("127.0.0.1:8500", token="t0ken", transport=transport)
    index, pair = consul.kv.get("a")
    assert (index, pair.text if pair else None, pair.modify_index if pair else None) == (7, "hello", 7)
    assert ("X-Consul-Token", "t0ken") in transport.requests[0].headers


def test_404_is_none_with_its_index() -> None:
    consul = Consul("x:1", transport=MockTransport(lambda r: Response(404, b"", {"X-Consul-Index": "12"})))
    assert consul.kv.get("missing") == (12, None)


def test_reads_retry_5xx_with_backoff_then_succeed() -> None:
    answers = [Response(503, b"busy"), Response(500, b"oops"), Response(200, b'"leader:8300"')]
    transport = MockTransport(lambda r: answers.pop(0))
    consul = Consul("x:1", transport=transport, backoff=0.001)
    assert consul.status.leader() == "leader:8300"
    assert len(transport.requests) == 3


def test_a_500_to_a_write_is_not_retried_and_keeps_request_and_response() -> None:
    transport = MockTransport(lambda r: Response(500, b'invalid session "x"'))
    consul = Consul("x:1", transport=transport, backoff=0.001)
    with pytest.raises(ConsulError) as caught:
        consul.kv.put("k", "v", acquire="x")
    assert len(transport.requests) == 1
    assert caught.value.status == 500
    assert isinstance(caught.value.request, Request) and caught.value.request.param("acquire") == "x"
    assert "invalid session" in str(caught.value)


def test_connection_errors_are_retried_then_reported() -> None:
    calls = []

    def refuse(request: Request) -> Response:
        calls.append(request)
        raise ConsulUnavailable("cannot reach Consul at http://x:1: connection refused", request=request)

    consul = Consul("x:1", transport=MockTransport(refuse), retries=2, backoff=0.001)
    with pytest.raises(ConsulUnavailable):
        consul.kv.get("a")
    assert len(calls) == 3


def test_blocking_query_sends_index_and_wait_and_a_longer_timeout() -> None:
    transport = MockTransport(lambda r: Response(200, kv_body("a", "x", 9), {"X-Consul-Index": "9"}))
    Consul("x:1", transport=transport).kv.get("a", index=8, wait=60)
    request = transport.requests[0]
    assert request.param("index") == "8" and request.param("wait") == "60s"
    assert request.read_timeout > 60 * 1.0625


def test_address_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "consul.internal:8501")
    monkeypatch.setenv("CONSUL_HTTP_SSL", "true")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-env")
    consul = Consul(transport=MockTransport(lambda r: Response(200)))
    assert consul.address == "https://consul.internal:8501"
    assert consul.token == "from-env"


def test_durations() -> None:
    assert parse_duration("1m30s") == 90 and parse_duration("150ms") == 0.15 and parse_duration("15") == 15
    assert format_duration(15) == "15s" and format_duration(0.25) == "250ms"
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_watch_resets_a_backwards_index_and_never_blocks_on_zero() -> None:
    answers = [(5, "a"), (9, "b"), (3, "c"), (4, "c")]
    asked: list[int] = []

    stop = threading.Event()

    def fetch(index: int, wait: float) -> tuple[int, str]:
        asked.append(index)
        answer = answers.pop(0)
        if not answers:
            stop.set()
        return answer

    seen = list(watch(fetch, min_interval=0, stop=stop))
    assert asked == [0, 5, 9, 0]  # after 9 -> 3 the index went backwards: start over from 0
    assert seen == [(5, "a"), (9, "b"), (3, "c")]  # (4, "c") is no change


def test_watch_rides_out_errors_with_backoff() -> None:
    outcomes: list[object] = [ConsulUnavailable("down"), ConsulUnavailable("down"), (2, "up")]
    errors: list[float] = []

    def fetch(index: int, wait: float) -> tuple[int, str]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    result = next(watch(fetch, min_interval=0, on_error=lambda error, delay: errors.append(delay)))
    assert result == (2, "up")
    assert errors == [0.25, 0.5]
