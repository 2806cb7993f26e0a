"""Locks and semaphores on Consul sessions, in the key layout of `consul lock`, so that opsgit
and real `consul lock` holders cooperate on the same prefix.

    n = 1   PREFIX/.lock acquired by the session, flags LOCK_FLAG
    n > 1   PREFIX/<session> contender keys (flags SEMAPHORE_FLAG, session behaviour `delete`)
            and PREFIX/.lock = {"Limit": n, "Holders": {"<session>": true}} updated with CAS

Waiting uses blocking queries on the lock's keys: a release wakes the next waiter at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opsgit.consul.client import Consul, KVPair
from opsgit.errors import ConsulError, ConsulUnavailable, UserError

LOCK_FLAG = 0x2DDCCBC058A50C18
SEMAPHORE_FLAG = 0xE0F69A2BAA414DE0
LOCK_KEY = ".lock"
DEFAULT_TTL = 15.0
LOCK_WAIT = 15.0
LOCK_DELAY_RETRY = 1.0
OUTAGE_RETRY = 1.0
MONITOR_RETRY = 1.0  # Consul's DefaultMonitorRetryTime


class LockError(UserError):
    """The lock cannot be used as asked (wrong layout, limit conflict)."""


class LockTimeout(UserError):
    """The lock was not acquired within the timeout."""


class Session:
    """A Consul session kept alive by renewing it every TTL/2 in a thread; `lost` is set when it
    can no longer be renewed (it expired, or was destroyed)."""

    def __init__(self, consul: Consul, *, name: str, ttl: float = DEFAULT_TTL, behavior: str = "release",
                 lock_delay: float | None = None, node_checks: tuple[str, ...] = ()) -> None:
        """`node_checks` ties the session to the agent's node checks (`consul lock` uses
        serfHealth: a node that fails loses its locks); run locks use none, since the machine a CI
        job runs on is not a Consul node."""
        self.consul = consul
        self.ttl = ttl
        self.id = consul.session.create(name=name, ttl=ttl, behavior=behavior, lock_delay=lock_delay,
                                        node_checks=list(node_checks))
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="opsgit-session-renew", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        deadline = time.monotonic() + self.ttl
        while not self._stop.wait(self.ttl / 2 if deadline - time.monotonic() > self.ttl / 2 else 1.0):
            try:
                renewed = self.consul.session.renew(self.id)
            except ConsulError:
                if time.monotonic() >= deadline:
                    self.lost.set()
                    return
                continue  # keep trying every second until the TTL runs out, as Consul's client does
            if renewed is None:
                self.lost.set()
                return
            deadline = time.monotonic() + self.ttl

    def destroy(self) -> None:
        self._stop.set()
        with contextlib.suppress(ConsulError):  # if Consul is away, the session expires by itself
            self.consul.session.destroy(self.id)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _watch_held(held: Callable[[int, float], tuple[int, bool]], lost: threading.Event,
                stop: threading.Event, retries: int | None = None) -> None:
    """Follow `held` with blocking queries until it turns False (then set `lost`) or `stop` is
    set. Errors are retried every second: for ever with `retries=None` (the session's TTL decides),
    else as Consul's monitorLock does — up to `retries` retryable errors in a row (no answer, or a
    5xx), and any other error at once, count as the lock lost."""
    index = 0
    left = retries
    while not stop.is_set():
        try:
            found, still_held = held(index, LOCK_WAIT)
        except ConsulError as error:
            if left is not None:
                if left <= 0 or not _retryable(error):
                    lost.set()
                    return
                left -= 1
            index = 0
            if stop.wait(MONITOR_RETRY):
                return
            continue
        if not still_held:
            lost.set()
            return
        left = retries
        index = 0 if found < index else max(found, 1)


def _retryable(error: ConsulError) -> bool:
    """Consul's api.IsRetryableError: a network error or a server error."""
    return isinstance(error, ConsulUnavailable) or (error.status is not None and error.status >= 500)


def _retry_later(deadline: float | None, stop: threading.Event | None, pause: float) -> bool:
    """Sleep `pause` (no further than the deadline) before trying again; True to give up instead:
    the deadline passed, or `stop` was set meanwhile."""
    if _expired(deadline):
        return True
    seconds = _remaining(deadline, pause)
    if stop is not None:
        return stop.wait(seconds)
    time.sleep(seconds)
    return False


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _remaining(deadline: float | None, default: float) -> float:
    return default if deadline is None else max(0.0, min(default, deadline - time.monotonic()))


class Lock:
    """`consul lock` with n = 1."""

    def __init__(self, consul: Consul, prefix: str, session: Session, value: bytes = b"") -> None:
        self.consul = consul
        self.key = f"{prefix.strip('/')}/{LOCK_KEY}"
        self.session = session
        self.value = value
        self.held = False

    def acquire(self, timeout: float | None = None, stop: threading.Event | None = None,
                blocked: Callable[[KVPair], None] | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        index = 0
        told = False
        while not (stop and stop.is_set()):
            try:
                index, pair = self.consul.kv.get(self.key, index=index or None,
                                                 wait=_remaining(deadline, LOCK_WAIT) if index else None)
            except ConsulUnavailable:
                # Consul is away: keep waiting (the holder cannot release it either), from scratch.
                index = 0
                if _retry_later(deadline, stop, OUTAGE_RETRY):
                    return False
                continue
            if pair is not None and pair.flags != LOCK_FLAG:
                raise LockError(f"existing key {self.key} does not match lock use",
                                hint="another tool uses this prefix differently, or -n differs")
            if pair is not None and pair.session and pair.session != self.session.id:
                if blocked is not None and not told:
                    blocked(pair)
                    told = True
                if _expired(deadline):
                    return False
                continue
            try:
                acquired = self.consul.kv.put(self.key, self.value, flags=LOCK_FLAG, acquire=self.session.id)
            except ConsulUnavailable:
                acquired = False
            if acquired:
                self.held = True
                return True
            # Free, yet refused: the lock-delay of a holder whose session was invalidated.
            if _retry_later(deadline, stop, LOCK_DELAY_RETRY):
                return False
            index = 0
        return False

    def holder(self) -> KVPair | None:
        return self.consul.kv.get(self.key)[1]

    def watch_loss(self, lost: threading.Event, stop: threading.Event, retries: int | None = None) -> None:
        """Block until the lock is no longer ours (then set `lost`) or `stop` is set."""
        def held(index: int, wait: float) -> tuple[int, bool]:
            found, pair = self.consul.kv.get(self.key, index=index or None, wait=wait, consistent=True)
            return found, pair is not None and pair.session == self.session.id
        _watch_held(held, lost, stop, retries)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            self.consul.kv.put(self.key, self.value, flags=LOCK_FLAG, release=self.session.id)
            _index, pair = self.consul.kv.get(self.key)
            if pair is not None and not pair.session:
                self.consul.kv.delete(self.key, cas=pair.modify_index)
        except ConsulError:
            pass  # the session's end releases it


@dataclass
class SemaphoreState:
    limit: int
    holders: dict[str, bool]
    modify_index: int


class Semaphore:
    """`consul lock -n N`: at most `limit` holders at once."""

    def __init__(self, consul: Consul, prefix: str, limit: int, session: Session, value: bytes = b"") -> None:
        if limit < 1:
            raise LockError("a semaphore limit must be at least 1")
        self.consul = consul
        self.prefix = prefix.strip("/") + "/"
        self.limit = limit
        self.session = session
        self.value = value
        self.held = False

    @property
    def contender_key(self) -> str:
        return self.prefix + self.session.id

    def _state(self, pairs: list[KVPair]) -> SemaphoreState:
        lock = next((p for p in pairs if p.key == self.prefix + LOCK_KEY), None)
        if lock is None:
            return SemaphoreState(self.limit, {}, 0)
        if lock.flags != SEMAPHORE_FLAG:
            raise LockError(f"existing key {lock.key} does not match semaphore use")
        try:
            data = json.loads(lock.value or b"{}")
            limit, holders = int(data["Limit"]), dict(data.get("Holders") or {})
        except (ValueError, KeyError, TypeError):
            raise LockError(f"{lock.key} is not a semaphore: {lock.text[:60]!r}") from None
        if limit != self.limit:
            raise LockError(f"semaphore limit conflict (lock: {limit}, local: {self.limit})",
                            hint="every holder of a prefix must use the same -n")
        live = {p.key[len(self.prefix):] for p in pairs if p.session and p.key != self.prefix + LOCK_KEY}
        return SemaphoreState(limit, {s: True for s in holders if s in live}, lock.modify_index)

    def _write(self, state: SemaphoreState) -> bool:
        body = json.dumps({"Limit": state.limit, "Holders": state.holders}).encode()
        return self.consul.kv.put(self.prefix + LOCK_KEY, body, flags=SEMAPHORE_FLAG, cas=state.modify_index)

    def acquire(self, timeout: float | None = None, stop: threading.Event | None = None,
                blocked: Callable[[int], None] | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.consul.kv.put(self.contender_key, self.value, flags=SEMAPHORE_FLAG, acquire=self.session.id):
            raise LockError(f"cannot create contender key {self.contender_key}")
        index = 0
        told = False
        while not (stop and stop.is_set()):
            try:
                index, pairs = self.consul.kv.tree(self.prefix, index=index or None,
                                                   wait=_remaining(deadline, LOCK_WAIT) if index else None)
                state = self._state(pairs)
                if self.session.id in state.holders:
                    self.held = True
                    return True
                if len(state.holders) < state.limit:
                    state.holders[self.session.id] = True
                    if self._write(state):
                        self.held = True
                        return True
                    index = 0  # lost a CAS race: look again at once
                    continue
            except ConsulUnavailable:
                index = 0
                if _retry_later(deadline, stop, OUTAGE_RETRY):
                    break
                continue
            if blocked is not None and not told:
                blocked(len(state.holders))
                told = True
            if _expired(deadline):
                break
        self.consul.kv.delete(self.contender_key)
        return False

    def watch_loss(self, lost: threading.Event, stop: threading.Event, retries: int | None = None) -> None:
        def held(index: int, wait: float) -> tuple[int, bool]:
            found, pairs = self.consul.kv.tree(self.prefix, index=index or None, wait=wait, consistent=True)
            return found, self.session.id in self._state(pairs).holders
        _watch_held(held, lost, stop, retries)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            for _ in range(10):
                _, pairs = self.consul.kv.tree(self.prefix)
                state = self._state(pairs)
                state.holders.pop(self.session.id, None)
                if self._write(state):
                    break
            self.consul.kv.delete(self.contender_key)
            _, pairs = self.consul.kv.tree(self.prefix)
            state = self._state(pairs)
            if not state.holders and state.modify_index:
                self.consul.kv.delete(self.prefix + LOCK_KEY, cas=state.modify_index)
        except ConsulError:
            pass


@dataclass
class HeldLock:
    key: str
    session: str
    lost: threading.Event


@contextmanager
def consul_lock(consul: Consul, prefix: str, holder_info: dict[str, Any], timeout: float | None = None, *,
                ttl: float = DEFAULT_TTL, lock_delay: float | None = None,
                blocked: Callable[[dict[str, Any]], None] | None = None) -> Iterator[HeldLock]:
    """Hold `PREFIX/.lock` while the block runs; its value is `holder_info` as JSON, so a blocked
    caller can say who holds it. `lost` is set if the lock goes while the block runs."""
    value = json.dumps(holder_info, sort_keys=True).encode()
    with Session(consul, name=f"opsgit lock {prefix}", ttl=ttl, lock_delay=lock_delay) as session:
        lock = Lock(consul, prefix, session, value)

        def tell(pair: KVPair) -> None:
            if blocked is not None:
                blocked(holder_of(pair))

        if not lock.acquire(timeout, blocked=tell):
            current = lock.holder()
            raise LockTimeout(f"{prefix} is locked" + (f" by {describe_holder(holder_of(current))}" if current else ""),
                              hint="wait, or remove the lock if its holder is gone")
        stop = threading.Event()
        watcher = threading.Thread(target=lock.watch_loss, args=(session.lost, stop), daemon=True)
        watcher.start()
        try:
            yield HeldLock(lock.key, session.id, session.lost)
        finally:
            stop.set()
            lock.release()


def holder_of(pair: KVPair | None) -> dict[str, Any]:
    if pair is None or not pair.value:
        return {}
    try:
        data = json.loads(pair.value)
    except ValueError:
        return {"value": pair.text}
    return data if isinstance(data, dict) else {"value": data}


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown holder"
    parts = [str(holder[k]) for k in ("who", "command") if holder.get(k)]
    since = holder.get("since")
    return (", ".join(parts) or json.dumps(holder)) + (f", since {since}" if since else "")
