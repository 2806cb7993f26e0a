"""Plugin protocol 6 (the one providers built only on terraform-plugin-framework speak): the
version agreed in the handshake, the renamed calls, and nested attributes, through the command
line and the testing provider's process; its store is read directly."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_opsgit, write_tree
from tests.plugin.conftest import ENV, install_testing_provider

MODULE = """resources:
  testing_thing.api:
    name: api
    size: 1
    listener: {port: 8443, password: listener-pa55word-77}
outputs:
  url: ${testing_thing.api.listener.url}
"""


def repo(tmp_path: Path, protocols: str) -> Path:
    mirror = tmp_path / "mirror"
    install_testing_provider(mirror, protocols=protocols)
    return write_tree(tmp_path / "ops", {
        "pyproject.toml": f'[tool.opsgit]\nplugin_dirs = ["{mirror}"]\n',
        "environments/dev/env.yaml": ENV.format(store=tmp_path / "cloud.json") + "outputs:\n  url: ${module.app.url}\n",
        "modules/app/module.yaml": MODULE,
    })


def stored(root: Path) -> dict[str, object]:
    things = json.loads((root.parent / "cloud.json").read_text())
    assert len(things) == 1
    thing: dict[str, object] = next(iter(things.values()))
    return thing


def test_a_protocol_6_provider_with_nested_attributes(tmp_path: Path) -> None:
    root = repo(tmp_path, "6")
    plan = run_opsgit("plan", "--env", "dev", cwd=root)
    assert plan.returncode == 0, plan.stderr
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.stdout
    assert "listener-pa55word-77" not in plan.stdout + plan.stderr
    assert "8443" in plan.stdout and "(known after apply)" in plan.stdout
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root)
    assert applied.returncode == 0, applied.stderr
    assert stored(root)["listener"] == {"port": 8443, "password": "listener-pa55word-77", "url": "https://api:8443"}
    state = json.loads((root / ".opsgit/state/dev.json").read_text())
    assert state["outputs"]["url"]["value"] == "https://api:8443"  # a nested attribute referenced
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr
    shown = run_opsgit("state", "show", "--env", "dev", "module.app.testing_thing.api", cwd=root)
    assert shown.returncode == 0 and "https://api:8443" in shown.stdout, shown.stdout + shown.stderr
    assert "listener-pa55word-77" not in shown.stdout  # a nested sensitive attribute stays masked

    module = root / "modules/app/module.yaml"
    module.write_text(module.read_text().replace("port: 8443", "port: 9443"))
    change = run_opsgit("plan", "--env", "dev", cwd=root)
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in change.stdout, change.stdout + change.stderr
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root).returncode == 0
    assert stored(root)["listener"] == {"port": 9443, "password": "listener-pa55word-77", "url": "https://api:9443"}


def test_the_highest_protocol_both_speak_is_agreed(tmp_path: Path) -> None:
    root = repo(tmp_path, "5,6")  # nested attributes exist only over protocol 6
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root)
    assert applied.returncode == 0, applied.stderr
    assert stored(root)["listener"] == {"port": 8443, "password": "listener-pa55word-77", "url": "https://api:8443"}


def test_a_protocol_only_5_provider_has_no_nested_attributes(tmp_path: Path) -> None:
    root = repo(tmp_path, "5")
    plan = run_opsgit("plan", "--env", "dev", cwd=root)
    assert plan.returncode == 1 and "Traceback" not in plan.stderr
    assert "listener" in plan.stderr, plan.stderr


def test_a_provider_of_a_protocol_opsgit_does_not_speak(tmp_path: Path) -> None:
    root = repo(tmp_path, "7")
    plan = run_opsgit("plan", "--env", "dev", cwd=root)
    assert plan.returncode == 1 and "Traceback" not in plan.stderr
    assert "speaks plugin protocol 7; opsgit speaks 5, 6" in plan.stderr, plan.stderr
    assert not (root / ".opsgit/state/dev.json").exists()
