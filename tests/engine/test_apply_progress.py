"""Apply progress as Terraform prints it: `Still creating... [Ns elapsed]` while a long
operation runs (every 10 s; OPSGIT_PROGRESS_INTERVAL shortens it here), `Creation complete
after`, and the final count; `opsgit history` and `opsgit locks` with column headers."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_opsgit, write_tree

ENV = "modules:\n  app:\n    source: app\n"
MODULE = "resources:\n  time_sleep.settle:\n    create_duration: 2500ms\n"


def test_a_long_create_says_it_is_still_creating(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/app/module.yaml": MODULE})
    applied = run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root, extra={"OPSGIT_PROGRESS_INTERVAL": "1"})
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert "module.app.time_sleep.settle: Creating..." in lines
    assert "module.app.time_sleep.settle: Still creating... [1s elapsed]" in lines
    assert "module.app.time_sleep.settle: Still creating... [2s elapsed]" in lines
    assert any(line.startswith("module.app.time_sleep.settle: Creation complete after") for line in lines)
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in lines
    history = run_opsgit("history", "--env", "t", cwd=root).stdout.splitlines()
    assert history[0].split() == ["WHEN", "ENVIRONMENT", "RUN", "KIND", "RESULT", "WHO", "COMMIT/PR", "TOOK", "SUMMARY"]
    locks = run_opsgit("locks", cwd=root).stdout.splitlines()
    assert locks[0].split() == ["ENVIRONMENT", "BACKEND", "LOCK"] and locks[1].split()[:3] == ["t", "local", "free"]
