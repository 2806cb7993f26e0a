"""Damaged files the user can fix are exit 1 with the file and line, never "a bug in opsgit": a
state journal damaged before its last line, and an agent data directory that holds no database.
A torn last journal line (a change never acknowledged) is left out quietly, as before."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_opsgit, write_tree

ENV = "modules:\n  m: {source: m}\n"
MODULE = "resources:\n  null_resource.n:\n    count: 2\n    triggers: {index: \"${count.index}\"}\n"


def applied(tmp_path: Path) -> Path:
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/m/module.yaml": MODULE})
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root).returncode == 0
    return root


def test_a_journal_damaged_before_its_last_line_is_named_with_its_line(tmp_path: Path) -> None:
    root = applied(tmp_path)
    state = json.loads((root / ".opsgit/state/t.json").read_text())
    later = {"lineage": state["lineage"], "serial": state["serial"] + 2, "address": "null_resource.x",
             "resource": None}
    for damage in ("not json at all", "[1, 2]", json.dumps({**later, "serial": "two"})):
        (root / ".opsgit/state/t.journal").write_text(damage + "\n" + json.dumps(later) + "\n")
        result = run_opsgit("state", "list", "--env", "t", cwd=root)
        assert result.returncode == 1, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and ".opsgit/state/t.journal:1: the state journal is damaged" in line
        assert "Traceback" not in result.stderr


def test_a_torn_last_line_is_a_change_never_acknowledged(tmp_path: Path) -> None:
    root = applied(tmp_path)
    (root / ".opsgit/state/t.journal").write_text('{"lineage": "x", "ser')
    result = run_opsgit("state", "list", "--env", "t", cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["module.m.null_resource.n[0]", "module.m.null_resource.n[1]"]


def test_an_agent_data_directory_without_a_database_is_a_user_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "agent.db").write_bytes(b"\x00garbage, not SQLite" * 100)
    result = run_opsgit("agent", "--dev", "--data-dir", str(data), "--http-addr", "127.0.0.1:0", "--dns-addr",
                        "127.0.0.1:0", cwd=tmp_path,
                        timeout=30)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "agent.db: the agent's data directory holds no usable database" in line
