"""Plugin-managed resources under opsgit's own rules: lifecycle settings, state written by an
older schema, native types kept beside the plugin's, and the provider ended with opsgit."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_opsgit, start_opsgit
from tests.plugin.test_testing_provider import cloud


def test_prevent_destroy_and_create_before_destroy(plugin_repo: Path) -> None:
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    module = plugin_repo / "modules/app/module.yaml"
    text = module.read_text()
    module.write_text(text.replace("    name: web\n", "    name: web2\n    lifecycle: {prevent_destroy: true}\n"))
    refused = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert refused.returncode == 1 and "prevent_destroy" in refused.stderr and "name changed" in refused.stderr
    module.write_text(text.replace("    name: web\n", "    name: web2\n    lifecycle: {create_before_destroy: true}\n"))
    plan = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert "+/- resource \"testing_thing\" \"web\"" in plan.stdout, plan.stdout
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = applied.stdout
    assert out.index("testing_thing.web: Creating...") < out.index("testing_thing.web (deposed object): Destroying")
    assert sorted(str(t["name"]) for t in cloud(plugin_repo).values())[0] == "web2"


def test_ignore_changes_keeps_what_was_changed_outside(plugin_repo: Path) -> None:
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("    size: 2\n", "    size: 2\n"
                                                 "    lifecycle: {ignore_changes: [size]}\n"))
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    store = plugin_repo.parent / "cloud.json"
    things = json.loads(store.read_text())
    for thing in things.values():
        if thing["name"] == "web":
            thing["size"] = 7
    store.write_text(json.dumps(things))
    plan = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=plugin_repo)
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr


def test_state_written_by_an_older_schema_is_upgraded_by_the_provider(plugin_repo: Path) -> None:
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    path = plugin_repo / ".opsgit/state/dev.json"
    state = json.loads(path.read_text())
    for resource in state["resources"]:  # as schema version 0 wrote it: `label`, not `name`
        resource["schema_version"] = 0
        resource["attributes"]["label"] = resource["attributes"].pop("name")
    path.write_text(json.dumps(state))
    plan = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=plugin_repo)
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr


def test_types_named_native_are_served_by_opsgits_own_code(tmp_path: Path, plugin_repo: Path) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    store:", "    native: [testing_thing]\n    store:"))
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    # opsgit has no native `testing` provider: the error says so instead of using the plugin
    assert result.returncode == 1 and "unknown provider 'testing'" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_provider_process_ends_with_opsgit(plugin_repo: Path, signum: int) -> None:
    module = plugin_repo / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("resources:\n", "resources:\n  time_sleep.wait:\n"
                                                 "    create_duration: 6s\n", 1))
    running = start_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    pid_file = plugin_repo.parent / "cloud.pid"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text()):
        time.sleep(0.1)
    provider = Path(f"/proc/{pid_file.read_text()}")
    assert provider.exists(), "the provider never started"
    time.sleep(1.5)  # into the apply, the sleep in flight
    running.send_signal(signum)
    # As Terraform, opsgit lets what is in flight finish (the state records it), then ends.
    _, err = running.communicate(timeout=30)
    assert running.returncode != 0 and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while provider.exists() and time.monotonic() < deadline and "zombie" not in _status(provider):
        time.sleep(0.1)
    assert not provider.exists() or "zombie" in _status(provider), \
        f"the provider still runs after opsgit got {signal.Signals(signum).name}"


def _status(proc: Path) -> str:
    try:
        return (proc / "status").read_text().lower()
    except OSError:
        return "zombie"
