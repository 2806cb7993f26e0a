"""The real `packer` binary, run from argument lists."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from opsgit.errors import ToolError

INSTALL_HINT = "install Packer: `apt-get install packer` on Debian, or see packer.io/downloads"


def packer_binary() -> str | None:
    return os.environ.get("OPSGIT_PACKER") or shutil.which("packer")


def require_packer() -> str:
    binary = packer_binary()
    if not binary:
        raise ToolError("packer is not installed", hint=INSTALL_HINT)
    return binary


def packer_environment(role: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment.setdefault("CHECKPOINT_DISABLE", "1")
    environment["HC_ROLE"] = role
    return environment


def validate_template(binary: str, template: Path, role: str) -> None:
    """`packer validate` the rendered template; Packer's complaint becomes the error message."""
    result = subprocess.run([binary, "validate", template.name], cwd=template.parent, capture_output=True,
                            text=True, env=packer_environment(role), timeout=120, check=False)
    if result.returncode != 0:
        detail = " ".join((result.stdout + result.stderr).split())
        raise ToolError(f"packer validate rejected the image template of role {role!r}: {detail[:400]}",
                        file="templates/packer.json.j2")
