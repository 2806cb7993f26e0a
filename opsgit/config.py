"""Project settings from `[tool.opsgit]` in the monorepo's pyproject.toml."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from opsgit.errors import ConfigError
from opsgit.policy import PolicySettings, parse_settings

KNOWN_SETTINGS = ("org", "status_context_prefix", "default_base", "build_dir", "plugin_dirs", "policy", "alerts_notify")


@dataclass(frozen=True)
class Settings:
    root: Path
    org: str = ""
    status_context_prefix: str = "opsgit"
    default_base: str = "origin/main"
    build_dir: Path = Path("build")
    plugin_dirs: tuple[Path, ...] = ()
    """Filesystem mirrors of Terraform providers to look in first (Terraform's layout)."""
    policy: PolicySettings | None = None
    """`[tool.opsgit.policy]`: the checks a plan must pass (`opsgit.policy`)."""
    alerts_notify: tuple[str, ...] = ()
    """Where `opsgit alerts` sends alerts: Apprise URLs or http(s) webhooks (OPSGIT_ALERT_URLS wins)."""

    @property
    def build_path(self) -> Path:
        return self.build_dir if self.build_dir.is_absolute() else self.root / self.build_dir


def find_root(start: Path | None = None) -> Path:
    """The monorepo root: `OPSGIT_ROOT`, else the nearest directory up with `environments/` or
    a pyproject.toml holding `[tool.opsgit]`."""
    explicit = os.environ.get("OPSGIT_ROOT")
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "environments").is_dir() or _has_opsgit_table(candidate / "pyproject.toml"):
            return candidate
    raise ConfigError(
        f"no opsgit monorepo found in {here} or above",
        hint="run inside a repository with environments/ and roles/, or pass -C DIR",
    )


def _has_opsgit_table(pyproject: Path) -> bool:
    try:
        return b"[tool.opsgit]" in pyproject.read_bytes()
    except OSError:
        return False


def load_settings(root: Path) -> Settings:
    pyproject = root / "pyproject.toml"
    if not pyproject.exists():
        return Settings(root=root)
    try:
        from opsgit.repo.text import read_text  # here: opsgit.repo's package imports this module

        table = tomllib.loads(read_text(pyproject, "pyproject.toml")).get("tool", {}).get("opsgit", {})
    except tomllib.TOMLDecodeError as error:
        line = _toml_error_line(str(error))
        raise ConfigError(f"invalid TOML: {error}", file="pyproject.toml", line=line) from None
    for key in table:
        if key not in KNOWN_SETTINGS:
            raise ConfigError(
                f"unknown setting [tool.opsgit] {key!r}",
                file="pyproject.toml",
                hint=f"known settings: {', '.join(KNOWN_SETTINGS)}",
            )
        if key == "policy":
            continue  # checked by parse_settings
        if key in ("plugin_dirs", "alerts_notify"):
            if not isinstance(table[key], list) or not all(isinstance(d, str) for d in table[key]):
                raise ConfigError(f"[tool.opsgit] {key} must be a list of strings", file="pyproject.toml",
                                  hint='plugin_dirs = ["/opt/terraform/plugins"]' if key == "plugin_dirs" else
                                  'alerts_notify = ["slack://TOKEN/CHANNEL", "https://hooks.example.com/opsgit"]')
        elif not isinstance(table[key], str):
            raise ConfigError(f"[tool.opsgit] {key} must be a string", file="pyproject.toml")
    build_dir = Path(table.get("build_dir", "build"))
    if not os.environ.get("OPSGIT_BUILD_DIR") and not (root / build_dir).resolve().is_relative_to(root.resolve()):
        # A pull request could point the build at a shared place (or over another checkout); writing
        # outside the repository takes the operator's explicit word.
        raise ConfigError(f"[tool.opsgit] build_dir {str(build_dir)!r} is outside the repository",
                          file="pyproject.toml",
                          hint="keep it inside the repository, or set OPSGIT_BUILD_DIR to build elsewhere on purpose")
    return Settings(
        root=root,
        org=table.get("org", ""),
        status_context_prefix=table.get("status_context_prefix", "opsgit"),
        default_base=table.get("default_base", "origin/main"),
        build_dir=Path(os.environ.get("OPSGIT_BUILD_DIR") or build_dir),
        plugin_dirs=tuple(Path(d) if Path(d).is_absolute() else root / d for d in table.get("plugin_dirs", [])),
        policy=parse_settings(table["policy"]) if "policy" in table else None,
        alerts_notify=tuple(table.get("alerts_notify", [])),
    )


def _toml_error_line(message: str) -> int | None:
    # tomllib says "... (at line 3, column 7)"
    marker = "at line "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(",", 1)[0].rstrip(")")
    return int(digits) if digits.isdigit() else None
