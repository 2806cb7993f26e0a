"""The Python API the rest of opsgit uses: `consul_lock` and `watch`, against the dev agent."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from opsgit.consul import Consul
from opsgit.consul.lock import LockTimeout, consul_lock
from opsgit.consul.watch import key_watch, watch


def test_consul_lock_tells_who_holds_it_and_times_out(consul: Consul) -> None:
    prefix = f"opsgit/locks/{uuid.uuid4().hex[:8]}"
    holder = {"who": "alice", "command": "apply", "since": "12:01 UTC"}
    told: list[dict[str, object]] = []
    with consul_lock(consul, prefix, holder, timeout=5, lock_delay=0) as held:
        assert consul.kv.get(f"{prefix}/.lock")[1].session == held.session  # type: ignore[union-attr]
        with pytest.raises(LockTimeout, match="locked by alice, apply, since 12:01 UTC"), \
                consul_lock(consul, prefix, {"who": "bob"}, timeout=0.5, blocked=told.append):
            pass
        assert told == [holder]
        assert not held.lost.is_set()
    assert consul.kv.get(f"{prefix}/.lock")[1] is None  # released and cleaned up


def test_consul_lock_waits_for_the_holder(consul: Consul) -> None:
    prefix = f"opsgit/locks/{uuid.uuid4().hex[:8]}"
    order: list[str] = []

    def second() -> None:
        with consul_lock(consul, prefix, {"who": "second"}, timeout=10, lock_delay=0):
            order.append("second")

    with consul_lock(consul, prefix, {"who": "first"}, timeout=5, lock_delay=0):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]


def test_watch_yields_each_write_but_not_a_timed_out_query(consul: Consul) -> None:
    key = f"watch/{uuid.uuid4().hex[:8]}"
    consul.kv.put(key, "v0")
    stop = threading.Event()
    seen: list[tuple[str, int]] = []

    def writer() -> None:
        for value in ("v1", "v1", "v2"):
            time.sleep(0.2)
            consul.kv.put(key, value)
        time.sleep(2.5)  # two blocking queries time out (wait=1s) and return the same data
        stop.set()

    threading.Thread(target=writer).start()
    for index, pair in watch(key_watch(consul, key), stop=stop, wait=1):
        seen.append((pair.text, index))
    assert [text for text, _ in seen] == ["v0", "v1", "v1", "v2"]  # a same-value write is a new ModifyIndex
    assert [index for _, index in seen] == sorted({index for _, index in seen})
