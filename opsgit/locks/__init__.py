"""Run locks, one per environment, behind one protocol; `lock: {backend: ...}` in env.yaml picks one.

    local   a file lock beside the state (`.opsgit/state/<env>.lock`), freed when its process ends
    consul  a session with a TTL, renewed while the run lives, holding `opsgit/locks/<env>/.lock`
            (Consul's own lock layout); a crashed holder's lock frees itself when its session ends
    s3      an object written with `If-None-Match: *` (`locks/<env>.lock` in the bucket); one
            older than `stale_after` (default 2h) is reported as stale, `opsgit unlock` removes it

Every lock records its holder (who, host, command, commit, pull request, since), so that a
blocked run can say `environment prod is locked by org/ops#2488 (alice, apply, since 12:01 UTC)`.
While a lock is held, `hold()` asks the backend every `check_interval` seconds whether it is still
held; a lost lock (session destroyed or expired, object replaced, file removed) sets `lost`, and
whoever writes state under the lock stops scheduling new work.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from opsgit.errors import UserError
from opsgit.locks.holder import describe, holder_record
from opsgit.plugins import plugin_class


class Locked(UserError):
    """The environment's run lock is held by someone else (any backend)."""


class LockLost(UserError):
    """The run lock was taken away while this run held it."""


class RunLock(Protocol):
    """The run lock of one environment."""

    # where, for messages ("file .opsgit/state/dev.lock", "consul opsgit/locks/dev/.lock")
    location: str

    # how often, in seconds, `still_held` is asked while the lock is held
    check_interval: float

    # take the lock within `timeout` seconds, recording `holder`; raises Locked naming the holder
    def acquire(self, holder: Mapping[str, Any], timeout: float) -> None: ...

    # give the lock back, if it is still ours
    def release(self) -> None: ...

    # whether this process still holds the lock it acquired
    def still_held(self) -> bool: ...

    # the current holder's record; None when the lock is free
    def holder(self) -> dict[str, Any] | None: ...

    # remove someone else's lock (`opsgit unlock`)
    def force_unlock(self) -> None: ...


LOCKS = {"local": "opsgit.locks.local:LocalLock", "consul": "opsgit.locks.consul:ConsulLock",
         "s3": "opsgit.locks.s3:S3Lock"}


def open_lock(settings: Mapping[str, Any], env: str, root: Path) -> RunLock:
    """The run lock that `settings` (env.yaml's `lock:`) names, for `env`."""
    lock: RunLock = plugin_class(LOCKS, str(settings.get("backend", "local")), "lock backend")(settings, env, root)
    return lock


@dataclass
class Held:
    """A lock this run holds: `lost` is set as soon as it is no longer held."""

    env: str
    holder: Mapping[str, Any]
    lost: threading.Event

    def check(self) -> None:
        if self.lost.is_set():
            raise lock_lost(self.env)


def lock_lost(env: str) -> LockLost:
    return LockLost(f"the run lock of {env} was lost while this run held it; nothing more was started",
                    hint=f"see who holds it with `opsgit locks`, then run `opsgit plan --env {env}` again")


@contextlib.contextmanager
def hold(lock: RunLock, env: str, command: str, timeout: float = 0.0) -> Iterator[Held]:
    """Hold `lock` while the block runs, watching that it stays held."""
    holder = holder_record(command)
    lock.acquire(holder, timeout)
    held = Held(env, holder, threading.Event())
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(lock.check_interval):
            try:
                still = lock.still_held()
            except Exception:
                continue
            if not still:
                held.lost.set()
                return

    watcher = threading.Thread(target=watch, name=f"opsgit-lock-watch-{env}", daemon=True)
    watcher.start()
    try:
        yield held
    finally:
        stop.set()
        watcher.join(5)
        lock.release()


__all__ = ["LOCKS", "Held", "LockLost", "Locked", "RunLock", "describe", "hold", "holder_record", "open_lock"]
