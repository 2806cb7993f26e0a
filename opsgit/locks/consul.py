"""The Consul run lock: `opsgit/locks/<env>/.lock` held by a session, in `consul lock`'s layout.

The session has a TTL and is renewed while the run lives; the lock's key is watched with blocking
queries, so a destroyed session or a key taken by someone else is noticed at once. A crashed
holder's lock frees itself when its session's TTL runs out (then Consul's lock-delay applies).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsgit.locks import Locked
from opsgit.locks.holder import describe

if TYPE_CHECKING:
    from opsgit.consul.client import Consul
    from opsgit.consul.lock import Lock, Session

PREFIX = "opsgit/locks"


def _seconds(value: Any, name: str) -> float | None:
    """A duration setting (`15s`, `2m` or a number of seconds)."""
    from opsgit.consul.durations import parse_duration
    from opsgit.errors import ConfigError

    if value is None:
        return None
    try:
        return float(value) if isinstance(value, int | float) else parse_duration(str(value))
    except ValueError:
        raise ConfigError(f"lock: {name}: {value!r} is not a duration", hint="write 15s, 500ms or 2m") from None


class ConsulLock:
    check_interval = 0.2

    def __init__(self, settings: Mapping[str, Any], env: str, root: Path) -> None:
        from opsgit.consul.lock import DEFAULT_TTL

        self.env = env
        self.prefix = f"{PREFIX}/{env}"
        self.key = f"{self.prefix}/.lock"
        self.location = f"consul {self.key}"
        self.ttl = _seconds(settings.get("ttl"), "ttl") or DEFAULT_TTL
        # Consul's lock-delay after a holder's session ends (default 15s): a holder that lost its
        # session stops within about a second, so teams may shorten it.
        self.lock_delay = _seconds(settings.get("lock_delay"), "lock_delay")
        self._consul: Consul | None = None
        self._session: Session | None = None
        self._lock: Lock | None = None
        self._stop = threading.Event()

    @property
    def consul(self) -> Consul:
        if self._consul is None:
            from opsgit.consul.client import Consul

            self._consul = Consul()
        return self._consul

    def acquire(self, holder: Mapping[str, Any], timeout: float) -> None:
        from opsgit.consul.lock import Lock, Session

        session = Session(self.consul, name=f"opsgit run lock {self.env}", ttl=self.ttl, lock_delay=self.lock_delay)
        lock = Lock(self.consul, self.prefix, session, json.dumps(dict(holder), sort_keys=True).encode())
        try:
            acquired = lock.acquire(max(timeout, 0.01))
        except BaseException:
            session.destroy()
            raise
        if not acquired:
            session.destroy()
            current = self.holder()
            message = describe(self.env, current) if current else \
                f"environment {self.env} was just unlocked; Consul's lock-delay keeps it closed for a few seconds"
            raise Locked(message, hint=f"wait with --lock-timeout 10m, or `opsgit unlock --env {self.env}`")
        self._session, self._lock = session, lock
        self._stop.clear()
        threading.Thread(target=lock.watch_loss, args=(session.lost, self._stop), daemon=True,
                         name=f"opsgit-consul-lock-{self.env}").start()

    def still_held(self) -> bool:
        return self._session is not None and not self._session.lost.is_set()

    def release(self) -> None:
        session, lock = self._session, self._lock
        self._session = self._lock = None
        self._stop.set()
        if lock is not None:
            lock.release()
        if session is not None:
            session.destroy()

    def holder(self) -> dict[str, Any] | None:
        from opsgit.consul.lock import holder_of

        _, pair = self.consul.kv.get(self.key)
        return holder_of(pair) if pair is not None and pair.session else None

    def force_unlock(self) -> None:
        _, pair = self.consul.kv.get(self.key)
        if pair is not None and pair.session:
            # Release first: destroying the holder's session would start Consul's lock-delay.
            self.consul.kv.put(self.key, pair.value, flags=pair.flags, release=pair.session)
            self.consul.session.destroy(pair.session)
        self.consul.kv.delete(self.key)
