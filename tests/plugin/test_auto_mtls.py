"""go-plugin's AutoMTLS (`auto_mtls: true`), with the testing provider in its TLS-only mode: it
will not start without a client certificate and serves only TLS with a P-521 certificate, as a
go-plugin server does, so every call here crossed a verified TLS connection."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_opsgit, write_tree
from tests.plugin.conftest import ENV, MODULE, install_testing_provider


def repo(tmp_path: Path, auto_mtls: bool) -> Path:
    mirror = tmp_path / "mirror"
    install_testing_provider(mirror, tls="required")
    env = ENV.format(store=tmp_path / "cloud.json")
    if auto_mtls:
        env = env.replace("    version: 0.1.0\n", "    version: 0.1.0\n    auto_mtls: true\n")
    return write_tree(tmp_path / "ops", {
        "pyproject.toml": f'[tool.opsgit]\nplugin_dirs = ["{mirror}"]\n',
        "environments/dev/env.yaml": env,
        "modules/app/module.yaml": MODULE.format(),
    })


def test_a_provider_that_requires_mtls_is_driven_over_it(tmp_path: Path) -> None:
    root = repo(tmp_path, auto_mtls=True)
    applied = run_opsgit("apply", "--env", "dev", "--auto-approve", cwd=root)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in applied.stdout
    things = json.loads((tmp_path / "cloud.json").read_text())
    assert sorted(t["name"][:6] for t in things.values()) == ["web", "worker"]
    again = run_opsgit("plan", "--env", "dev", "--detailed-exitcode", cwd=root)
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr


def test_without_auto_mtls_the_error_says_what_the_provider_wants(tmp_path: Path) -> None:
    root = repo(tmp_path, auto_mtls=False)
    plan = run_opsgit("plan", "--env", "dev", cwd=root)
    assert plan.returncode == 1 and "Traceback" not in plan.stderr
    assert "serves only over AutoMTLS" in plan.stderr and "auto_mtls: true" in plan.stderr, plan.stderr


def test_auto_mtls_must_be_a_boolean(tmp_path: Path) -> None:
    root = repo(tmp_path, auto_mtls=False)
    env = root / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("    version: 0.1.0\n", "    version: 0.1.0\n    auto_mtls: sometimes\n"))
    plan = run_opsgit("plan", "--env", "dev", cwd=root)
    assert plan.returncode == 1 and "Traceback" not in plan.stderr
    assert "env.yaml" in plan.stderr and "auto_mtls must be true or false" in plan.stderr, plan.stderr
