"""Module instances rendered once for both commits of one environment.

Affected detection renders a candidate environment at the merge base and at head, and most of
the two renders is the same work: every module instance whose module and inputs did not change
adds the same resources and returns the same outputs. The first render records what each
instance added to the graph; the second replays that record when the instance is the same one —
same module content, path, inputs and environment — and every module its subtree instantiated
has the same content on the second commit too. A memo lives for one environment's pair of
renders, so memory stays that of two graphs.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsgit.graph import Resource


@dataclass(frozen=True)
class InstanceRecord:
    """What one module instance (with everything below it) added to the graph being built."""

    resources: tuple[tuple[str, Resource], ...]
    blocks: tuple[tuple[str, Any], ...]
    module_resources: tuple[tuple[str, list[str]], ...]
    origins: tuple[tuple[str, Any], ...]
    reads: frozenset[str]
    # (module name, content fingerprint) of every module instantiated in the subtree
    modules: tuple[tuple[str, str], ...]
    outputs: Mapping[str, Any]


@dataclass
class InstanceMemo:
    """Records of one environment's module instances, and of its own instances' rendered inputs."""

    instances: dict[tuple[Any, ...], InstanceRecord] = field(default_factory=dict)
    # (inputs as written in env.yaml, what its Jinja sees) -> the inputs rendered
    values: dict[tuple[Any, Any], Any] = field(default_factory=dict)


def freeze(value: Any) -> Any:
    """A hashable value equal for two inputs only when they render identically: types are kept
    apart (1, 1.0 and true are three values) and mapping order counts (Jinja iterates in it)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is dict:
        return ("map", tuple((freeze(k), freeze(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return ("list", tuple(freeze(v) for v in value))
    if kind in (int, float, bool, type(None), datetime.date, datetime.datetime):
        return (kind.__name__, value)
    return object()  # something unusual: never equal to anything, so never replayed
