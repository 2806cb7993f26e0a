"""Environments that feed each other (`${environment.global.outputs.zone_id}`), through the real
command line on real git repositories: values read from the upstream's state, unknown until it is
applied, apply refused until then; exact dependents after an upstream apply; ordered applies."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.conftest import run_opsgit, write_tree
from tests.gitops.test_affected import git

GLOBAL = """\
modules:
  zone:
    source: zone
    inputs: {name: ops.internal, secret: "{{ var.token }}"}
sensitive: [token]
variables:
  token: tok-5f3e9a1c77
outputs:
  zone_id: ${module.zone.id}
  zone_name: ops.internal
  token: "{{ var.token }}"
"""
ZONE = """\
variables:
  name: {type: string}
  secret: {type: string}
---
resources:
  null_resource.zone:
    triggers: {name: "{{ var.name }}"}
outputs:
  id: ${null_resource.zone.id}
"""
APP = """\
variables:
  value: {type: string}
---
resources:
  null_resource.app:
    triggers: {value: "{{ var.value }}"}
"""


def reader(output: str, extra: str = "") -> str:
    return (f"modules:\n  app:\n    source: app\n    inputs:\n      value: ${{environment.global.outputs.{output}}}\n"
            f"outputs:\n  seen: ${{environment.global.outputs.{output}}}\n{extra}")


def make_repo(tmp_path: Path, environments: dict[str, str]) -> Path:
    files = {"pyproject.toml": "[tool.opsgit]\n", "modules/zone/module.yaml": ZONE, "modules/app/module.yaml": APP,
             "environments/global/env.yaml": GLOBAL}
    files.update({f"environments/{name}/env.yaml": text for name, text in environments.items()})
    root = write_tree(tmp_path / "ops", files)
    (root / ".gitignore").write_text(".opsgit/\nbuild/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def state(root: Path, env: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((root / ".opsgit/state" / f"{env}.json").read_text())
    return document


def test_values_are_known_after_apply_of_the_upstream_and_apply_waits_for_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"dev": reader("zone_id")})
    planned = ok(run_opsgit("plan", "--env", "dev", cwd=root))
    assert "(values read from environment global are known after apply of global)" in planned.stdout
    assert "value = (known after apply)" in planned.stdout
    refused = run_opsgit("apply", "--env", "dev", "build/plans/dev.plan.json", cwd=root)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: environments/dev/env.yaml:5: dev reads outputs of environment 'global', "
                                     "which has not been applied")
    assert not (root / ".opsgit/state/dev.json").exists()
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root).returncode == 1

    ok(run_opsgit("apply", "--env", "global", "--auto-approve", cwd=root))
    zone_id = state(root, "global")["outputs"]["zone_id"]["value"]
    ok(run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root))
    dev = state(root, "dev")
    assert dev["resources"][0]["attributes"]["triggers"] == {"value": zone_id}
    assert dev["outputs"]["seen"]["value"] == zone_id


def test_a_saved_plan_is_refused_once_an_upstream_output_it_read_changed(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"dev": reader("zone_name")})
    ok(run_opsgit("apply", "--env", "global", "--auto-approve", cwd=root))
    ok(run_opsgit("plan", "--env", "dev", "--out", "dev.json", cwd=root))
    env_file = root / "environments/global/env.yaml"
    env_file.write_text(env_file.read_text().replace("zone_name: ops.internal", "zone_name: ops.example"))
    ok(run_opsgit("apply", "--env", "global", "--auto-approve", cwd=root))
    stale = run_opsgit("apply", "--env", "dev", "dev.json", cwd=root)
    assert stale.returncode == 1
    assert "the outputs of environment 'global' changed since this plan was made (zone_name)" in stale.stderr
    ok(run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root))
    assert state(root, "dev")["outputs"]["seen"]["value"] == "ops.example"


def test_a_sensitive_upstream_output_stays_sensitive_downstream(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"dev": reader("token")})
    ok(run_opsgit("apply", "--env", "global", "--auto-approve", cwd=root))
    assert state(root, "global")["outputs"]["token"]["sensitive"] is True
    planned = ok(run_opsgit("plan", "--env", "dev", cwd=root))
    applied = ok(run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root))
    history = ok(run_opsgit("history", "--env", "dev", "--run", "2", cwd=root))
    for text in (planned.stdout, applied.stdout, history.stdout, (root / ".opsgit/history/dev.jsonl").read_text()):
        assert "tok-5f3e9a1c77" not in text
    assert "seen = (sensitive value)" in applied.stdout
    assert state(root, "dev")["outputs"]["seen"]["sensitive"] is True


def test_mistakes_name_the_file_and_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"dev": reader("zone_idd")})
    missing = run_opsgit("plan", "--env", "dev", cwd=root)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == ("error: environments/dev/env.yaml:5: environment 'global' has no output "
                                      "'zone_idd' (did you mean 'zone_id'?)")
    (root / "environments/dev/env.yaml").write_text(reader("zone_id").replace("global", "globl"))
    unknown = run_opsgit("plan", "--env", "dev", cwd=root)
    assert unknown.returncode == 1
    assert "environments/dev/env.yaml:5:" in unknown.stderr and "did you mean 'global'?" in unknown.stderr
    (root / "environments/dev/env.yaml").write_text(reader("zone_id"))
    with (root / "environments/global/env.yaml").open("a") as handle:
        handle.write("  back: ${environment.dev.outputs.seen}\n")
    for command in (("plan", "--env", "dev"), ("plan", "--env", "global"), ("envs",)):
        cycle = run_opsgit(*command, cwd=root)
        assert cycle.returncode == 1, command
        assert ("error: environments/global/env.yaml:12: environments read each other's outputs in a cycle: "
                "dev -> global -> dev") in cycle.stderr
    (root / "environments/dev/env.yaml").write_text(reader("zone_id").replace("global.outputs", "global.output"))
    spelled = run_opsgit("plan", "--env", "dev", cwd=root)
    assert spelled.returncode == 1 and "must read an output as ${environment.ENV.outputs.NAME}" in spelled.stderr


def test_envs_shows_the_graph_and_the_order(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"staging": reader("zone_id"), "prod": reader("zone_name"),
                                "edge": reader("zone_id").replace("environment.global.outputs.zone_id",
                                                                  "environment.prod.outputs.seen")})
    listing = ok(run_opsgit("envs", cwd=root)).stdout.splitlines()
    assert listing[0].split() == ["ENVIRONMENT", "READS", "READ", "BY"]
    assert [line.split()[0] for line in listing[1:5]] == ["global", "prod", "staging", "edge"]
    assert "4 environments, in the order they apply." in listing
    assert ok(run_opsgit("envs", "--graph", cwd=root)).stdout.splitlines() == [
        "global", "  └─ prod  (reads zone_name)", "    └─ edge  (reads seen)", "  └─ staging  (reads zone_id)"]
    dot = ok(run_opsgit("graph", "--envs", cwd=root)).stdout
    assert '"global" -> "staging" [label = "zone_id"];' in dot and '"prod" -> "edge"' in dot


def test_dependents_are_listed_after_their_upstream_and_planned_exactly_when_a_read_output_changed(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"names": reader("zone_name"), "ids": reader("zone_id"),
                                "alone": "modules:\n  app:\n    source: app\n    inputs: {value: x}\n"})
    for env in ("global", "names", "ids", "alone"):
        ok(run_opsgit("apply", "--env", env, "--auto-approve", cwd=root))
    git(root, "checkout", "-q", "-b", "rename")
    env_file = root / "environments/global/env.yaml"
    env_file.write_text(env_file.read_text().replace("zone_name: ops.internal", "zone_name: ops.example"))
    git(root, "commit", "-qam", "rename the zone")
    found = json.loads(ok(run_opsgit("affected", "--base", "main", "--json", cwd=root)).stdout)
    assert [(i["name"], i["action"]) for i in found["environments"]] == [("global", "plan")]
    assert found["dependents"] == [{"name": "ids", "after": ["global"]}, {"name": "names", "after": ["global"]}]
    assert found["matrix"] == {"include": [{"env": "global", "action": "plan"}]}
    text = ok(run_opsgit("affected", "--base", "main", cwd=root)).stdout
    assert "  ids                  after: global" in text

    applied = ok(run_opsgit("apply", "--env", "global", "--auto-approve", "--plan-dependents", cwd=root))
    assert "names reads zone_name of global, changed by run #2: planning names" in applied.stdout
    assert "planning ids" not in applied.stdout and "planning alone" not in applied.stdout
    record = json.loads(ok(run_opsgit("history", "--env", "global", "--run", "2", "--json", cwd=root)).stdout)
    assert record["status"] == "applied"
    hashes = [e for e in map(json.loads, (root / ".opsgit/history/global.jsonl").read_text().splitlines())
              if e["kind"] == "apply"]
    assert hashes[-1]["outputs_changed"] == ["zone_name"]
    assert set(hashes[-1]["output_hashes"]) == {"zone_id", "zone_name", "token"}
    assert hashes[-1]["output_hashes"]["zone_id"] == hashes[0]["output_hashes"]["zone_id"]
    runs = ok(run_opsgit("history", "--env", "names", "--run", "2", "--json", cwd=root))
    assert json.loads(runs.stdout)["triggered_by"] == {"env": "global", "run": 2, "outputs": ["zone_name"]}
    shown = ok(run_opsgit("history", "--env", "names", "--run", "2", cwd=root)).stdout.splitlines()
    assert shown[2] == "Planned because run #2 of global changed zone_name, which names reads"
    listing = ok(run_opsgit("history", "--env", "names", cwd=root)).stdout.splitlines()
    assert listing[-1].endswith("Plan: 1 to add, 0 to change, 1 to destroy. (after global #2)")
    plan = json.loads((root / "build/plans/names.plan.json").read_text())
    assert plan["upstreams"]["global"]["values"] == {"zone_name": "ops.example"}
    assert not (root / "build/plans/ids.plan.json").exists()

    again = ok(run_opsgit("apply", "--env", "global", "--auto-approve", "--plan-dependents", cwd=root))
    assert "No environment reads an output that this apply of global changed: nothing to plan." in again.stdout


def test_auto_apply_dependents_are_applied_in_order(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"names": reader("zone_name", "auto_apply: true\n"),
                                "edge": reader("zone_name", "auto_apply: true\n").replace(
                                    "environment.global.outputs.zone_name", "environment.names.outputs.seen")})
    for env in ("global", "names", "edge"):
        ok(run_opsgit("apply", "--env", env, "--auto-approve", cwd=root))
    env_file = root / "environments/global/env.yaml"
    env_file.write_text(env_file.read_text().replace("zone_name: ops.internal", "zone_name: ops.example"))
    git(root, "commit", "-qam", "rename the zone")
    ok(run_opsgit("apply", "--env", "global", "--auto-approve", "--plan-dependents", cwd=root))
    assert state(root, "names")["outputs"]["seen"]["value"] == "ops.example"
    assert state(root, "edge")["resources"][0]["attributes"]["triggers"] == {"value": "ops.example"}


def test_apply_affected_applies_upstreams_first_and_stops_dependents_of_a_failure(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"staging": reader("zone_id"),
                                "prod": reader("zone_id").replace("environment.global", "environment.staging")
                                .replace("outputs.zone_id", "outputs.seen")})
    git(root, "checkout", "-q", "-b", "change")
    (root / "modules/app/module.yaml").write_text(APP.replace("{{ var.value }}", "v2-{{ var.value }}"))
    (root / "modules/zone/module.yaml").write_text(ZONE.replace("{{ var.name }}", "z-{{ var.name }}"))
    git(root, "commit", "-qam", "touch every module")
    refused = run_opsgit("apply", "--affected", "--base", "main", cwd=root)
    assert refused.returncode == 1 and "apply --affected needs --auto-approve" in refused.stderr
    applied = ok(run_opsgit("apply", "--affected", "--base", "main", "--auto-approve", cwd=root))
    assert "Applying 3 environments in order: global -> staging -> prod" in applied.stdout
    runs = {env: json.loads(ok(run_opsgit("history", "--env", env, "--run", "1", "--json", cwd=root)).stdout)
            for env in ("global", "staging", "prod")}
    assert runs["global"]["finished_at"] <= runs["staging"]["started_at"]
    assert runs["staging"]["finished_at"] <= runs["prod"]["started_at"]
    assert state(root, "prod")["outputs"]["seen"]["value"] == "v2-" + state(root, "global")["outputs"]["zone_id"][
        "value"] or state(root, "prod")["outputs"]["seen"]["value"] == state(root, "global")["outputs"]["zone_id"][
        "value"]

    # staging fails: prod, which reads it, is not applied; global, upstream of both, is
    (root / "modules/zone/module.yaml").write_text(ZONE.replace("{{ var.name }}", "z3-{{ var.name }}"))
    (root / "modules/app/module.yaml").write_text(APP.replace("{{ var.value }}", "v3-{{ var.value }}"))
    staging = root / "environments/staging/env.yaml"
    staging.write_text(staging.read_text().replace("modules:\n", "modules:\n  pause:\n    source: pause\n"))
    write_tree(root, {"modules/pause/module.yaml": "resources:\n  time_sleep.pause:\n    create_duration: soon\n"})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "break staging")
    failed = run_opsgit("apply", "--affected", "--base", "main", "--auto-approve", cwd=root)
    assert failed.returncode == 1
    assert "  staging              FAILED" in failed.stdout
    assert "  prod                 not applied: upstream staging did not apply" in failed.stdout
    assert json.loads(ok(run_opsgit("history", "--env", "global", "--run", "2", "--json", cwd=root)).stdout)[
        "status"] == "applied"
    assert "v3-" not in json.dumps(state(root, "prod"))


def test_two_ordered_applies_over_overlapping_environments_finish_one_after_the_other(tmp_path: Path) -> None:
    slow = "  time_sleep.wait:\n    create_duration: 1s\n"
    root = make_repo(tmp_path, {"staging": reader("zone_id"), "prod": reader("zone_id")})
    for env in ("global", "staging", "prod"):
        ok(run_opsgit("apply", "--env", env, "--auto-approve", cwd=root))
    git(root, "checkout", "-q", "-b", "change")
    (root / "modules/zone/module.yaml").write_text(ZONE.replace("outputs:", slow + "outputs:"))
    git(root, "commit", "-qam", "zone v2")  # global
    (root / "modules/app/module.yaml").write_text(APP + slow)
    git(root, "commit", "-qam", "app v2")  # staging and prod
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(name: str, base: str) -> None:
        results[name] = run_opsgit("apply", "--affected", "--base", base, "--auto-approve", "--lock-timeout", "2m",
                                   cwd=root, timeout=150)

    # one over global, staging and prod; the other over staging and prod
    threads = [threading.Thread(target=run, args=("all", "main")), threading.Thread(target=run, args=("two", "HEAD~1"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(170)
    assert not any(thread.is_alive() for thread in threads), "the two ordered applies deadlocked"
    assert "Applying 3 environments" in ok(results["all"]).stdout
    assert "Applying 2 environments in order: prod -> staging" in ok(results["two"]).stdout
    for env in ("staging", "prod"):  # each environment's two applies, one after the other
        runs = [json.loads(ok(run_opsgit("history", "--env", env, "--run", str(n), "--json", cwd=root)).stdout)
                for n in (2, 3)]
        assert [r["kind"] for r in runs] == ["apply", "apply"]
        first, second = sorted(runs, key=lambda r: str(r["started_at"]))
        assert first["finished_at"] <= second["started_at"]
