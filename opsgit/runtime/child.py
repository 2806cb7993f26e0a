"""One supervised child process, in its own process group.

The child is started from an argument list (never through a shell built from strings), in a
new session so that signals reach the whole group it spawns: `consul lock` and envconsul users
lose grandchildren behind `sh -c` otherwise. Stopping is graceful first (a signal, a grace
period), then SIGKILL to the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence

from opsgit.errors import UserError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def exit_code(returncode: int) -> int:
    """A shell's convention: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class Child:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, pass_stdin: bool = True) -> None:
        """`pass_stdin=False` gives the child an empty standard input (the null device), as
        `consul lock` does unless `-pass-stdin`."""
        if not argv:
            raise UserError("no command given", hint="put the command after --, e.g. -- /usr/local/bin/binstore")
        try:
            self.process = subprocess.Popen(list(argv), env=dict(env), start_new_session=True,
                                            stdin=None if pass_stdin else subprocess.DEVNULL)
        except FileNotFoundError:
            hint = "it is one word with spaces in it: pass --shell to run it through sh -c" if " " in argv[0] else None
            raise UserError(f"command not found: {argv[0]}", hint=hint) from None
        except PermissionError:
            raise UserError(f"command not executable: {argv[0]}") from None
        self.exited = threading.Event()
        self._waiter = threading.Thread(target=self._wait, daemon=True, name="opsgit-child-wait")
        self._waiter.start()

    def _wait(self) -> None:
        self.process.wait()
        self.exited.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, signum: int) -> None:
        if self.exited.is_set():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, grace: float = 5.0) -> int:
        """Signal the group, wait `grace` seconds, then SIGKILL it; returns the exit code."""
        self.send(signum)
        if not self.exited.wait(grace):
            self.send(signal.SIGKILL)
            self.exited.wait()
        return self.returncode

    @property
    def returncode(self) -> int:
        self.exited.wait()
        return exit_code(self.process.returncode)


def relay(source: threading.Event, target: threading.Event) -> None:
    """Set `target` once `source` is set (run in a daemon thread)."""
    source.wait()
    target.set()


class SignalForwarder:
    """While active, signals to opsgit are passed on to the child's group (and wake `wake`)."""

    def __init__(self, child_ref: list[Child], wake: threading.Event) -> None:
        self.child_ref = child_ref
        self.wake = wake
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> SignalForwarder:
        for signum in FORWARDED:
            self._previous[signum] = signal.signal(signum, self._forward)
        return self

    def _forward(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        for child in self.child_ref:
            child.send(signum)
        self.wake.set()

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
