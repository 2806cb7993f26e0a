"""Plan and apply semantics with null_resource and local_file, through the real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_opsgit, write_tree

ENV = """\
modules:
  app:
    source: app
    inputs: {n: 3, version: "1"}
outputs:
  ids: ${module.app.ids}
"""
MODULE = """\
variables:
  n: {type: number}
  version: {type: string}
---
resources:
  null_resource.base:
    triggers: {version: "{{ var.version }}"}
  null_resource.node:
    count: {{ var.n }}
    triggers: {base: "${null_resource.base.id}", index: "${count.index}"}
  local_file.config:
    filename: "{{ environment.name }}-app.conf"
    content: "nodes={{ var.n }}"
    lifecycle: {prevent_destroy: false}
outputs:
  ids: ${null_resource.node[*].id}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/app/module.yaml": MODULE})


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit(*args, cwd=repo, timeout=120)


def plan_json(repo: Path, *args: str) -> dict[str, object]:
    result = run(repo, "plan", "--env", "t", "--json", *args)
    assert result.returncode in (0, 2), result.stderr
    return dict(json.loads(result.stdout))


def actions(plan: dict[str, object]) -> dict[str, list[str]]:
    """The plan's changes (Terraform's format lists unchanged resources too, as no-ops)."""
    return {c["address"]: c["change"]["actions"] for c in plan["resource_changes"]  # type: ignore[attr-defined,index]
            if c["change"]["actions"] != ["no-op"]}


def test_create_then_nothing_then_replace_on_trigger_change(repo: Path) -> None:
    first = plan_json(repo)
    assert first["opsgit"]["summary"] == {"add": 5, "change": 0, "destroy": 0}
    created = next(c for c in first["resource_changes"] if c["address"] == "module.app.null_resource.node[1]")  # type: ignore[attr-defined]
    assert created["change"]["after_unknown"] == {"id": True, "triggers": {"base": True}}
    applied = run(repo, "apply", "--env", "t", "--auto-approve")
    assert "Apply complete! Resources: 5 added, 0 changed, 0 destroyed." in applied.stdout
    assert (repo / "t-app.conf").read_text() == "nodes=3"
    assert run(repo, "plan", "--env", "t", "--detailed-exitcode").returncode == 0
    (repo / "environments/t/env.yaml").write_text(ENV.replace('version: "1"', 'version: "2"'))
    text = run(repo, "plan", "--env", "t").stdout
    assert "-/+ resource \"null_resource\" \"base\"" in text and "# forces replacement" in text
    assert "Plan: 4 to add, 0 to change, 4 to destroy." in text  # the nodes follow base's new id


def test_count_shrink_deletes_with_the_reason(repo: Path) -> None:
    run(repo, "apply", "--env", "t", "--auto-approve")
    (repo / "environments/t/env.yaml").write_text(ENV.replace("n: 3", "n: 1"))
    plan = plan_json(repo)
    reasons = {c["address"]: c.get("action_reason") for c in plan["resource_changes"]}  # type: ignore[attr-defined]
    assert reasons["module.app.null_resource.node[2]"] == "delete_because_count_index"
    assert actions(plan)["module.app.local_file.config"] == ["delete", "create"]


def test_target_and_destroy(repo: Path) -> None:
    targeted = plan_json(repo, "--target", "module.app.null_resource.node[0]")
    assert sorted(actions(targeted)) == ["module.app.null_resource.base", "module.app.null_resource.node[0]"]
    run(repo, "apply", "--env", "t", "--auto-approve")
    destroy = plan_json(repo, "--destroy")
    assert destroy["opsgit"]["summary"] == {"add": 0, "change": 0, "destroy": 5}
    assert run(repo, "apply", "--env", "t", "build/plans/t.plan.json").returncode == 0
    assert json.loads((repo / ".opsgit/state/t.json").read_text())["resources"] == []
    assert not (repo / "t-app.conf").exists()


def test_prevent_destroy_refuses_the_plan(repo: Path) -> None:
    run(repo, "apply", "--env", "t", "--auto-approve")
    (repo / "modules/app/module.yaml").write_text(MODULE.replace("prevent_destroy: false", "prevent_destroy: true")
                                                  .replace("nodes={{ var.n }}", "nodes=many"))
    refused = run(repo, "plan", "--env", "t")
    assert refused.returncode == 1
    assert "module.app.local_file.config has lifecycle.prevent_destroy" in refused.stderr


def test_state_commands(repo: Path) -> None:
    run(repo, "apply", "--env", "t", "--auto-approve")
    listed = run(repo, "state", "list", "--env", "t").stdout.split()
    assert "module.app.null_resource.node[2]" in listed and len(listed) == 5
    shown = run(repo, "state", "show", "--env", "t", "module.app.local_file.config").stdout
    assert 'content  = "nodes=3"' in shown
    assert run(repo, "state", "mv", "--env", "t", "module.app.null_resource.node[2]",
               "module.app.null_resource.node[9]").returncode == 0
    moved = plan_json(repo)
    assert actions(moved) == {"module.app.null_resource.node[2]": ["create"],
                              "module.app.null_resource.node[9]": ["delete"]}
    assert run(repo, "state", "rm", "--env", "t", "module.app.null_resource.node[9]").returncode == 0
    assert actions(plan_json(repo)) == {"module.app.null_resource.node[2]": ["create"]}


def test_unknown_resource_type_and_attribute_are_user_errors(repo: Path) -> None:
    (repo / "modules/app/module.yaml").write_text(MODULE.replace("local_file.config", "local_fiel.config"))
    result = run(repo, "plan", "--env", "t")
    assert result.returncode == 1 and "unknown resource type 'local_fiel'" in result.stderr
    assert "modules/app/module.yaml:" in result.stderr
    (repo / "modules/app/module.yaml").write_text(MODULE.replace("filename:", "filname:"))
    result = run(repo, "plan", "--env", "t")
    assert "local_file has no attribute 'filname' (did you mean 'filename'?)" in result.stderr


def test_history_records_plans_and_applies(repo: Path) -> None:
    run(repo, "plan", "--env", "t")
    run(repo, "apply", "--env", "t", "--auto-approve")
    listed = run(repo, "history", "--env", "t", "--json")
    entries = json.loads(listed.stdout)
    assert [(e["kind"], e["result"]) for e in entries] == [("plan", "changes"), ("apply", "applied")]
    assert entries[1]["summary"] == "Apply complete! Resources: 5 added, 0 changed, 0 destroyed."
    assert entries[0]["plan_hash"] and entries[0]["duration_seconds"] >= 0
    rows = [line.split()[1:5] for line in run(repo, "history").stdout.splitlines()[1:]]
    assert rows == [["t", "#1", "plan", "changes"], ["t", "#2", "apply", "applied"]]


def test_ignore_changes_and_import(repo: Path) -> None:
    run(repo, "apply", "--env", "t", "--auto-approve")
    ignoring = MODULE.replace("    lifecycle: {prevent_destroy: false}", "    lifecycle: {ignore_changes: [content]}")
    (repo / "modules/app/module.yaml").write_text(ignoring.replace("nodes={{ var.n }}", "nodes=changed"))
    assert "module.app.local_file.config" not in actions(plan_json(repo))

    import hashlib
    content = (repo / "t-app.conf").read_bytes()
    assert run(repo, "state", "rm", "--env", "t", "module.app.local_file.config").returncode == 0
    assert actions(plan_json(repo))["module.app.local_file.config"] == ["create"]
    imported = run(repo, "import", "--env", "t", "module.app.local_file.config", hashlib.sha1(content).hexdigest())
    assert imported.returncode == 0, imported.stderr
    assert "module.app.local_file.config" not in actions(plan_json(repo))
    missing = run(repo, "import", "--env", "t", "module.app.null_resource.nope", "x")
    assert missing.returncode == 1 and "is not in the configuration of t" in missing.stderr
