"""Resolving `${...}` references against known values, with unknowns that travel.

A reference to a resource that is not created yet, or to an attribute only the provider knows
(an id, an address), is UNKNOWN; anything built from an unknown is unknown too. Plans show
UNKNOWN as `(known after apply)`; apply resolves again once the dependencies exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opsgit import walk
from opsgit.graph import refs


class Unknown:
    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN = Unknown()

# address -> attributes (UNKNOWN where not known); None if no such resource instance
Lookup = Callable[[str], Mapping[str, Any] | Unknown | None]


class ResolveError(Exception):
    pass


def resolve(value: Any, lookup: Lookup, instances: Callable[[str], list[str]]) -> Any:
    """`value` with every reference replaced by what `lookup` knows."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        single = refs.whole(value)
        if single is not None:
            return _reference(single, lookup, instances)
        unknown = False

        def one(expression: str) -> str:
            nonlocal unknown
            found = _reference(expression, lookup, instances)
            if found is UNKNOWN or contains_unknown(found):
                unknown = True
                return ""
            if isinstance(found, bool):
                return str(found).lower()
            if isinstance(found, (dict, list)):
                raise ResolveError(f"${{{expression}}} is a {type(found).__name__}; it cannot be part of a string")
            return "" if found is None else str(found)

        text = refs.substitute(value, one)
        return UNKNOWN if unknown else text.replace("$${", "${")
    if isinstance(value, dict):
        return {key: resolve(item, lookup, instances) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, lookup, instances) for item in value]
    return value


def _reference(expression: str, lookup: Lookup, instances: Callable[[str], list[str]]) -> Any:
    ref = refs.parse_resource(expression)
    if ref.splat:
        return [_attribute(lookup(address), ref.attributes, expression) for address in instances(ref.block)]
    return _attribute(lookup(ref.address), ref.attributes, expression)


def _attribute(attributes: Mapping[str, Any] | Unknown | None, path: tuple[Any, ...], expression: str) -> Any:
    if attributes is None:
        raise ResolveError(f"${{{expression}}} refers to a resource that does not exist")
    value: Any = attributes
    for segment in path:
        if value is UNKNOWN:
            return UNKNOWN
        try:
            value = value[segment]
        except (KeyError, IndexError, TypeError):
            if isinstance(attributes, Mapping) and segment not in attributes and path[0] == segment:
                return UNKNOWN  # an attribute the provider has not reported yet
            raise ResolveError(f"${{{expression}}}: no attribute {segment!r}") from None
    return value


def contains_unknown(value: Any) -> bool:
    return any(leaf is UNKNOWN for leaf in walk.leaves(value))


def unknown_paths(value: Any) -> Any:
    """Terraform's `after_unknown`: the same shape, True where unknown."""
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        found = {k: unknown_paths(v) for k, v in value.items()}
        return {k: v for k, v in found.items() if v not in (False, {}, [])}
    if isinstance(value, list):
        items = [unknown_paths(v) for v in value]
        return items if any(items) else []
    return False


def replace_unknown(value: Any, replacement: Any) -> Any:
    """`value` with every UNKNOWN inside it replaced by `replacement`."""
    return walk.transform(value, lambda leaf: replacement if leaf is UNKNOWN else leaf)


def known(value: Any) -> Any:
    """The JSON-able form: UNKNOWN becomes null."""
    return replace_unknown(value, None)
