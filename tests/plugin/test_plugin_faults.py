"""A provider that is missing, not executable, silent, tampered with or crashing: one clear
error, exit 1, no traceback, the state as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_opsgit
from tests.plugin.conftest import VERSION, install_testing_provider


def binary_of(root: Path) -> Path:
    return next((root.parent / "mirror").rglob("terraform-provider-testing_*"))


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_missing_provider_names_its_source_version_and_where_it_looked(plugin_repo: Path) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace(f"version: {VERSION}", "version: 9.9.9"))
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "provider registry.terraform.io/opsgit/testing 9.9.9" in line and "is not installed" in line
    assert str(plugin_repo.parent / "mirror") in line


def test_a_binary_that_is_not_executable_or_prints_no_handshake(plugin_repo: Path) -> None:
    binary = binary_of(plugin_repo)
    binary.chmod(0o644)
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1 and "is not executable" in one_error_line(result.stderr)
    binary.write_text("#!/bin/sh\necho starting up >&2\nexit 0\n")
    binary.chmod(0o755)
    (plugin_repo / ".terraform.lock.hcl").unlink()
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    line = one_error_line(result.stderr)
    assert result.returncode == 1 and "exited before its handshake" in line and "starting up" in line, line
    binary.write_text("#!/bin/sh\necho hello there\nsleep 5\n")
    (plugin_repo / ".terraform.lock.hcl").unlink()
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1 and "not a plugin handshake" in one_error_line(result.stderr)


def test_a_binary_whose_hash_differs_from_the_lock_file_is_refused(plugin_repo: Path) -> None:
    assert run_opsgit("plan", "--env", "dev", cwd=plugin_repo).returncode == 0  # records the hash
    binary = binary_of(plugin_repo)
    binary.write_text(binary.read_text() + "# tampered\n")
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "does not match .terraform.lock.hcl" in line and "h1:" in line


def test_a_provider_crashing_mid_apply_is_one_error_and_the_state_stays_valid(plugin_repo: Path) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    store:", "    fail: crash-on-create\n    store:"))
    result = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert "module.app.testing_thing.web: provider testing exited (exit 2)" in said and "Traceback" not in said, said
    state = plugin_repo / ".opsgit/state/dev.json"
    if state.exists():
        assert json.loads(state.read_text())["resources"] == []
    listed = run_opsgit("state", "list", "--env", "dev", cwd=plugin_repo)
    assert listed.returncode == 0 and listed.stdout.strip() == ""


def test_a_create_that_fails_after_the_object_exists_keeps_it_in_state(plugin_repo: Path) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    store:", "    fail: partial-create\n    store:"))
    result = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo)
    assert result.returncode == 1 and "waiting for the thing to be ready: timeout" in result.stdout, result.stdout
    listed = run_opsgit("state", "list", "--env", "dev", cwd=plugin_repo)
    assert "module.app.testing_thing.web" in listed.stdout.split()
    env.write_text(env.read_text().replace("    fail: partial-create\n", ""))
    assert run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=plugin_repo).returncode == 0
    names = [t["name"] for t in json.loads((plugin_repo.parent / "cloud.json").read_text()).values()]
    assert names.count("web") == 1, names  # adopted through the state, not created twice


def test_a_provider_configuration_error_names_env_yaml(plugin_repo: Path) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    store:", "    region: nowhere\n    store:"))
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "provider testing: region: no such region" in line, line


def test_a_second_version_is_chosen_by_env_yaml(plugin_repo: Path) -> None:
    install_testing_provider(plugin_repo.parent / "mirror", "0.2.0")
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 0 and "opsgit/testing 0.1.0" in result.stderr


@pytest.mark.parametrize(("setting", "says"), [("native: 5", "native must be a list of resource types"),
                                               ("version: [1]", "version must be one version")])
def test_a_bad_plugin_setting_names_env_yaml(plugin_repo: Path, setting: str, says: str) -> None:
    env = plugin_repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace(f"    version: {VERSION}\n", f"    {setting}\n"))
    result = run_opsgit("plan", "--env", "dev", cwd=plugin_repo)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith("error: environments/dev/env.yaml:1: provider testing: ") and says in line, line
