"""Apply-time references: `${aws_security_group.allow_all.id}`, `${module.redis.redis_address}`.

A reference names a resource instance (or all of them with `[*]`) and an attribute path. In a
rendered graph every reference is absolute (`module.web-east.aws_instance.web[0].private_ip`),
so the engine resolves it by one dictionary lookup on the address.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from opsgit import walk

# `$${` is a literal `${`, as in Terraform.
PATTERN = re.compile(r"\$?\$\{([^{}]*)\}")
TOKEN = re.compile(r'\s*(?:([A-Za-z_][\w-]*)|\[\s*(\d+|\*|"[^"]*")\s*\]|(\.))')

Index = int | str | None
Segment = str | int


class Key(str):
    """A `["key"]` index, as distinct from a `.name`."""


SPLAT = ("*",)


class ReferenceSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    """A parsed reference; `modules` is the module path, `attributes` what follows the address."""

    modules: tuple[str, ...]
    type: str
    name: str
    index: Index
    splat: bool
    attributes: tuple[Segment, ...]

    @property
    def block(self) -> str:
        """The resource block's address, without the instance index."""
        return "".join(f"module.{m}." for m in self.modules) + f"{self.type}.{self.name}"

    @property
    def address(self) -> str:
        return self.block + format_index(self.index)


def format_index(index: Index) -> str:
    if index is None:
        return ""
    if isinstance(index, int):
        return f"[{index}]"
    return f"[{json.dumps(index)}]"


@functools.lru_cache(maxsize=65536)
def _tokens(expression: str) -> tuple[Segment | tuple[str], ...]:
    return tuple(_tokenize(expression))


def tokens(expression: str) -> list[Segment | tuple[str]]:
    return list(_tokens(expression))


def _tokenize(expression: str) -> list[Segment | tuple[str]]:
    """`module.a.aws_instance.web[0].ip` -> ['module', 'a', 'aws_instance', 'web', 0, 'ip'];
    a splat index is the tuple ('*',)."""
    result: list[Segment | tuple[str]] = []
    position = 0
    expect_name = True
    text = expression.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise ReferenceSyntaxError(f"cannot parse reference ${{{expression}}}")
        name, index, dot = match.groups()
        if dot:
            if expect_name:
                raise ReferenceSyntaxError(f"unexpected '.' in ${{{expression}}}")
            expect_name = True
        elif name is not None:
            if not expect_name:
                raise ReferenceSyntaxError(f"missing '.' before {name!r} in ${{{expression}}}")
            result.append(name)
            expect_name = False
        else:
            if expect_name:
                raise ReferenceSyntaxError(f"unexpected index in ${{{expression}}}")
            if index == "*":
                result.append(SPLAT)
            elif index.startswith('"'):
                result.append(Key(index[1:-1]))
            else:
                result.append(int(index))
        position = match.end()
    if not result or expect_name:
        raise ReferenceSyntaxError(f"incomplete reference ${{{expression}}}")
    return result


@functools.lru_cache(maxsize=65536)
def parse_resource(expression: str) -> Reference:
    """Parse an absolute resource reference (cached: environments repeat the same addresses)."""
    parts = tokens(expression)
    modules: list[str] = []
    position = 0
    while position + 1 < len(parts) and parts[position] == "module" and isinstance(parts[position + 1], str):
        modules.append(str(parts[position + 1]))
        position += 2
    rest = parts[position:]
    if len(rest) >= 3 and rest[0] == "data" and _is_name(rest[1]) and _is_name(rest[2]):
        rest = [f"data.{rest[1]}", *rest[2:]]  # a data source: data.TYPE.NAME
    if len(rest) < 2 or not isinstance(rest[0], str) or not isinstance(rest[1], str):
        raise ReferenceSyntaxError(f"${{{expression}}} does not name a resource (TYPE.NAME)")
    index: Index = None
    splat = False
    attributes = rest[2:]
    if attributes and not _is_name(attributes[0]):
        first = attributes[0]
        splat = isinstance(first, tuple)
        index = None if splat else (str(first) if isinstance(first, Key) else first)  # type: ignore[assignment]
        attributes = attributes[1:]
    return Reference(tuple(modules), rest[0], rest[1], index, splat,
                     tuple(a for a in attributes if not isinstance(a, tuple)))


UPSTREAM = "environment"  # `${environment.global.outputs.zone_id}`: another environment's output


def upstream_output(expression: str) -> tuple[str, str] | None:
    """(environment, output) if `expression` reads another environment's output, else None.
    The one spelling is `environment.<env>.outputs.<name>`, optionally indexed further."""
    parts = tokens(expression.lstrip("/"))
    if parts[0] != UPSTREAM:
        return None
    if len(parts) < 4 or not _is_name(parts[1]) or parts[2] != "outputs" or not _is_name(parts[3]):
        raise ReferenceSyntaxError(f"${{{expression.lstrip('/')}}} must read an output as "
                                   "${environment.ENV.outputs.NAME}")
    return str(parts[1]), str(parts[3])


def is_data(address: str) -> bool:
    """Whether an instance address is a data source's (`module.app.data.aws_ami.base`)."""
    parts = address.split(".")
    while len(parts) > 2 and parts[0] == "module":
        parts = parts[2:]
    return parts[0] == "data"


def _is_name(segment: object) -> bool:
    return isinstance(segment, str) and not isinstance(segment, Key)


def find(text: str) -> Iterator[str]:
    """The expressions of all references in a string, skipping `$${` escapes."""
    for match in PATTERN.finditer(text):
        if not match.group(0).startswith("$$"):
            yield match.group(1).strip()


def substitute(text: str, replace: Callable[[str], str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)
        return replace(match.group(1).strip())
    return PATTERN.sub(one, text)


def unterminated(text: str) -> str | None:
    """The start of a `${` that no `}` closes (`${aws_route53_zone.internal.zone_id`), if any: it
    would otherwise reach a provider as literal text."""
    rest = PATTERN.sub("", text)
    start = rest.replace("$${", "").find("${")
    if start < 0:
        return None
    fragment = rest.replace("$${", "")[start:]
    return fragment.split()[0][:80] if fragment.split() else fragment[:80]


def whole(text: str) -> str | None:
    """The expression if `text` is exactly one reference, else None."""
    match = PATTERN.fullmatch(text.strip()) if text.startswith("${") else None
    return match.group(1).strip() if match else None


def walk_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """Apply `change` to every string with a reference in a YAML-like value, returning a new value."""
    return walk.transform(value, lambda leaf: change(leaf) if isinstance(leaf, str) and "${" in leaf else leaf)


def collect(value: Any, into: list[str]) -> None:
    """Append the expression of every reference inside a YAML-like value."""
    for leaf in walk.leaves(value):
        if isinstance(leaf, str) and "${" in leaf:
            into.extend(find(leaf))
