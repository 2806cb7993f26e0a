"""Resource blocks as a module writes them: `count` and `for_each` expanded into instances, and
`lifecycle` checked."""

from __future__ import annotations

from typing import Any

from opsgit.errors import RenderError
from opsgit.graph import refs
from opsgit.repo.schema import suggest

LIFECYCLE_KEYS = ("create_before_destroy", "prevent_destroy", "ignore_changes")


MAX_COUNT = 100_000


_NOT_SPECIAL = object()


def lifecycle_of(value: Any, key: str, file: str, line: int | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError(f"lifecycle of {key} must be a mapping", file=file, line=line)
    for name, setting in value.items():
        if name not in LIFECYCLE_KEYS:
            raise RenderError(f"unknown lifecycle setting {name!r} in {key}", file=file, line=line,
                              hint=suggest(str(name), LIFECYCLE_KEYS))
        if name == "ignore_changes":
            if setting != "all" and not (isinstance(setting, list) and all(isinstance(s, str) for s in setting)):
                raise RenderError(f"lifecycle.ignore_changes of {key} must be a list of attribute names or "
                                  "'all'", file=file, line=line)
        elif not isinstance(setting, bool):
            raise RenderError(f"lifecycle.{name} of {key} must be true or false", file=file, line=line)
    return dict(value)


def expansions(spec: dict[str, Any], key: str, file: str, line: int | None) -> list[tuple[Any, Any]]:
    if "count" in spec and "for_each" in spec:
        raise RenderError(f"{key} sets both count and for_each", file=file, line=line, hint="use one")
    if "count" in spec:
        count = spec["count"]
        if isinstance(count, str) and "${" in count:
            raise RenderError(f"count of {key} must be known at render time, not {count!r}", file=file,
                              line=line, hint="compute it from variables with Jinja: count: {{ var.nodes }}")
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0 or count > MAX_COUNT:
            raise RenderError(f"count of {key} must be a whole number from 0 to {MAX_COUNT}, not {count!r}",
                              file=file, line=line, hint="such as count: 2, or count: {{ var.nodes }}")
        return [(index, None) for index in range(count)]
    if "for_each" in spec:
        items = spec["for_each"]
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            if len(set(items)) != len(items):
                raise RenderError(f"for_each of {key} lists a key twice", file=file, line=line)
            return [(item, item) for item in items]
        if isinstance(items, dict):
            return [(str(k), v) for k, v in items.items()]
        raise RenderError(f"for_each of {key} must be a mapping or a list of strings", file=file, line=line)
    return [(None, None)]


def expand(attributes: dict[str, Any], index: Any, each: Any, counted: bool, for_each: bool, key: str,
            file: str, line: int | None) -> dict[str, Any]:
    """Substitute `count.index`, `each.key` and `each.value` for one instance."""
    if not counted and not for_each:
        return attributes

    def special(name: str) -> Any:
        if counted and name == "count.index":
            return index
        if for_each and name == "each.key":
            return index
        if for_each and name == "each.value":
            return each
        return _NOT_SPECIAL

    def one(expression: str) -> str:
        result = special(expression)
        if result is _NOT_SPECIAL:
            if counted:
                expression = expression.replace("[count.index]", f"[{index}]")
            if for_each:
                expression = expression.replace("[each.key]", refs.format_index(index))
            return "${" + expression + "}"
        if isinstance(result, (dict, list)):
            raise RenderError(f"each.value of {key} is structured and cannot be part of a string",
                              file=file, line=line)
        return str(result)

    def change(text: str) -> Any:
        single = refs.whole(text)
        if single is not None:
            result = special(single)
            if result is not _NOT_SPECIAL:
                return result
        return refs.substitute(text, one)

    expanded: dict[str, Any] = refs.walk_strings(attributes, change)
    return expanded
