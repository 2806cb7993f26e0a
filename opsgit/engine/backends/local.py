"""Local state: `.opsgit/state/<env>.json`, plus an append-only journal beside it.

Every completed resource change is one fsynced line appended to `<env>.journal`, so persisting a
change costs the same whatever the size of the state; Terraform instead rewrites the whole state
file after every change, which makes large applies quadratic. `compact` folds the journal into the
state file (written to a temporary file, fsynced, renamed over, one backup kept) and empties the
journal. `load` replays whatever journal a crash left behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from opsgit.engine.state import ResourceState, State, entry_problem, journal_entry, replay
from opsgit.errors import UserError


class LocalBackend:
    def __init__(self, settings: Mapping[str, Any], env: str, root: Path) -> None:
        directory = Path(settings.get("path") or ".opsgit/state")
        self.directory = directory if directory.is_absolute() else root / directory
        self.path = self.directory / f"{env}.json"
        self.journal = self.directory / f"{env}.journal"
        self.location = f"file {self.path.relative_to(root) if self.path.is_relative_to(root) else self.path}"
        self._journal_handle: Any = None

    def load(self) -> State:
        state = State.new()
        if self.path.exists():
            try:
                state = State.from_json(json.loads(self.path.read_text()))
            except (ValueError, KeyError, TypeError) as error:
                raise UserError(f"state file is unreadable: {error}", file=str(self.path),
                                hint=f"restore {self.path.name}.backup, or fix the file") from None
        return self._replay(state)

    def _replay(self, state: State) -> State:
        if not self.journal.exists():
            return state
        with self.journal.open() as journal:
            # A first apply that died before its first compaction: the journal knows the lineage.
            return replay(state, _entries(journal, str(self.journal)), adopt_lineage=not self.path.exists())

    def record(self, lineage: str, serial: int, address: str, resource: ResourceState | None) -> None:
        entry = journal_entry(lineage, serial, address, resource)
        if self._journal_handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._journal_handle = os.fdopen(fd, "a")
        self._journal_handle.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._journal_handle.flush()
        os.fsync(self._journal_handle.fileno())

    def close(self) -> None:
        """Let go of the journal without compacting (what a crash would leave)."""
        if self._journal_handle is not None:
            self._journal_handle.close()
            self._journal_handle = None

    def compact(self, state: State) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state.to_json(), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.path.exists():
            # The backup is a second name of the current file, so the state file exists at every
            # moment: a kill between two renames would have left none, and the state looked empty.
            backup = self.path.with_name(self.path.name + ".backup")
            staging = backup.with_name(f".{backup.name}.{os.getpid()}")
            staging.unlink(missing_ok=True)
            os.link(self.path, staging)
            os.replace(staging, backup)
        os.replace(temporary, self.path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.close()
        self.journal.unlink(missing_ok=True)


def _entries(lines: Iterable[str], file: str) -> Iterator[dict[str, Any]]:
    """The journal's entries. A torn last line is a change that was never acknowledged and is
    left out; a damaged line anywhere else is refused, naming it, since what follows it would be
    replayed without it."""
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        if pending is not None:
            raise _damaged(file, *pending)
        try:
            entry = json.loads(line)
        except ValueError:
            pending = (number, "it is not JSON")
            continue
        problem = entry_problem(entry)
        if problem is not None:
            raise _damaged(file, number, problem)
        yield entry


def _damaged(file: str, line: int, problem: str) -> UserError:
    return UserError(f"the state journal is damaged: {problem}", file=file, line=line,
                     hint="restore the state from its .backup, or move the journal away if its changes are known")
