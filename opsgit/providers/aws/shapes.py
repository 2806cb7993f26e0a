"""Where opsgit's native aws types once shaped an attribute differently from the hashicorp/aws
provider, the old form and how it becomes the provider's.

Both directions of a repository's life go through here: a module that still writes the old form
is accepted for one release with a deprecation warning naming the new one (`reshape_config`,
applied when the environment's graph is rendered), and a state written with the old form is
migrated when it is read (`reshape_stored`), so the next apply writes the new one. Imports
nothing heavy: the workspace and the state loader call it for every native aws resource.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

REMOVED_IN = "opsgit 0.2"


@dataclass(frozen=True)
class Reshape:
    old: str
    new: str
    convert: Callable[[Any], Any]
    example: str  # the new form, as a module writes it


def _versioning(value: Any) -> Any:
    if isinstance(value, bool):
        return [{"enabled": value}]
    return value


def _same(value: Any) -> Any:
    return value


RESHAPES: Mapping[str, tuple[Reshape, ...]] = {
    # the provider's `versioning` is a block: versioning { enabled = true }
    "aws_s3_bucket": (Reshape("versioning", "versioning", _versioning, "versioning: [{enabled: true}]"),),
    # the provider's autoscaling group tags are `tag` blocks (its old `tags` list is gone in 5.x)
    "aws_autoscaling_group": (Reshape("tags", "tag", _same,
                                      "tag: [{key: Name, value: web, propagate_at_launch: true}]"),),
}


def _old_form(reshape: Reshape, attributes: Mapping[str, Any]) -> bool:
    if reshape.old not in attributes:
        return False
    if reshape.old != reshape.new:
        return True
    return bool(reshape.convert(attributes[reshape.old]) != attributes[reshape.old])


def reshape_config(type_name: str, attributes: Mapping[str, Any]) -> tuple[dict[str, Any], list[Reshape]]:
    """`attributes` in the provider's shapes, and the old forms found (for the warnings)."""
    found = [r for r in RESHAPES.get(type_name, ()) if _old_form(r, attributes)]
    result = dict(attributes)
    for reshape in found:
        value = result.pop(reshape.old)
        if reshape.new not in result:
            result[reshape.new] = reshape.convert(value)
    return result, found


def reshape_stored(type_name: str, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """Stored attributes in the provider's shapes (the same object when nothing is old)."""
    if not any(_old_form(r, attributes) for r in RESHAPES.get(type_name, ())):
        return attributes
    return reshape_config(type_name, attributes)[0]


def deprecation(type_name: str, reshape: Reshape) -> str:
    if reshape.old == reshape.new:
        return (f"{type_name}: this form of `{reshape.old}` is deprecated and accepted until {REMOVED_IN}; "
                f"write it as the hashicorp/aws provider does: {reshape.example}")
    return (f"{type_name}: `{reshape.old}` is deprecated and accepted until {REMOVED_IN}; write "
            f"`{reshape.new}` as the hashicorp/aws provider does: {reshape.example}")
