from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("environments", "roles", "modules", "templates", "pyproject.toml", "tasks.py")
BROKEN = REPO_ROOT / "tests" / "fixtures" / "broken"


def copy_example(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in EXAMPLE_PARTS:
        source = REPO_ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            shutil.copy2(source, target / part)
    return target


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the example monorepo."""
    return copy_example(tmp_path / "ops")


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_opsgit(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPSGIT_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "opsgit", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@pytest.fixture
def in_directory(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
