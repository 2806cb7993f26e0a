"""YAML in two speeds.

Files and rendered output are parsed with libyaml through PyYAML's C loader, taught the YAML 1.2
core schema (so `no` stays a string, `0644` is decimal and `1:30` is not a number of minutes) and
to refuse duplicate keys. That is the hot path of a render: an environment with 20 module
instances parses 20 rendered bodies. Line numbers are needed only when something is wrong, so
`locate` re-reads the one file with ruamel.yaml's round-trip loader, which keeps them, and walks
to the offending key.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError as RoundTripError

from opsgit.errors import ConfigError

KeyPath = Sequence[str | int]

# Bounds against hostile input: rendered output and user files are never this large legitimately.
MAX_YAML_BYTES = 8 * 1024 * 1024
# Aliases share one object when loaded, so a "billion laughs" document loads in little memory and
# explodes only when something walks it: count what it expands to before anything does.
MAX_EXPANDED_VALUES = 1_000_000


class FastLoader(yaml.CSafeLoader):
    """libyaml with the YAML 1.2 core schema and no duplicate keys."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in mapping
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key",
                    key_node.start_mark) from None
            if seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f'found duplicate key "{key}"',
                    key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = str(self.construct_scalar(node))
        if value.lstrip("+-").startswith("0o"):
            return int(value.replace("0o", "", 1), 8)
        if value.lstrip("+-").startswith("0x"):
            return int(value.replace("0x", "", 1), 16)
        return int(value, 10)


FastLoader.add_constructor("tag:yaml.org,2002:int", FastLoader.construct_yaml_int)
for tag, pattern, first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+0123456789.")),
):
    FastLoader.add_implicit_resolver(tag, re.compile(pattern), first)


def parse(text: str, file: str, *, first_line: int = 1) -> Any:
    """Parse YAML text that came from `file`; syntax errors name the file and line."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"file is larger than {MAX_YAML_BYTES} bytes", file=file)
    try:
        data = yaml.load(text, Loader=FastLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + first_line if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        lines = text.splitlines()
        offending = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        hint = "indent with spaces, not tabs" if "\t" in offending else (
            _yaml_hint(problem) or "check the indentation, quotes and brackets of this line and the one before")
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line, hint=hint) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", file=file) from None
    except RecursionError:
        raise ConfigError("YAML nests too deeply", file=file) from None
    if "*" in text and "&" in text and _expanded_size(data, MAX_EXPANDED_VALUES) > MAX_EXPANDED_VALUES:
        raise ConfigError(f"YAML aliases expand to more than {MAX_EXPANDED_VALUES:,} values", file=file,
                          line=first_line, hint="an alias bomb? write the values out, or use fewer nested aliases")
    return data


def _expanded_size(value: Any, limit: int) -> int:
    """How many values `value` has once every alias is expanded, counting up to just past `limit`."""
    sizes: dict[int, int] = {}

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        known = sizes.get(id(item))
        if known is not None:
            return known
        children = item.values() if isinstance(item, dict) else item
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(item)] = total
        return total

    return size(value)


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
    except RoundTripError:
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
