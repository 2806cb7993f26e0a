"""`opsgit init`: a newcomer's monorepo renders, plans, applies, builds and verifies at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsgit.images.packer import packer_binary
from tests.agent_process import start_agent
from tests.conftest import run_opsgit


def test_init_scaffolds_a_monorepo_that_plans_and_applies(tmp_path: Path) -> None:
    created = run_opsgit("init", "ops", "--name", "acme", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "ops"
    assert 'org = "acme"' in (root / "pyproject.toml").read_text() and (root / ".git").is_dir()
    assert run_opsgit("render", cwd=root).returncode == 0
    planned = run_opsgit("plan", "--env", "dev", cwd=root)
    assert planned.returncode == 0 and "Plan: 3 to add, 0 to change, 0 to destroy." in planned.stdout
    applied = run_opsgit("apply", "--env", "dev", "build/plans/dev.plan.json", cwd=root)
    assert applied.returncode == 0 and "Apply complete! Resources: 3 added" in applied.stdout
    again = run_opsgit("plan", "--env", "dev", cwd=root)
    assert "No changes." in again.stdout
    refused = run_opsgit("init", "ops", cwd=tmp_path)
    assert refused.returncode == 1 and "already exists and is not empty" in refused.stderr


@pytest.mark.skipif(packer_binary() is None, reason="packer is installed by `make test`")
def test_the_scaffold_builds_and_verifies_its_image(tmp_path: Path) -> None:
    assert run_opsgit("init", "ops", cwd=tmp_path).returncode == 0
    root = tmp_path / "ops"
    assert run_opsgit("validate", cwd=root).returncode == 0
    agent = start_agent()
    try:
        built = run_opsgit("image", "--env", "dev", "--promote", cwd=root,
                           env={"HC_ROLE": "app", "CONSUL_HTTP_ADDR": agent.address})
    finally:
        agent.stop()
    assert built.returncode == 0, built.stdout + built.stderr
    assert "app: local-app-" in (root / "environments/dev/images.yaml").read_text()
    verified = run_opsgit("verify", "--role", "app", cwd=root)
    assert verified.returncode == 0 and "2 passed" in verified.stdout
