"""Repository files stay in the repository: a symbolic link that leads outside it is refused
wherever a file is read, listed or included. Pull-request plans run in CI with credentials, and
role templates ship in images: a link to a credentials file would publish it."""

from __future__ import annotations

from pathlib import Path

from opsgit.errors import ConfigError


def inside(root: Path, path: Path) -> Path:
    """`path`, once it is known to be inside `root` with every link followed."""
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        raise ConfigError(f"leads outside the repository (a symbolic link to {real})", file=shown,
                          hint="copy the file into the repository, or point the link at a file inside it")
    return path
