"""Consul's `?filter=` expressions (go-bexpr): parsed once, evaluated against each answer row.

The grammar is go-bexpr's: `or` binds loosest, then `and`, then `not`, then parentheses;
a match is `Selector == Value`, `!=`, `is empty`, `is not empty`, `Value in Selector`,
`Value not in Selector`, `Selector contains Value`, `not contains`, `matches` (a regular
expression) and `not matches`; `any`/`all Selector as name { expression }` iterates a list or a
map. Selectors name fields (`Service.Port`), map keys (`Service.Meta.version`,
`Service.Meta["version"]`) and list indexes (`Checks.0.Status`). Values are quoted ("..." with
escapes, `raw`), numbers, or bare words (`Status == passing`), coerced to the field's type.

As go-bexpr does, a missing map key is not an error — `==`, `in`, `matches` and `is not empty`
are false for it and their negations true — but a field the row's type does not have is, and
so is a value that cannot be coerced to its field's type (`Port == web`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opsgit.agent.store import StoreError
from opsgit.consul.gobool import GO_BOOLS

# The fields of Consul's answer types that are maps (string keys) rather than structs: a missing
# key under them is "not present", a missing field of a struct is an error.
MAP_FIELDS = frozenset({"Meta", "NodeMeta", "ServiceMeta", "TaggedAddresses", "ServiceTaggedAddresses", "Header"})
KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "matches", "is", "empty", "any", "all", "as"})
TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<number>-?\d+(?:\.\d+)?(?![a-zA-Z_/]))
  | (?P<word>[a-zA-Z_][a-zA-Z0-9_/]*|\d+)
  | (?P<op>==|!=|[()\[\]{}.,])
""", re.VERBOSE)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class FilterError(StoreError):
    """`status` is what Consul answers: 400 for an expression that does not parse, 500 for one
    that fails on the data (its evaluation error comes back from the server's RPC)."""


def _q(text: Any) -> str:
    """A value quoted as Go's %q quotes it."""
    return json.dumps(str(text))


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    offset: int


@dataclass(frozen=True)
class Match:
    operator: str  # ==, !=, in, not in, is empty, is not empty, matches, not matches
    selector: tuple[str, ...]
    value: str | None


@dataclass(frozen=True)
class Collection:
    every: bool  # all (else any)
    selector: tuple[str, ...]
    index_name: str | None
    value_name: str | None
    single: str | None  # `as x`: the value of a list's element, the key of a map's entry
    inner: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Binary:
    conjunction: bool  # and (else or)
    left: Node
    right: Node


Node = Match | Collection | Not | Binary

# What a missing map key gives each operator (go-bexpr's NotPresentDisposition).
NOT_PRESENT = {"==": False, "!=": True, "in": False, "not in": True, "is empty": True, "is not empty": False,
               "matches": False, "not matches": True}


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            kind = body[index + 1]
            width = {"x": 2, "u": 4, "U": 8}.get(kind)
            digits = body[index + 2:index + 2 + width] if width else ""
            if width and len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                out.append(chr(min(int(digits, 16), 0x10FFFF)))
                index += 2 + width
                continue
            out.append(ESCAPES.get(kind, kind))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _tokens(text: str) -> list[Token]:
    found, offset = [], 0
    while offset < len(text):
        match = TOKEN.match(text, offset)
        if match is None:
            raise _syntax(text, offset, f"unexpected {_q(text[offset])}")
        kind = match.lastgroup or ""
        if kind != "space":
            found.append(Token(kind, match.group(), offset))
        offset = match.end()
    return found


def _syntax(text: str, offset: int, problem: str) -> FilterError:
    return FilterError(400, f"Failed to create boolean expression evaluator: 1:{offset + 1} ({offset}): {problem} "
                            f"in {_q(text)}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def is_word(self, word: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token.kind == "word" and token.text == word

    def is_op(self, op: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text == op

    def fail(self, expected: str) -> FilterError:
        token = self.peek()
        offset = token.offset if token else len(self.text)
        found = _q(token.text) if token else "the end"
        return _syntax(self.text, offset, f"expected {expected}, found {found}")

    def take_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.fail(_q(op))
        self.at += 1

    def take_word(self, word: str) -> None:
        if not self.is_word(word):
            raise self.fail(_q(word))
        self.at += 1

    def parse(self) -> Node:
        if not self.tokens:
            raise _syntax(self.text, 0, "expected an expression, found the end")
        node = self.disjunction()
        if self.peek() is not None:
            raise self.fail('"and", "or" or the end')
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.is_word("or"):
            self.at += 1
            node = Binary(False, node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.is_word("and"):
            self.at += 1
            node = Binary(True, node, self.negation())
        return node

    def negation(self) -> Node:
        # at the start of an expression `not` negates it; `not in`, `not contains` and
        # `not matches` come after a value or a selector and are the match's
        if self.is_word("not"):
            self.at += 1
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Node:
        if self.is_op("("):
            self.at += 1
            node = self.disjunction()
            self.take_op(")")
            return node
        after = self.peek(1)
        if (self.is_word("any") or self.is_word("all")) and after is not None and after.kind == "word" and \
                after.text not in KEYWORDS:
            return self.collection()
        return self.match()

    def collection(self) -> Collection:
        every = self.is_word("all")
        self.at += 1
        selector = self.selector()
        self.take_word("as")
        first = self.name()
        index_name = value_name = single = None
        if self.is_op(","):
            self.at += 1
            second = self.name()
            index_name = None if first == "_" else first
            value_name = None if second == "_" else second
        else:
            single = first
        self.take_op("{")
        inner = self.disjunction()
        self.take_op("}")
        return Collection(every, selector, index_name, value_name, single, inner)

    def name(self) -> str:
        token = self.peek()
        if token is None or token.kind != "word" or token.text in KEYWORDS:
            raise self.fail("a name")
        self.at += 1
        return token.text

    def selector(self) -> tuple[str, ...]:
        token = self.peek()
        if token is None or token.kind != "word" or token.text in KEYWORDS or not token.text[0].isalpha():
            raise self.fail("a selector")
        self.at += 1
        parts = [token.text]
        while True:
            if self.is_op("."):
                self.at += 1
                part = self.peek()
                if part is None or not (part.kind == "word" or (part.kind == "number" and part.text.isdigit())):
                    raise self.fail("a field name or an index")
                self.at += 1
                parts.append(part.text)
            elif self.is_op("["):
                self.at += 1
                key = self.peek()
                if key is None or key.kind != "string":
                    raise self.fail("a quoted key")
                self.at += 1
                parts.append(_unquote(key.text))
                self.take_op("]")
            else:
                return tuple(parts)

    def value(self) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("a value")
        if token.kind == "string":
            self.at += 1
            return _unquote(token.text)
        if token.kind == "number":
            self.at += 1
            return token.text
        if token.kind == "word" and token.text not in KEYWORDS:
            return ".".join(self.selector())
        raise self.fail("a value")

    def match(self) -> Match:
        start = self.at
        token = self.peek()
        if token is None:
            raise self.fail("a selector")
        # `Value in Selector` / `Value not in Selector`: look past the value for `in`
        if token.kind in ("string", "number") or token.kind == "word":
            saved = self.at
            try:
                value = self.value()
            except FilterError:
                value = None
            if value is not None and (self.is_word("in") or (self.is_word("not") and self.is_word("in", 1))):
                negated = self.is_word("not")
                self.at += 2 if negated else 1
                return Match("not in" if negated else "in", self.selector(), value)
            self.at = saved
        self.at = start
        selector = self.selector()
        if self.is_op("==") or self.is_op("!="):
            operator = "==" if self.is_op("==") else "!="
            self.at += 1
            return Match(operator, selector, self.value())
        if self.is_word("is"):
            self.at += 1
            negated = self.is_word("not")
            if negated:
                self.at += 1
            self.take_word("empty")
            return Match("is not empty" if negated else "is empty", selector, None)
        negated = self.is_word("not")
        if negated:
            self.at += 1
        if self.is_word("contains"):
            self.at += 1
            return Match("not in" if negated else "in", selector, self.value())
        if self.is_word("matches"):
            self.at += 1
            return Match("not matches" if negated else "matches", selector, self.value())
        raise self.fail('"==", "!=", "is", "contains", "matches" or "in"')


# -- evaluation ----------------------------------------------------------------------------------


def _path(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def _resolve(datum: Any, parts: tuple[str, ...], locals_: dict[str, tuple[Any, bool]]) -> tuple[bool, Any]:
    """(present, value) at the selector. A row is a struct; so is a dict under a struct field not
    in MAP_FIELDS, and a dict in a list."""
    current, is_map = datum, False
    if parts and parts[0] in locals_:
        current, is_map = locals_[parts[0]]
        parts_left = parts[1:]
    else:
        parts_left = parts
    for position, part in enumerate(parts_left):
        last = position == len(parts_left) - 1
        if isinstance(current, dict):
            if part not in current:
                if is_map and last:
                    return False, None
                kind = "key" if is_map else "struct field with name"
                raise FilterError(500, f"error finding value in datum: {_path(parts)}: couldn't find key: "
                                       f"{kind} {_q(part)}")
            is_map = not is_map and part in MAP_FIELDS and isinstance(current[part], dict)
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                raise FilterError(500, f"error finding value in datum: {_path(parts)}: invalid index {_q(part)} "
                                       f"for a list of {len(current)}")
            current, is_map = current[int(part)], False
        else:
            raise FilterError(500, f"error finding value in datum: {_path(parts)}: {type_name(current)} has no "
                                   f"field {_q(part)}")
    return True, current


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, dict):
        return "map"
    return "invalid"


def _coerce(raw: str, like: Any) -> Any:
    """The expression's value as the field's Go type (strconv's parsers)."""
    try:
        if isinstance(like, bool):
            if raw not in GO_BOOLS:
                raise ValueError(raw)
            return GO_BOOLS[raw]
        if isinstance(like, int):
            return int(raw, 0) if raw.lower().startswith(("0x", "0o", "0b")) else int(raw)
        if isinstance(like, float):
            return float(raw)
    except ValueError:
        raise FilterError(500, f"error getting match value in expression: {_q(raw)} is not a valid "
                               f"{type_name(like)}") from None
    return raw


def _equal(raw: str, value: Any) -> bool:
    if isinstance(value, dict | list) or value is None:
        raise FilterError(500, "unable to find suitable primitive comparison function for matching")
    return bool(_coerce(raw, value) == value)


def _contains(match: Match, value: Any) -> bool:
    assert match.value is not None
    if isinstance(value, dict):
        return match.value in value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                raise FilterError(500, 'unable to find suitable primitive comparison function for "in" comparison')
            try:
                if _coerce(match.value, item) == item:
                    return True
            except FilterError:
                continue  # a list of mixed types: an element the value cannot be is not it
        return False
    if isinstance(value, str):
        return match.value in value
    raise FilterError(500, f"Cannot perform in/contains operations on type {type_name(value)} for selector: "
                           f'"{".".join(match.selector)}"')


def _evaluate_match(match: Match, datum: Any, locals_: dict[str, tuple[Any, bool]]) -> bool:
    present, value = _resolve(datum, match.selector, locals_)
    if not present:
        return NOT_PRESENT[match.operator]
    operator = match.operator
    negated = operator in ("!=", "not in", "is not empty", "not matches")
    if operator in ("==", "!="):
        assert match.value is not None
        result = _equal(match.value, value)
    elif operator in ("in", "not in"):
        result = _contains(match, value)
    elif operator in ("is empty", "is not empty"):
        if not isinstance(value, dict | list | str):
            raise FilterError(500, f"Cannot perform is empty operations on type {type_name(value)}")
        result = len(value) == 0
    else:
        if not isinstance(value, str):
            raise FilterError(500, f"Value of type {type_name(value)} is not convertible to []byte")
        assert match.value is not None
        try:
            result = re.search(match.value, value) is not None
        except re.error as error:
            raise FilterError(500, f"Failed to compile regular expression {_q(match.value)}: {error}") from None
    return not result if negated else result


def _bindings(collection: Collection, value: Any) -> Iterator[dict[str, tuple[Any, bool]]]:
    """The names one iteration binds: for a map its key (a lone name) or key and value, for a
    list its element (a lone name) or index and element."""
    entries = value.items() if isinstance(value, dict) else enumerate(value)
    for index, item in entries:
        bound: dict[str, tuple[Any, bool]] = {}
        if collection.single:
            bound[collection.single] = (index if isinstance(value, dict) else item, False)
        if collection.index_name:
            bound[collection.index_name] = (index, False)
        if collection.value_name:
            bound[collection.value_name] = (item, False)
        yield bound


def _evaluate(node: Node, datum: Any, locals_: dict[str, tuple[Any, bool]]) -> bool:
    if isinstance(node, Match):
        return _evaluate_match(node, datum, locals_)
    if isinstance(node, Not):
        return not _evaluate(node.operand, datum, locals_)
    if isinstance(node, Binary):
        left = _evaluate(node.left, datum, locals_)
        if left != node.conjunction:  # false for and, true for or: the answer already
            return left
        return _evaluate(node.right, datum, locals_)
    present, value = _resolve(datum, node.selector, locals_)
    if not present:
        return node.every
    if not isinstance(value, dict | list):
        raise FilterError(500, f"{'.'.join(node.selector)} is not a list or a map")
    for bound in _bindings(node, value):
        result = _evaluate(node.inner, datum, {**locals_, **bound})
        if result != node.every:
            return result
    return node.every


@dataclass(frozen=True)
class Filter:
    expression: str
    tree: Node | None  # None: no expression, every row is kept

    @property
    def active(self) -> bool:
        return self.tree is not None

    def matches(self, row: Any) -> bool:
        return self.tree is None or _evaluate(self.tree, row, {})

    def rows(self, rows: list[Any]) -> list[Any]:
        return [row for row in rows if self.matches(row)] if self.active else rows

    def values(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """A map answer (agent services, agent checks) keeps the entries whose value matches."""
        return {key: value for key, value in mapping.items() if self.matches(value)} if self.active else mapping


def parse_filter(expression: str) -> Filter:
    """An empty expression is no filter, as in Consul."""
    return Filter(expression, _Parser(expression).parse() if expression else None)
