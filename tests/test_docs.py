"""The docs' examples run: docs/guide.md's `sh test` blocks in order in a fresh directory, and
docs/reference.md's files in a fresh `opsgit init` monorepo, validated and rendered."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opsgit.images.packer import packer_binary
from opsgit.testing import render_host_template
from tests.agent_process import start_agent
from tests.conftest import REPO_ROOT, run_opsgit

BLOCK = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(document: str, kind: str) -> list[tuple[str, str]]:
    text = (REPO_ROOT / "docs" / document).read_text()
    return [(m["info"].strip(), m["body"]) for m in BLOCK.finditer(text) if m["info"].strip().startswith(kind)]


@pytest.mark.skipif(packer_binary() is None, reason="packer is installed by `make test`")
def test_the_guide_runs_from_zero_to_a_pull_request(tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + "\n".join(body for _, body in blocks("guide.md", "sh test"))
    assert "opsgit init" in script and "opsgit affected" in script
    agent = start_agent()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSGIT_", "GITHUB_"))}
        env.update({"CONSUL_HTTP_ADDR": agent.address, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"})
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600, check=False)
    finally:
        agent.stop()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in result.stdout
    assert "No changes." in result.stdout and "Promoted:" in result.stdout and "2 passed" in result.stdout
    assert "Plan: 3 to add, 0 to change, 3 to destroy." in result.stdout  # the promoted image rolls out
    assert '"name": "dev"' in result.stdout and "Plan: 2 to add, 0 to change, 1 to destroy." in result.stdout


def test_the_reference_files_validate_and_render(tmp_path: Path) -> None:
    assert run_opsgit("init", "ops", cwd=tmp_path).returncode == 0
    root = tmp_path / "ops"
    files = blocks("reference.md", "yaml file=")
    assert len(files) >= 5
    for info, body in files:
        target = root / info.split("file=", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    validated = run_opsgit("validate", "--no-packer", cwd=root)
    assert validated.returncode == 0, validated.stderr
    rendered = run_opsgit("render", cwd=root)
    assert rendered.returncode == 0, rendered.stderr
    assert "api_password" not in rendered.stdout


def test_the_reference_host_template_renders() -> None:
    [(info, body)] = blocks("reference.md", "jinja host")
    keys = dict(pair.split("=", 1) for pair in info.split("keys=", 1)[1].split(","))
    text = render_host_template(body, keys=keys)
    assert "database = postgres://db.internal/app" in text and "replicas = 1" in text
    assert "pool.min = 2" in text and "pool.max = 8" in text
