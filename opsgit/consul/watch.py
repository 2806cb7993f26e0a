"""Blocking-query watches: `for index, data in watch(consul, key_watch("service/web/dburl")): ...`

The loop follows Consul's rules for blocking queries: the index is reset to 0 when it goes
backwards (a restored snapshot, a deleted key), never blocks with index 0, keeps at least
`min_interval` between fetches so that a churning key cannot make it spin, and rides out an
unreachable Consul with exponential backoff, telling `on_error` each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from opsgit.consul.client import Consul
from opsgit.errors import ConsulError

Fetch = Callable[[int, float], tuple[int, Any]]

DEFAULT_WAIT = 60.0
MIN_INTERVAL = 0.05
MAX_BACKOFF = 30.0


def key_watch(consul: Consul, key: str) -> Fetch:
    return lambda index, wait: consul.kv.get(key, index=index or None, wait=wait)


def prefix_watch(consul: Consul, prefix: str) -> Fetch:
    return lambda index, wait: consul.kv.tree(prefix, index=index or None, wait=wait)


def service_watch(consul: Consul, name: str, *, passing: bool = True, tag: str | None = None) -> Fetch:
    return lambda index, wait: consul.health.service(name, passing=passing, tag=tag, index=index or None, wait=wait)


def watch(fetch: Fetch, *, wait: float = DEFAULT_WAIT, min_interval: float = MIN_INTERVAL,
          stop: threading.Event | None = None, on_error: Callable[[ConsulError, float], None] | None = None,
          changes_only: bool = True, backoff: tuple[float, float] = (0.25, MAX_BACKOFF),
          on_success: Callable[[], None] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (index, data) first at once, then each time the data change (every answer with
    `changes_only=False`). Ends when `stop` is set. `backoff` is the first and the longest pause
    after an error; `on_success` hears of every answer (the end of an outage, say)."""
    stop = stop or threading.Event()
    first_backoff, max_backoff = backoff
    index = 0
    delay = first_backoff
    last: Any = object()
    last_fetch = 0.0
    while not stop.is_set():
        pause = min_interval - (time.monotonic() - last_fetch)
        if pause > 0 and stop.wait(pause):
            return
        last_fetch = time.monotonic()
        try:
            found, data = fetch(index, wait)
        except ConsulError as error:
            if on_error is not None:
                on_error(error, delay)
            if stop.wait(delay):
                return
            delay = min(delay * 2, max_backoff)
            continue
        delay = first_backoff
        if on_success is not None:
            on_success()
        # An index that went backwards means start over with a non-blocking read; never block on 0.
        index = 0 if found < index else max(found, 1)
        if not changes_only or data != last:
            last = data
            yield max(found, 1), data
