"""YAML in two speeds.

Files are parsed with ruamel.yaml's C-accelerated safe loader: fast, and the same loader parses
rendered output. Line numbers are needed only when something is wrong, so `locate` re-reads the
one file with the round-trip loader, which keeps them, and walks to the offending key.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from opsgit.errors import ConfigError

KeyPath = Sequence[str | int]

# Bounds against hostile input: rendered output and user files are never this large legitimately.
MAX_YAML_BYTES = 8 * 1024 * 1024


def _fast_loader() -> YAML:
    loader = YAML(typ="safe", pure=False)
    loader.allow_duplicate_keys = False
    return loader


_FAST = _fast_loader()


def parse(text: str, file: str, *, first_line: int = 1) -> Any:
    """Parse YAML text that came from `file`; syntax errors name the file and line."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"file is larger than {MAX_YAML_BYTES} bytes", file=file)
    try:
        return _FAST.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + first_line if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        lines = text.splitlines()
        offending = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        hint = "indent with spaces, not tabs" if "\t" in offending else _yaml_hint(problem)
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line, hint=hint) from None
    except YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", file=file) from None
    except RecursionError:
        raise ConfigError("YAML nests too deeply", file=file) from None


def _yaml_hint(problem: str) -> str | None:
    if "found duplicate key" in problem:
        return "each name may appear once in a mapping; rename or remove one"
    if "mapping values are not allowed" in problem:
        return "quote values that contain ': '"
    if "found unhashable key" in problem or "while parsing a flow mapping" in problem:
        return "quote values that start with '{' such as Jinja expressions"
    return None


@functools.lru_cache(maxsize=256)
def _round_trip(text: str) -> Any:
    loader = YAML(typ="rt")
    loader.allow_duplicate_keys = True
    try:
        return loader.load(text)
    except YAMLError:
        return None


def locate(text: str, keys: KeyPath) -> int | None:
    """1-based line of the deepest key of `keys` found in the YAML `text`."""
    node = _round_trip(text)
    line: int | None = None
    for key in keys:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        try:
            if isinstance(key, int):
                line = lc.item(key)[0] + 1
                node = node[key]
            elif key in node:
                line = lc.key(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line
