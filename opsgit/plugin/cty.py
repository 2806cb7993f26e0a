"""cty, the type system of Terraform's providers: types from their JSON form, and values to and
from msgpack as the schema types them (zclconf/go-cty msgpack; the protocol's object wire format).

Types are plain values: "string", "number", "bool", "dynamic", or tuples ("list", T), ("set", T),
("map", T), ("object", {name: T}), ("tuple", (T, ...)). Values are Python's: None for null,
UNKNOWN (the engine's) for a value known only after apply, str, int, float or Decimal, bool,
lists for lists, sets and tuples, dicts for maps and objects.

Encoding converts as Terraform converts configuration to the schema's type (a number where a
string is wanted becomes its text, "true" where a bool is wanted becomes true), so a value
written in a module body arrives as the provider expects it; an impossible conversion is a
`CtyError` naming the attribute path.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from opsgit.engine.resolve import UNKNOWN, Unknown

Type = Any  # str | tuple: see the module's docstring
INT64 = range(-(2 ** 63), 2 ** 63)


class CtyError(ValueError):
    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path).lstrip(".")
        return f"{where}: {self.args[0]}" if where else str(self.args[0])


def parse_type(raw: Any) -> Type:
    """A type from its JSON form (`"string"`, `["list", "string"]`, `["object", {...}]`...)."""
    if isinstance(raw, bytes):
        raw = json.loads(raw)
    if isinstance(raw, str):
        if raw not in ("string", "number", "bool", "dynamic"):
            raise CtyError(f"unknown type {raw!r}")
        return raw
    kind = raw[0]
    if kind in ("list", "set", "map"):
        return (kind, parse_type(raw[1]))
    if kind == "object":
        return ("object", {name: parse_type(t) for name, t in raw[1].items()})
    if kind == "tuple":
        return ("tuple", tuple(parse_type(t) for t in raw[1]))
    raise CtyError(f"unknown type {raw!r}")


def type_json(kind: Type) -> Any:
    if isinstance(kind, str):
        return kind
    if kind[0] == "object":
        return ["object", {name: type_json(t) for name, t in kind[1].items()}]
    if kind[0] == "tuple":
        return ["tuple", [type_json(t) for t in kind[1]]]
    return [kind[0], type_json(kind[1])]


def type_of(value: Any) -> Type:
    """The type a value of a `dynamic` attribute has (JSON's shapes: tuples and objects)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str) or value is None:
        return "string"
    if isinstance(value, list | tuple):
        return ("tuple", tuple(type_of(v) for v in value))
    if isinstance(value, dict):
        return ("object", {k: type_of(v) for k, v in value.items()})
    raise CtyError(f"{type(value).__name__} has no cty type")


# -- to the wire ---------------------------------------------------------------------------------

def to_msgpack(value: Any, kind: Type) -> bytes:
    import msgpack

    return bytes(msgpack.packb(encode(value, kind), use_bin_type=True))


def encode(value: Any, kind: Type, path: tuple[str | int, ...] = ()) -> Any:
    """`value` as msgpack-ready data of type `kind`."""
    import msgpack

    if value is None:
        return None
    if isinstance(value, Unknown):
        return msgpack.ExtType(0, b"\x00")
    if kind == "dynamic":
        actual = type_of(value)
        return [json.dumps(type_json(actual)).encode(), encode(value, actual, path)]
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return _number_text(value)
        if isinstance(value, str):
            return value
        raise CtyError(f"a string is required, not {_shape(value)}", path)
    if kind == "number":
        number = _number(value, path)
        if isinstance(number, int):
            return number if number in INT64 else str(number)
        if isinstance(number, float):
            return int(number) if number.is_integer() and int(number) in INT64 else number
        return str(number)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise CtyError(f"a bool is required, not {_shape(value)}", path)
    container = kind[0]
    if container in ("list", "set"):
        if not isinstance(value, list | tuple):
            raise CtyError(f"a {container} is required, not {_shape(value)}", path)
        return [encode(v, kind[1], (*path, i)) for i, v in enumerate(value)]
    if container == "map":
        if not isinstance(value, dict):
            raise CtyError(f"a map is required, not {_shape(value)}", path)
        return {str(k): encode(v, kind[1], (*path, str(k))) for k, v in value.items()}
    if container == "object":
        if not isinstance(value, dict):
            raise CtyError(f"an object is required, not {_shape(value)}", path)
        attributes: dict[str, Type] = kind[1]
        extra = [k for k in value if k not in attributes]
        if extra:
            raise CtyError(f"unsupported attribute {extra[0]!r}", path)
        return {name: encode(value.get(name), t, (*path, name)) for name, t in attributes.items()}
    if container == "tuple":
        if not isinstance(value, list | tuple) or len(value) != len(kind[1]):
            raise CtyError(f"a tuple of {len(kind[1])} is required, not {_shape(value)}", path)
        return [encode(v, t, (*path, i)) for i, (v, t) in enumerate(zip(value, kind[1], strict=True))]
    raise CtyError(f"unknown type {kind!r}", path)


def _number(value: Any, path: tuple[str | int, ...]) -> int | float | Decimal:
    if isinstance(value, bool):
        raise CtyError("a number is required, not a bool", path)
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise CtyError(f"a number is required, not {value!r}", path) from None
        return int(parsed) if parsed == parsed.to_integral_value() else parsed
    raise CtyError(f"a number is required, not {_shape(value)}", path)


def _number_text(value: int | float | Decimal) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value) if isinstance(value, str) else type(value).__name__


# -- from the wire -------------------------------------------------------------------------------

def from_msgpack(data: bytes, kind: Type) -> Any:
    import msgpack

    if not data:
        return None
    return decode(msgpack.unpackb(data, raw=False, ext_hook=lambda code, payload: UNKNOWN, strict_map_key=False),
                  kind)


def decode(raw: Any, kind: Type) -> Any:
    if raw is None or isinstance(raw, Unknown):
        return raw
    if kind == "dynamic":
        if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], bytes):
            return decode(raw[1], parse_type(raw[0]))
        return raw
    if kind == "number":
        if isinstance(raw, str):
            number = Decimal(raw)
            return int(number) if number == number.to_integral_value() else number
        return raw
    if isinstance(kind, str):
        return raw
    container = kind[0]
    if container in ("list", "set"):
        return [decode(v, kind[1]) for v in raw]
    if container == "map":
        return {k: decode(v, kind[1]) for k, v in raw.items()}
    if container == "object":
        return {name: decode(raw.get(name), t) for name, t in kind[1].items()}
    if container == "tuple":
        return [decode(v, t) for v, t in zip(raw, kind[1], strict=False)]
    return raw


# -- JSON, as state files and RawState hold values ------------------------------------------------

def to_json_value(value: Any, kind: Type) -> Any:
    """cty's JSON form: dynamic values as {"value": V, "type": T}; no unknowns (state is known)."""
    if value is None:
        return None
    if kind == "dynamic":
        actual = type_of(value)
        return {"value": to_json_value(value, actual), "type": type_json(actual)}
    if isinstance(kind, str):
        return float(value) if isinstance(value, Decimal) else value
    container = kind[0]
    if container in ("list", "set"):
        return [to_json_value(v, kind[1]) for v in value]
    if container == "map":
        return {k: to_json_value(v, kind[1]) for k, v in value.items()}
    if container == "object":
        return {name: to_json_value(value.get(name), t) for name, t in kind[1].items()}
    return [to_json_value(v, t) for v, t in zip(value, kind[1], strict=False)]
