"""`opsgit lock [-n N] PREFIX -- CMD...`: run CMD while holding a Consul lock or semaphore slot,
as `consul lock` does — its key layout, its session (tied to serfHealth), its flags (in Go's
single-dash spellings too) and its exit status (0 once the lock was held, 2 with -child-exit-code
when the child failed). The child gets CONSUL_LOCK_HELD=true; if the lock is lost its whole process
group gets SIGTERM, then SIGKILL after a grace period.

Unlike `consul lock`, the command runs from its argument list unless `--shell`: the words reach the
program exactly as typed, with no second round of shell quoting, and since the child's whole
process group is stopped, nothing behind a shell is orphaned either way."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError

if TYPE_CHECKING:
    from opsgit.consul.client import Consul
    from opsgit.consul.lock import Lock, Semaphore, Session
    from opsgit.runtime.child import Child, SignalForwarder

KILL_GRACE = 5.0  # consul lock's lockKillGracePeriod
EXIT_NOT_ACQUIRED = 1
EXIT_CHILD_FAILED = 2  # consul lock -child-exit-code
DEFAULT_SESSION_TTL = 15.0
DEFAULT_MONITOR_RETRY = 3  # consul lock's defaultMonitorRetry
SERF_HEALTH = "serfHealth"  # the node check consul lock's sessions are tied to


class LockOptions(NamedTuple):
    """How `opsgit lock` runs, in `consul lock`'s terms."""

    limit: int = 1
    timeout: float | None = None  # None or 0: wait for ever
    name: str | None = None
    ttl: float = DEFAULT_SESSION_TTL
    lock_delay: float | None = None
    child_exit_code: bool = False
    shell: bool = False
    pass_stdin: bool = False
    monitor_retry: int = DEFAULT_MONITOR_RETRY
    verbose: bool = False


def lock(prefix: str, command: Sequence[str], options: LockOptions | None = None, *,
         consul: Consul | None = None) -> int:
    from opsgit.consul.client import Consul
    from opsgit.consul.lock import Lock, Semaphore, Session
    from opsgit.runtime.child import SignalForwarder

    options = options or LockOptions()
    if not command:
        raise UserError("no command given", hint="opsgit lock PREFIX -- CMD [ARGS...]")
    if options.limit < 1:
        raise UserError("-n must be at least 1")
    if options.monitor_retry < 0:
        raise UserError("-monitor-retry must be 0 or more")
    prefix = prefix.strip("/")
    if not prefix:
        raise UserError("the lock prefix is empty", hint="e.g. opsgit lock locks/binstore -- CMD")
    say = _Verbose(options.verbose)
    consul = consul or Consul()
    consul.agent.node_name()  # fail fast, as `consul lock` does, when no agent answers
    label = options.name or f"Consul lock for '{shlex.join(command)}' at '{prefix}'"
    if options.limit == 1:
        say(f"Setting up lock at path: {prefix}/.lock")
    else:
        say(f"Setting up semaphore (limit {options.limit}) at prefix: {prefix}")
    session = Session(consul, name=label, ttl=options.ttl, behavior="release" if options.limit == 1 else "delete",
                      lock_delay=options.lock_delay, node_checks=(SERF_HEALTH,))
    holder: Lock | Semaphore = (Lock(consul, prefix, session) if options.limit == 1
                                else Semaphore(consul, prefix, options.limit, session))
    interrupted = threading.Event()
    wake = threading.Event()
    children: list[Child] = []
    try:
        with SignalForwarder(children, wake) as forwarder:
            failures: list[UserError] = []
            say("Attempting lock acquisition")
            acquiring = threading.Thread(target=lambda: _acquire(holder, options.timeout or None, interrupted, wake,
                                                                 failures), daemon=True)
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
            argv = _shell_line(command) if options.shell else list(command)
            code = _run_holding(holder, session, argv, children, wake, forwarder, options, say)
    finally:
        holder.release()
        session.destroy()
        say("Cleanup succeeded")
    return _exit_code(code, options.child_exit_code)


class _Verbose:
    """`-verbose`: what `consul lock` says about each step, on standard error."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(message, file=sys.stderr, flush=True)


def _shell_line(command: Sequence[str]) -> list[str]:
    """`consul lock`'s `-shell`: the words joined with spaces, run by `$SHELL -c` (or /bin/sh)."""
    return [os.environ.get("SHELL") or "/bin/sh", "-c", " ".join(command)]


def _exit_code(child_code: int, child_exit_code: bool) -> int:
    """`consul lock`'s: 0 whatever the child did, or with `-child-exit-code` 2 when it failed."""
    if child_code == 0:
        return 0
    if child_exit_code:
        return EXIT_CHILD_FAILED
    print(f"note: the command exited {child_code}; opsgit lock exits 0 as consul lock does "
          "(pass -child-exit-code to exit 2 when it fails)", file=sys.stderr)
    return 0


def _acquire(holder: Lock | Semaphore, timeout: float | None, stop: threading.Event, wake: threading.Event,
             failures: list[UserError]) -> None:
    try:
        holder.acquire(timeout, stop=stop)
    except UserError as error:  # raised again in the main thread: one line, not a thread's traceback
        failures.append(error)
    finally:
        wake.set()


def _run_holding(holder: Lock | Semaphore, session: Session, command: Sequence[str], children: list[Child],
                 wake: threading.Event, forwarder: SignalForwarder, options: LockOptions, say: _Verbose) -> int:
    """Run the child while the lock is held; its exit code (128 + N when a signal ended it)."""
    from opsgit.runtime.child import Child, relay

    stop_watching = threading.Event()
    lost = session.lost
    watcher = threading.Thread(target=holder.watch_loss, args=(lost, stop_watching, options.monitor_retry),
                               daemon=True)
    watcher.start()
    threading.Thread(target=relay, args=(lost, wake), daemon=True).start()
    say("Starting handler")
    child = Child(command, {**os.environ, "CONSUL_LOCK_HELD": "true"}, pass_stdin=options.pass_stdin)
    children.append(child)
    threading.Thread(target=relay, args=(child.exited, wake), daemon=True).start()
    try:
        while not child.exited.is_set() and not lost.is_set():
            wake.wait(1.0)
            wake.clear()
        if lost.is_set() and not child.exited.is_set():
            print("error: lock lost; stopping the child", file=sys.stderr, flush=True)
            say(f"Terminating child pid {child.pid}")
            code = child.stop(grace=KILL_GRACE)
            say("Child terminated")
            return code
        if forwarder.received:
            say("Shutdown triggered, the child has ended")
        return child.returncode
    finally:
        stop_watching.set()


def _run(a: argparse.Namespace) -> int:
    return lock(a.prefix, a.command_args, LockOptions(
        limit=a.limit, timeout=a.timeout, name=a.name, ttl=a.session_ttl, lock_delay=a.lock_delay,
        child_exit_code=a.child_exit_code, shell=a.shell, pass_stdin=a.pass_stdin, monitor_retry=a.monitor_retry,
        verbose=a.verbose))


COMMANDS = (Command(
    "lock", "run a command while holding a Consul lock (`consul lock` layout)", _run, task=False, go_flags=True,
    description="Run CMD while holding the lock PREFIX/.lock, or with -n N one of N semaphore slots, as consul lock "
                "does (its single-dash spellings, -timeout=2s, are understood too). The child gets "
                "CONSUL_LOCK_HELD=true and an empty standard input unless --pass-stdin; it is run from its argument "
                "list, or through $SHELL -c with --shell; if the lock is lost its process group is stopped. Exit "
                "status as consul lock's: 0 once the lock was held, whatever the child did (2 with "
                "--child-exit-code when it failed); 1 when the lock was not acquired.", args=(
        Arg("-n", "how many may hold it at once (default 1)", kind="int", default=1, dest="limit", metavar="N"),
        Arg("--timeout", "give up after this long (default 0: wait for ever), e.g. 30s", kind="duration",
            metavar="DURATION"),
        Arg("--try", "the same as --timeout (consul lock's older name for it)", kind="duration", dest="timeout",
            metavar="DURATION"),
        Arg("--name", "the session's name", metavar="NAME"),
        Arg("--session-ttl", "session TTL (default 15s)", kind="duration", default=DEFAULT_SESSION_TTL,
            metavar="DURATION"),
        Arg("--lock-delay", "Consul lock-delay after a holder dies (default: Consul's 15s)", kind="duration",
            metavar="DURATION"),
        Arg("--child-exit-code", "exit 2 when the command fails (default: exit 0 whatever it did, as consul lock)",
            kind="bool"),
        Arg("--shell", "run the command through $SHELL -c, its words joined with spaces (default: from its "
                       "argument list, exactly as given)", kind="bool"),
        Arg("--pass-stdin", "give the command opsgit's standard input (default: an empty one)", kind="bool"),
        Arg("--monitor-retry", "how many errors in a row from Consul (no answer, or a 5xx) to ride out, one second "
                               "apart, before the lock counts as lost (default 3; 0: none)", kind="int",
            default=DEFAULT_MONITOR_RETRY, metavar="N"),
        Arg("--verbose", "say each step: setting up, acquiring, starting, stopping, cleaning up", kind="bool"),
        Arg("prefix", "the KV prefix of the lock"),
        Arg("command_args", "the command and its arguments", kind="remainder", metavar="-- CMD"),
    )),)
