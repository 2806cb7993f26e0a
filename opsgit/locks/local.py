"""The local run lock: `flock` on `.opsgit/state/<env>.lock`, whose content is the holder's record.

The kernel frees the lock when its process ends, so a local lock never outlives its holder and a
record left by a killed process is not a lock (`holder()` checks the flock, not the file). Only the
process that holds the flock writes or clears the record: a contender that fails reads it, and
retries the read briefly, since the holder writes it just after taking the flock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsgit.errors import UserError
from opsgit.locks import Locked
from opsgit.locks.holder import describe

POLL = 0.2
RECORD_WAIT = 2.0


class LocalLock:
    check_interval = 0.5

    def __init__(self, settings: Mapping[str, Any], env: str, root: Path) -> None:
        self.env = env
        self.path = root / ".opsgit" / "state" / f"{env}.lock"
        self.location = f"file {self.path}"
        self._fd: int | None = None

    def acquire(self, holder: Mapping[str, Any], timeout: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise Locked(describe(self.env, self._waiting_record(), local=True),
                                 hint="wait, or pass --lock-timeout 5m") from None
                time.sleep(POLL)
                continue
            if self._same_file(fd):
                break
            os.close(fd)  # the file was replaced between open and flock: lock the one at the path
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dict(holder)).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _waiting_record(self) -> dict[str, Any] | None:
        deadline = time.monotonic() + RECORD_WAIT
        while True:
            record = self._record()
            if record or time.monotonic() >= deadline:
                return record
            time.sleep(0.05)

    def _record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return dict(data) if isinstance(data, dict) and data else None

    def still_held(self) -> bool:
        return self._fd is not None and self._same_file(self._fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
        os.close(fd)

    def holder(self) -> dict[str, Any] | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._waiting_record() or {}
        finally:
            os.close(fd)
        return None  # nobody holds the flock: whatever the file says, the lock is free

    def force_unlock(self) -> None:
        holder = self.holder()
        if holder is None:
            return
        raise UserError(f"the local lock of {self.env} is held by a live process (pid {holder.get('pid', '?')} on "
                        f"{holder.get('host', '?')}); it frees itself when that process ends",
                        hint="stop that process; a local lock cannot outlive its holder")
