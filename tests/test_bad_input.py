"""Every broken repository under tests/fixtures/broken gives exit 1, one line naming the file and
line, no traceback, and no build output at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import BROKEN, run_opsgit

CASES = sorted(p.name for p in BROKEN.iterdir() if (p / "expected-error").is_file())


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["render", "validate"])
def test_broken_repository_is_refused_clearly(case: str, command: str, tmp_path: Path) -> None:
    repo = tmp_path / case
    shutil.copytree(BROKEN / case, repo, ignore=shutil.ignore_patterns("expected-error"))
    result = run_opsgit(command, cwd=repo)
    expected = (BROKEN / case / "expected-error").read_text().strip()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert lines[0].rstrip().endswith(")"), "every error names the fix, in parentheses at the end"
    assert "Traceback" not in result.stderr + result.stdout
    assert not (repo / "build").exists(), "a failed render must not write anything"
