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
# Lists and maps nested deeper than this are refused: no configuration needs it, and everything
# after parsing (rendering, references, plans) walks values recursively.
MAX_NESTING = 100


class _TooDeep(Exception):
    def __init__(self, line: int | None) -> None:
        self.line = line


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

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # A plain scalar's type depends on its text alone, and the same texts recur thousands
        # of times in rendered output (keys, `true`, instance types): look each up once.
        if kind is yaml.ScalarNode and implicit[0]:
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                if len(_PLAIN_TAGS) >= 100_000:
                    _PLAIN_TAGS.clear()
                tag = _PLAIN_TAGS[value] = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
            return tag
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]

    def construct_document(self, node: yaml.Node) -> Any:
        """Build plain maps, lists and scalars straight from the node tree; PyYAML's general
        constructor (generators for recursive structures, merge keys, other tags) only when the
        document needs it. Rendered module bodies are plain, and this is most of a render."""
        try:
            return self._plain(node, {}, set(), 0)
        except (_NotPlain, yaml.constructor.ConstructorError):
            # PyYAML's constructor reports the first error in its own order (keys before the
            # insides of values), so an error found here is reported by it; but first, what it
            # would build and nothing downstream can use: values that contain themselves, and
            # types JSON does not have (bytes, sets, dates)
            _check_json_shape(node, set(), 0)
            return super().construct_document(node)
        finally:
            self.constructed_objects = {}
            self.recursive_objects = {}
            self.state_generators = []

    def _plain(self, node: yaml.Node, made: dict[int, Any], building: set[int], depth: int) -> Any:
        kind, tag = type(node), node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            constructor = _SCALAR_CONSTRUCTORS.get(tag)
            if constructor is None:
                raise _NotPlain
            return constructor(self, node)
        identity = id(node)
        if identity in made:
            return made[identity]  # an alias: the same object, as PyYAML gives it
        if identity in building:
            raise _NotPlain  # a recursive structure
        if depth >= MAX_NESTING:
            raise _TooDeep(node.start_mark.line + 1)
        building.add(identity)
        value: Any
        if kind is yaml.SequenceNode and tag == _SEQ:
            made[identity] = value = [self._plain(item, made, building, depth + 1) for item in node.value]
        elif kind is yaml.MappingNode and tag == _MAP:
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    raise _NotPlain
                if type(key_node) is not yaml.ScalarNode:
                    raise _NotPlain  # a map or list as a key: refused, by PyYAML's constructor
                key = self._plain(key_node, made, building, depth + 1)
                if key in mapping:
                    raise _NotPlain  # a duplicate key: refused, by PyYAML's constructor
                mapping[key] = self._plain(value_node, made, building, depth + 1)
            made[identity] = value = mapping
        else:
            raise _NotPlain
        building.discard(identity)
        return value


# The tags whose values JSON has (strings, numbers, booleans, null, lists, maps), and `<<` merges.
_JSON_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map",
                                                                "merge"))


def _check_json_shape(node: yaml.Node, building: set[int], depth: int) -> None:
    if depth >= MAX_NESTING:
        raise _TooDeep(node.start_mark.line + 1)
    if node.tag not in _JSON_TAGS and not node.tag.startswith("!"):
        raise yaml.constructor.ConstructorError(
            None, None, f"unsupported value type !!{node.tag.rsplit(':', 1)[-1]}", node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        return
    if id(node) in building:
        raise yaml.constructor.ConstructorError(None, None, "recursive alias: a value that contains itself",
                                                node.start_mark)
    building.add(id(node))
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
    for child in children:
        _check_json_shape(child, building, depth + 1)
    building.discard(id(node))


class _NotPlain(Exception):
    """The document needs PyYAML's general constructor."""


_PLAIN_TAGS: dict[str, str] = {}
_STR, _SEQ, _MAP, _MERGE = (f"tag:yaml.org,2002:{name}" for name in ("str", "seq", "map", "merge"))
FastLoader.add_constructor("tag:yaml.org,2002:int", FastLoader.construct_yaml_int)


def _refusing_bad_values(name: str, construct: Any) -> Any:
    """An explicitly tagged scalar that is not of its type (`!!int abc`) is a YAML error with its
    line, not a Python exception from deep inside PyYAML."""
    def constructor(loader: FastLoader, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, KeyError, AttributeError, TypeError):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid !!{name}", node.start_mark) from None
    return constructor


for _name in ("null", "bool", "int", "float", "timestamp"):
    _tag = f"tag:yaml.org,2002:{_name}"
    FastLoader.add_constructor(_tag, _refusing_bad_values(_name, FastLoader.yaml_constructors[_tag]))
_SCALAR_CONSTRUCTORS: dict[str, Any] = {
    f"tag:yaml.org,2002:{name}": FastLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("null", "bool", "int", "float")
}
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
    except (RecursionError, _TooDeep) as error:
        line = error.line if isinstance(error, _TooDeep) else _deepest_line(text)
        raise ConfigError(f"lists and maps nest more than {MAX_NESTING} deep", file=file,
                          line=None if line is None else line + first_line - 1,
                          hint="flatten the structure: no configuration needs this depth") from None
    if "*" in text and "&" in text and _expanded_size(data, MAX_EXPANDED_VALUES) > MAX_EXPANDED_VALUES:
        raise ConfigError(f"YAML aliases expand to more than {MAX_EXPANDED_VALUES:,} values", file=file,
                          line=first_line, hint="an alias bomb? write the values out, or use fewer nested aliases")
    return data


def _deepest_line(text: str) -> int | None:
    """The line where brackets or indentation first nest past MAX_NESTING (for a document too
    deep for the parser itself to say where)."""
    brackets, indents = 0, [-1]
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            indent = len(line) - len(stripped)
            while indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
        brackets += sum(line.count(c) for c in "[{") - sum(line.count(c) for c in "]}")
        if brackets > MAX_NESTING or len(indents) > MAX_NESTING:
            return number
    return None


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
    if "unsupported value type" in problem:
        return "values are strings, numbers, booleans, null, lists and maps: drop the !! tag, or quote the value"
    if "recursive alias" in problem:
        return "an alias may not refer to the value it is inside; write the values out"
    if "is not a valid !!" in problem:
        return "write a value of that type, or drop the !! tag"
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
