"""The local run lock of one environment: a file lock beside its state, with who holds it.

The GitOps issue adds Consul and S3 run locks behind the same shape; until then `apply` and
`plan --out` take this one, so that two runs on one machine never interleave.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from opsgit.errors import UserError


class Locked(UserError):
    """The environment's run lock is held by someone else (any backend)."""


def holder_info(command: str) -> dict[str, str]:
    return {"who": os.environ.get("GITHUB_ACTOR") or getpass.getuser(), "host": socket.gethostname(),
            "command": command, "pid": str(os.getpid()),
            "since": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


@contextlib.contextmanager
def local_run_lock(directory: Path, env: str, command: str, timeout: float = 0.0) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{env}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Locked(f"environment {env} is locked by {_describe(path)}",
                                 hint="wait, or pass --lock-timeout 5m") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder_info(command)).encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _describe(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another run"
    if not holder:
        return "another run"
    return f"{holder.get('who', '?')} ({holder.get('command', '?')} on {holder.get('host', '?')}, " \
           f"since {holder.get('since', '?')})"
