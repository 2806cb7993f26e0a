"""Module inputs: bound to the module's declared variables with their types and defaults, and what
they mention of sibling modules and sensitive values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsgit.graph import refs
from opsgit.repo.schema import suggest
from opsgit.repo.values import Module, ModuleInstance, Origin, Variable
from opsgit.secrets import register as register_secret


def bind_variables(module: Module, inputs: dict[str, Any], origin: Origin) -> dict[str, Any]:
    for name in inputs:
        if name not in module.variables:
            raise origin.child("inputs", name).error(
                f"module {module.name!r} has no variable {name!r}",
                suggest(name, module.variables) or f"declare it under variables: in {module.file}")
    bound: dict[str, Any] = {}
    for name, variable in module.variables.items():
        if name in inputs:
            bound[name] = check_type(variable, inputs[name], origin.child("inputs", name), module)
            if variable.sensitive and "${" not in str(bound[name]):
                register_secret(bound[name])
        elif variable.required:
            raise origin.error(f"module {module.name!r} needs input {name!r}",
                               f"add inputs: {{{name}: ...}}")
        else:
            bound[name] = variable.default
    return bound


def check_type(variable: Variable, value: Any, origin: Origin, module: Module) -> Any:
    kinds = TYPE_CHECKS.get(variable.type)
    if kinds is None or (isinstance(value, str) and refs.whole(value) is not None):
        return value  # `any`, or known only at apply time
    if variable.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool) and variable.type != "bool":
        kinds = ()
    if not isinstance(value, kinds):
        shown = f"{value!r}" if len(repr(value)) < 40 else type(value).__name__
        raise origin.error(f"input {variable.name!r} of module {module.name!r} must be a {variable.type}, "
                           f"not {shown}", f"pass a {variable.type}, or change the variable's type in {module.file}")
    return value


def mentions_sensitive(value: Any, sensitive: frozenset[str]) -> bool:
    text = str(value)
    return any(f"var.{name}" in text for name in sensitive)


def sibling_mentions(inputs: Mapping[str, Any], siblings: Mapping[str, ModuleInstance], own: str) -> set[str]:
    found: list[str] = []
    refs.collect(dict(inputs), found)
    names = set()
    for expression in found:
        parts = expression.split(".")
        if len(parts) >= 2 and parts[0] == "module" and parts[1] in siblings and parts[1] != own:
            names.add(parts[1])
    return names


TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "bool": (bool,), "list": (list,), "map": (dict,),
}
