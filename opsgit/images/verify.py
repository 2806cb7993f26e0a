"""`opsgit verify`: a role's testinfra tests (`roles/<role>/tests/test_*.py`) run by pytest with
pytest-testinfra against the given hosts. The tests find the image's files under
`OPSGIT_IMAGE_ROOT` (see `opsgit.testing`): a local build's directory for `local://`, `/` on a
real machine."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from opsgit.errors import ToolError
from opsgit.testing import IMAGE_ROOT_VARIABLE


def pytest_command(tests: Path, hosts: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(tests), f"--hosts={hosts}", "-p", "no:cacheprovider",
            "-o", "addopts=", "-q"]


def run_role_tests(tests: Path, hosts: str, image_root: str, role: str, cwd: Path) -> int:
    for module, package in (("pytest", "pytest"), ("testinfra", "pytest-testinfra")):
        if importlib.util.find_spec(module) is None:
            raise ToolError(f"{package} is not installed", hint=f"pip install {package} (or opsgit[verify])")
    environment = {**os.environ, IMAGE_ROOT_VARIABLE: image_root, "HC_ROLE": role}
    return subprocess.run(pytest_command(tests, hosts), cwd=cwd, env=environment, check=False).returncode
