"""The one walker over nested values: every scalar is reached, in order, and the shape is kept."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from opsgit import walk

SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.text(max_size=3), inner, max_size=4), max_leaves=30)


@given(VALUES)
def test_the_identity_transform_keeps_the_value(value: Any) -> None:
    assert walk.transform(value, lambda leaf: leaf) == value


@given(VALUES)
def test_leaves_are_every_scalar_in_order(value: Any) -> None:
    seen: list[Any] = []
    walk.transform(value, lambda leaf: seen.append(leaf) or leaf)
    assert list(walk.leaves(value)) == seen


def test_keys_and_leaves_are_changed_and_tuples_become_lists() -> None:
    value = {"a": ("x", {"b": ["y", 1]}), 2: None}
    changed = walk.transform(value, lambda leaf: leaf.upper() if isinstance(leaf, str) else leaf,
                             key=lambda key: f"k{key}")
    assert changed == {"ka": ["X", {"kb": ["Y", 1]}], "k2": None}
    assert list(walk.leaves({"s": {1, 2}, "t": (3,)})) in ([1, 2, 3], [2, 1, 3])
