"""The template specs `opsgit template` is given: `--template SRC:DEST[:COMMAND]`, a `--config`
file, or a role's `role.yaml`, all as `TemplateSpec` values.

A config file is a YAML list; relative paths in it are relative to the file's directory:

    - source: binstore.json.j2
      destination: /etc/binstore/binstore.json
      command: systemctl reload binstore     # a string (split like a shell, run without one) or a list
      command_timeout: 30s
      perms: "0640"
      backup: true                            # keep the previous file as <destination>.bak
      wait: 2s:10s                            # this template's quiescence (MIN[:MAX] or {min, max})
      left_delimiter: "[["                    # for files that contain {{ }} themselves
      right_delimiter: "]]"
      in_place: true                          # rewrite the file itself (bind-mounted single files)
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgit.consul.durations import parse_duration
from opsgit.errors import UserError
from opsgit.repo import yamlio
from opsgit.repo.schema import check_keys, expect, expect_command, expect_mapping
from opsgit.repo.text import read_text
from opsgit.repo.values import Origin

CONFIG_KEYS = ("source", "destination", "command", "command_timeout", "perms", "backup", "wait",
               "left_delimiter", "right_delimiter", "in_place")
DEFAULT_COMMAND_TIMEOUT = 30.0


@dataclass(frozen=True)
class TemplateSpec:
    source: Path
    destination: Path
    command: tuple[str, ...] = ()
    perms: int | None = None
    backup: bool = False
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    wait: tuple[float, float] | None = None
    left_delimiter: str = "{{"
    right_delimiter: str = "}}"
    in_place: bool = False
    confine: tuple[Path, ...] = ()
    """Directories the destination must really be inside (symlinks resolved); empty: anywhere."""


def parse_spec(text: str) -> TemplateSpec:
    """`SRC:DEST[:COMMAND]`; the command is split like a shell would, but run without one."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UserError(f"malformed --template {text!r}", hint="use SOURCE:DESTINATION[:COMMAND]")
    try:
        command = tuple(shlex.split(parts[2])) if len(parts) == 3 and parts[2].strip() else ()
    except ValueError as error:
        raise UserError(f"malformed command in --template {text!r}: {error}") from None
    return TemplateSpec(Path(parts[0]), Path(parts[1]), command)


def parse_wait(text: str | None) -> tuple[float, float] | None:
    """`MIN[:MAX]`; MAX defaults to 4 x MIN, as consul-template's does."""
    if not text:
        return None
    low, _, high = text.partition(":")
    try:
        minimum = parse_duration(low)
        maximum = parse_duration(high) if high else minimum * 4
    except ValueError:
        raise UserError(f"invalid wait {text!r}", hint="use MIN[:MAX], such as 2s:10s") from None
    return minimum, max(minimum, maximum)


def parse_perms(value: Any, where: Origin) -> int:
    if isinstance(value, str) and len(value) in (3, 4) and all(c in "01234567" for c in value):
        return int(value, 8)
    raise where.error(f"perms {value!r} must be an octal string such as \"0644\"", "quote it: perms: \"0640\"")


def _duration(value: Any, where: Origin, what: str) -> float:
    try:
        return parse_duration(str(expect(value, (str, int, float), where, what)))
    except ValueError:
        raise where.error(f"invalid {what} {value!r}", "use a duration such as 30s or 1m") from None


def _wait(value: Any, where: Origin) -> tuple[float, float] | None:
    if isinstance(value, dict):
        check_keys(value, where, ("min", "max"), required=("min",))
        minimum = _duration(value["min"], where.child("min"), "wait min")
        maximum = _duration(value["max"], where.child("max"), "wait max") if "max" in value else minimum * 4
        return minimum, max(minimum, maximum)
    text = str(expect(value, (str, int, float), where, "wait"))
    try:
        return parse_wait(text)
    except UserError:
        raise where.error(f"invalid wait {text!r}", "use MIN[:MAX], such as 2s:10s, or {min: 2s, max: 10s}") from None


def load_config(path: Path) -> list[TemplateSpec]:
    try:
        text = read_text(path, str(path))
    except OSError as error:
        raise UserError(f"cannot read template config {path}: {error.strerror}") from None
    origin = Origin(str(path), text)
    data = yamlio.parse(text, str(path))
    if data is None:
        return []
    base = path.parent
    specs = []
    for index, entry in enumerate(expect(data, list, origin, "a template config (a list of templates)")):
        where = origin.child(index)
        entry = expect_mapping(entry, where, "a template entry")
        check_keys(entry, where, CONFIG_KEYS, required=("source", "destination"))
        source = base / expect(entry["source"], str, where.child("source"), "source")
        if not source.is_file():
            raise where.child("source").error(f"template {source} does not exist", "fix the path (relative to "
                                                                                   "the config file)")
        destination = base / expect(entry["destination"], str, where.child("destination"), "destination")
        left = expect(entry.get("left_delimiter", "{{"), str, where.child("left_delimiter"), "left_delimiter")
        right = expect(entry.get("right_delimiter", "}}"), str, where.child("right_delimiter"), "right_delimiter")
        if not left or not right:
            raise where.error("delimiters must not be empty")
        specs.append(TemplateSpec(
            source=source, destination=destination,
            command=expect_command(entry["command"], where.child("command"), "command") if entry.get("command") else (),
            perms=parse_perms(entry["perms"], where.child("perms")) if "perms" in entry else None,
            backup=expect(entry.get("backup", False), bool, where.child("backup"), "backup"),
            command_timeout=_duration(entry["command_timeout"], where.child("command_timeout"), "command_timeout")
            if "command_timeout" in entry else DEFAULT_COMMAND_TIMEOUT,
            wait=_wait(entry["wait"], where.child("wait")) if "wait" in entry else None,
            left_delimiter=left, right_delimiter=right,
            in_place=expect(entry.get("in_place", False), bool, where.child("in_place"), "in_place")))
    return specs
