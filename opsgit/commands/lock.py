"""`opsgit lock [-n N] PREFIX -- CMD...`: run CMD while holding a Consul lock or semaphore slot,
with `consul lock`'s key layout. The child gets CONSUL_LOCK_HELD=true; if the lock is lost its
whole process group gets SIGTERM, then SIGKILL after a grace period. The child's exit code is
opsgit's."""

from __future__ import annotations

import os
import shlex
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError

if TYPE_CHECKING:
    from opsgit.consul.client import Consul
    from opsgit.consul.lock import Lock, Semaphore, Session
    from opsgit.runtime.child import Child

KILL_GRACE = 5.0
EXIT_NOT_ACQUIRED = 1


def lock(prefix: str, command: Sequence[str], *, limit: int = 1, timeout: float | None = None,
         name: str | None = None, ttl: float | None = None, lock_delay: float | None = None,
         consul: Consul | None = None) -> int:
    from opsgit.consul.client import Consul
    from opsgit.consul.lock import DEFAULT_TTL, Lock, Semaphore, Session
    from opsgit.runtime.child import SignalForwarder

    if not command:
        raise UserError("no command given", hint="opsgit lock PREFIX -- CMD [ARGS...]")
    if limit < 1:
        raise UserError("-n must be at least 1")
    prefix = prefix.strip("/")
    if not prefix:
        raise UserError("the lock prefix is empty", hint="e.g. opsgit lock locks/binstore -- CMD")
    consul = consul or Consul()
    consul.agent.node_name()  # fail fast, as `consul lock` does, when no agent answers
    label = name or f"Consul lock for '{shlex.join(command)}' at '{prefix}'"
    session = Session(consul, name=label, ttl=DEFAULT_TTL if ttl is None else ttl,
                      behavior="release" if limit == 1 else "delete",
                      lock_delay=lock_delay)
    holder: Lock | Semaphore = (Lock(consul, prefix, session) if limit == 1
                                else Semaphore(consul, prefix, limit, session))
    interrupted = threading.Event()
    wake = threading.Event()
    children: list[Child] = []
    try:
        with SignalForwarder(children, wake) as forwarder:
            failures: list[UserError] = []
            acquiring = threading.Thread(target=lambda: _acquire(holder, timeout, interrupted, wake, failures),
                                         daemon=True)
            acquiring.start()
            while acquiring.is_alive() and not forwarder.received:
                wake.wait(0.5)
                wake.clear()
            if forwarder.received:
                interrupted.set()
            acquiring.join()
            if failures:
                raise failures[0]
            if not holder.held:
                print("error: shutdown triggered or timeout during lock acquisition", file=sys.stderr)
                return EXIT_NOT_ACQUIRED
            return _run_holding(holder, session, command, children, wake)
    finally:
        holder.release()
        session.destroy()


def _acquire(holder: Lock | Semaphore, timeout: float | None, stop: threading.Event, wake: threading.Event,
             failures: list[UserError]) -> None:
    try:
        holder.acquire(timeout, stop=stop)
    except UserError as error:  # raised again in the main thread: one line, not a thread's traceback
        failures.append(error)
    finally:
        wake.set()


def _run_holding(holder: Lock | Semaphore, session: Session, command: Sequence[str], children: list[Child],
                 wake: threading.Event) -> int:
    from opsgit.runtime.child import Child, relay

    stop_watching = threading.Event()
    lost = session.lost
    watcher = threading.Thread(target=holder.watch_loss, args=(lost, stop_watching), daemon=True)
    watcher.start()
    threading.Thread(target=relay, args=(lost, wake), daemon=True).start()
    child = Child(command, {**os.environ, "CONSUL_LOCK_HELD": "true"})
    children.append(child)
    threading.Thread(target=relay, args=(child.exited, wake), daemon=True).start()
    try:
        while not child.exited.is_set() and not lost.is_set():
            wake.wait(1.0)
            wake.clear()
        if lost.is_set() and not child.exited.is_set():
            print("error: lock lost; stopping the child", file=sys.stderr, flush=True)
            return child.stop(grace=KILL_GRACE)
        return child.returncode
    finally:
        stop_watching.set()


COMMANDS = (Command(
    "lock", "run a command while holding a Consul lock (`consul lock` layout)", lambda a: lock(
        a.prefix, a.command_args, limit=a.limit, timeout=a.timeout, name=a.name, ttl=a.session_ttl,
        lock_delay=a.lock_delay), task=False,
    description="Run CMD while holding the lock PREFIX/.lock, or with -n N one of N semaphore slots. The child gets "
                "CONSUL_LOCK_HELD=true; if the lock is lost its process group is stopped. opsgit exits with the "
                "child's exit code.", args=(
        Arg("-n", "how many may hold it at once (default 1)", kind="int", default=1, dest="limit", metavar="N"),
        Arg("--timeout", "give up after this long (default: wait for ever), e.g. 30s", kind="duration",
            metavar="DURATION"),
        Arg("--name", "the session's name", metavar="NAME"),
        Arg("--session-ttl", "session TTL (default 15s)", kind="duration", default=15.0, metavar="DURATION"),
        Arg("--lock-delay", "Consul lock-delay after a holder dies (default: Consul's 15s)", kind="duration",
            metavar="DURATION"),
        Arg("prefix", "the KV prefix of the lock"),
        Arg("command_args", "the command and its arguments", kind="remainder", metavar="-- CMD"),
    )),)
