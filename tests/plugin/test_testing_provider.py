"""The plugin protocol end to end, through the real command line and a provider process: what
the provider's own store holds is read directly, not through opsgit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_opsgit


def cloud(root: Path) -> dict[str, dict[str, object]]:
    path = root.parent / "cloud.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_plan_apply_and_a_second_plan_with_no_changes(plugin_repo: Path) -> None:
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert plan.returncode == 0, plan.stderr
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in plan.stdout
    assert "+ id     = (known after apply)" in plan.stdout and "+ serial = (known after apply)" in plan.stdout
    assert "s3cret-value-123" not in plan.stdout and "(sensitive value)" in plan.stdout
    assert "recorded registry.terraform.io/opsgit/testing 0.1.0" in plan.stderr
    lock = (plugin_repo / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/opsgit/testing"' in lock and '"h1:' in lock
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in applied.stdout
    things = cloud(plugin_repo)
    web = next(t for t in things.values() if t["name"] == "web")
    worker = next(t for t in things.values() if t["name"] != "web")
    assert web["rule"] == [{"port": 80, "token": None}, {"port": 443, "token": None}]
    assert web["tags"] == {"role": "web"} and web["serial"] == 1
    assert worker["name"] == f"worker-of-{web['id']}" and worker["size"] == 1  # references resolved at apply
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=plugin_repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    state = json.loads((plugin_repo / ".opsgit/state/dev.json").read_text())
    recorded = {r["address"]: r for r in state["resources"]}
    assert recorded["module.app.testing_thing.web"]["schema_version"] == 1
    assert recorded["module.app.testing_thing.web"]["private"]  # the provider's private data is kept


def test_updates_replacements_and_changes_made_outside(plugin_repo: Path) -> None:
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("size: 2", "size: 3"))
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in plan.stdout, plan.stdout + plan.stderr
    assert "~ size" in plan.stdout
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    web = next(t for t in cloud(plugin_repo).values() if t["name"] == "web")
    assert web["size"] == 3 and web["serial"] == 2
    module.write_text(module.read_text().replace("name: web\n", "name: web2\n"))
    replace = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert "must be replaced" in replace.stdout and "# forces replacement" in replace.stdout, replace.stdout
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    names = sorted(str(t["name"]) for t in cloud(plugin_repo).values())
    assert names[0] == "web2" and len(names) == 2  # the old web is gone, not left behind
    # Out of band: someone changes the size in the cloud; the plan puts it back.
    path = plugin_repo.parent / "cloud.json"
    things = json.loads(path.read_text())
    for thing in things.values():
        if thing["name"] == "web2":
            thing["size"] = 99
    path.write_text(json.dumps(things))
    drift = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert "has changed" in drift.stdout and "~ size" in drift.stdout and "99 -> 3" in drift.stdout, drift.stdout


def test_import_adopts_an_existing_object(plugin_repo: Path) -> None:
    store = plugin_repo.parent / "cloud.json"
    store.write_text(json.dumps({"thing-existing": {"id": "thing-existing", "name": "web", "size": 2, "serial": 7,
                                                    "secret": "s3cret-value-123", "tags": {"role": "web"},
                                                    "rule": [{"port": 80}, {"port": 443}]}}))
    imported = run_opsgit("import", "--env", "dev", "module.app.testing_thing.web", "thing-existing",
                          cwd=plugin_repo)
    assert imported.returncode == 0, imported.stderr
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    # The imported web matches its configuration; only the worker is still to create.
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.stdout, plan.stdout + plan.stderr
    assert "# module.app.testing_thing.worker will be created" in plan.stdout
    assert "module.app.testing_thing.web will" not in plan.stdout


def test_provider_errors_name_the_module_line_and_the_attribute(plugin_repo: Path) -> None:
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("name: web\n", "name: \"web server!\"\n"))
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: modules/app/module.yaml:2:") and "name: invalid name 'web server!'" in line, line


def test_a_sensitive_attribute_inside_a_block_is_masked_everywhere(plugin_repo: Path) -> None:
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("{port: 443}", "{port: 443, token: nested-t0ken-9f8e7d}"))
    outputs = [run_opsgit(*args, cwd=plugin_repo) for args in (
        ["plan", "--env", "dev"], ["plan", "--env", "dev", "--json"], ["apply", "--env", "dev", "--auto-approve"],
        ["state", "show", "--env", "dev", "module.app.testing_thing.web"], ["history", "--env", "dev", "--json"])]
    assert outputs[2].returncode == 0, outputs[2].stdout + outputs[2].stderr
    assert any(t.get("rule") == [{"port": 80, "token": None}, {"port": 443, "token": "nested-t0ken-9f8e7d"}]
               for t in cloud(plugin_repo).values())  # the provider got it
    for result in outputs:
        assert "nested-t0ken-9f8e7d" not in result.stdout + result.stderr
    assert "(sensitive value)" in outputs[0].stdout


def test_a_config_attribute_the_schema_lacks_and_a_wrong_type(plugin_repo: Path) -> None:
    module = plugin_repo / "modules/app/module.yaml"
    text = module.read_text()
    module.write_text(text.replace("    size: 2\n", "    sise: 2\n"))
    unknown = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert unknown.returncode == 1 and "has no attribute 'sise'" in unknown.stderr and "did you mean 'size'" in \
        unknown.stderr and "modules/app/module.yaml:" in unknown.stderr, unknown.stderr
    module.write_text(text.replace("    size: 2\n", "    size: [2]\n"))
    wrong = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert wrong.returncode == 1 and "size: a number is required" in wrong.stderr, wrong.stderr
    assert "Traceback" not in unknown.stderr + wrong.stderr


def test_a_data_source_is_read_at_plan_time_and_referenced_like_a_resource(plugin_repo: Path) -> None:
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    web = next(t for t in cloud(plugin_repo).values() if t["name"] == "web")
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("resources:\n", "resources:\n"
                                                 "  data.testing_lookup.existing:\n    name: web\n"
                                                 "  testing_thing.copy:\n"
                                                 "    name: copy-of-${data.testing_lookup.existing.id}\n"
                                                 "    size: ${data.testing_lookup.existing.size}\n", 1))
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    # Read while planning: the values are in the plan, not (known after apply).
    assert f'+ name   = "copy-of-{web["id"]}"' in plan.stdout and "+ size   = 2" in plan.stdout, plan.stdout
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.stdout and "will be read" not in plan.stdout
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    assert f"copy-of-{web['id']}" in [t["name"] for t in cloud(plugin_repo).values()]
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=plugin_repo)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr


@pytest.mark.slow
def test_a_data_source_whose_config_is_unknown_is_read_during_apply(plugin_repo: Path) -> None:
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("outputs:", "  data.testing_lookup.web:\n"
                                                 "    name: ${testing_thing.web.name}\n"
                                                 "outputs:\n  web_size: ${data.testing_lookup.web.size}\n"
                                                 "  # was:", 1))
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "<= data \"testing_lookup\" \"web\"" in plan.stdout and "will be read during apply" in plan.stdout
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "module.app.data.testing_lookup.web: Reading..." in applied.stdout, applied.stdout
    shown = run_opsgit("state", "show", "--env", "dev", "module.app.data.testing_lookup.web", cwd=plugin_repo)
    web = next(t for t in cloud(plugin_repo).values() if t["name"] == "web")
    assert shown.returncode == 0 and "size" in shown.stdout and str(web["id"]) in shown.stdout, shown.stdout
