"""Small validation helpers: types, known keys with a did-you-mean, names."""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Collection, Mapping
from typing import Any

from opsgit.repo.values import Origin

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

TYPE_EXAMPLES: dict[type, str] = {str: 'a quoted string, such as "web"', int: "a number, such as 2",
                                   bool: "true or false", list: "a list, such as [a, b]",
                                   dict: "a mapping, such as {key: value}"}
TYPE_NAMES: dict[type, str] = {str: "a string", int: "a number", bool: "true or false",
                               list: "a list", dict: "a mapping", float: "a number"}


def suggest(name: str, candidates: Collection[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def check_keys(data: Mapping[str, Any], origin: Origin, allowed: Collection[str],
               required: Collection[str] = ()) -> None:
    for key in data:
        if not isinstance(key, str):
            raise origin.error(f"key {key!r} must be a string")
        if key not in allowed:
            hint = suggest(key, allowed) or f"allowed keys: {', '.join(sorted(allowed))}"
            raise origin.child(key).error(f"unknown key {key!r}", hint)
    for key in required:
        if key not in data:
            raise origin.error(f"missing required key {key!r}")


def expect(value: Any, kind: type | tuple[type, ...], origin: Origin, what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if not isinstance(value, kinds) or wrong_bool:
        wanted = " or ".join(dict.fromkeys(TYPE_NAMES.get(k, k.__name__) for k in kinds))
        raise origin.error(f"{what} must be {wanted}, not {_describe(value)}",
                           f"write {TYPE_EXAMPLES.get(kinds[0], wanted)}" if kinds[0] in TYPE_EXAMPLES else None)
    return value


def expect_mapping(value: Any, origin: Origin, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    result: dict[str, Any] = expect(value, dict, origin, what)
    return result


def expect_name(name: Any, origin: Origin, what: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise origin.error(f"invalid {what} name {name!r}",
                           "use lower-case letters, digits, '-' and '_', starting with a letter or digit")
    return name


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    return TYPE_NAMES.get(type(value), type(value).__name__)


def expect_command(value: Any, origin: Origin, what: str) -> tuple[str, ...]:
    """A command line as an argument list: a YAML list, or a string split as a shell would split
    it (it is never run through one)."""
    if isinstance(value, list):
        return tuple(str(expect(part, (str, int), origin, f"each {what} argument")) for part in value)
    text = expect(value, str, origin, what)
    try:
        return tuple(shlex.split(text))
    except ValueError as error:
        raise origin.error(f"malformed {what} {text!r}: {error}", "write it as a list of arguments") from None
