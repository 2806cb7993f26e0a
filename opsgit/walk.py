"""One walker over the nested values opsgit handles everywhere — parsed YAML, graph attributes,
state, plan JSON: mappings, lists (and tuples) and scalars."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


def transform(value: Any, leaf: Callable[[Any], Any], *, key: Callable[[Any], Any] | None = None) -> Any:
    """`value` rebuilt (mappings as dicts, sequences as lists) with `leaf` applied to every scalar,
    and `key` to every mapping key when given."""
    if isinstance(value, Mapping):
        return {key(k) if key is not None else k: transform(v, leaf, key=key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [transform(item, leaf, key=key) for item in value]
    return leaf(value)


def leaves(value: Any) -> Iterator[Any]:
    """Every scalar inside `value`, depth first, in order."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from leaves(item)
    else:
        yield value
