"""The local backend: journal per change, replay after a crash, atomic compaction, 0600 files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from opsgit.engine.backends.local import LocalBackend
from opsgit.engine.state import ResourceState, State


def resource(name: str, value: int) -> ResourceState:
    return ResourceState(f"null_resource.{name}", "null_resource", "null", str(value), {"triggers": {"v": value}})


def test_journal_replays_what_was_recorded_before_a_crash(tmp_path: Path) -> None:
    backend = LocalBackend({}, "dev", tmp_path)
    state = backend.load()
    backend.compact(state)
    for serial, name in enumerate(("a", "b", "c"), start=1):
        backend.record(state.lineage, state.serial + serial, f"null_resource.{name}", resource(name, serial))
    backend.record(state.lineage, state.serial + 4, "null_resource.b", None)
    backend.close()  # a crash here: no compaction; a new process loads
    again = LocalBackend({}, "dev", tmp_path).load()
    assert sorted(again.resources) == ["null_resource.a", "null_resource.c"]
    assert again.serial == state.serial + 4 and again.lineage == state.lineage


def test_a_first_apply_that_never_compacted_keeps_its_lineage(tmp_path: Path) -> None:
    backend = LocalBackend({}, "dev", tmp_path)
    state = backend.load()
    backend.record(state.lineage, 1, "null_resource.a", resource("a", 1))
    backend.close()
    again = LocalBackend({}, "dev", tmp_path).load()
    assert again.lineage == state.lineage and list(again.resources) == ["null_resource.a"]


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    backend = LocalBackend({}, "dev", tmp_path)
    state = backend.load()
    backend.compact(state)
    backend.record(state.lineage, 1, "null_resource.a", resource("a", 1))
    backend.close()
    with (tmp_path / ".opsgit/state/dev.journal").open("a") as journal:
        journal.write('{"lineage": "' + state.lineage + '", "serial": 2, "addr')
    again = LocalBackend({}, "dev", tmp_path).load()
    assert list(again.resources) == ["null_resource.a"] and again.serial == 1


def test_compaction_writes_the_state_keeps_a_backup_and_clears_the_journal(tmp_path: Path) -> None:
    backend = LocalBackend({}, "dev", tmp_path)
    state = backend.load()
    backend.compact(state)
    backend.record(state.lineage, 1, "null_resource.a", resource("a", 1))
    final = State(state.lineage, 2, {"null_resource.a": resource("a", 1)}, {"out": {"value": 1, "sensitive": False}})
    backend.compact(final)
    path = tmp_path / ".opsgit/state/dev.json"
    assert json.loads(path.read_text())["serial"] == 2
    assert (tmp_path / ".opsgit/state/dev.json.backup").exists()
    assert not (tmp_path / ".opsgit/state/dev.journal").exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert LocalBackend({}, "dev", tmp_path).load() == final
