"""A plan in Terraform's JSON output format (`terraform show -json`, format_version 1.2), so the
tools that read Terraform plans read opsgit's: checkov, OPA/conftest, tf-summarize, Sentinel-like
rules.

The shapes follow Terraform's own marshalling (internal/command/jsonplan and jsonstate):
- `planned_values` and `prior_state.values`: modules nested as `child_modules`, each resource with
  its values; attributes unknown until apply are left out of objects (null in lists).
- `resource_changes` list every resource instance, `["no-op"]` ones included; `after_unknown`,
  `before_sensitive` and `after_sensitive` mirror the values: `true` where unknown or sensitive,
  known leaves left out of objects, kept as `false` in lists, `false` for a whole null value.
- sensitive values themselves are masked as "(sensitive value)": opsgit never writes a secret
  (Terraform writes them in clear here).
opsgit's own fields (environment, commits, input hash, lineage and serial, summary) are under
`"opsgit"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opsgit.engine.resolve import UNKNOWN
from opsgit.graph import refs

if TYPE_CHECKING:
    from opsgit.engine.plan import Plan, ResourceChange

FORMAT_VERSION = "1.2"
STATE_FORMAT_VERSION = "1.0"
MASK = "(sensitive value)"
DEFAULT_REGISTRY = "registry.terraform.io/hashicorp"
_ADDRESS = re.compile(r'^(?P<type>[^.\[]+)\.(?P<name>[^.\[]+)(?:\[(?P<index>"[^"]*"|\d+)\])?$')


def provider_name(provider: str, settings: Mapping[str, Mapping[str, Any]]) -> str:
    """A provider's full address: its `source` for a plugin, Terraform's own provider of the
    same name for opsgit's native ones (aws, consul, local, null, time)."""
    source = (settings.get(provider) or {}).get("source")
    if source:
        from opsgit.plugin.discovery import parse_source

        return str(parse_source(str(source)))
    return f"{DEFAULT_REGISTRY}/{provider}"


def split_address(address: str) -> tuple[str, str, str, str, int | str | None]:
    """`module.web[0].aws_instance.node["a"]` -> ("module.web[0]", "managed", "aws_instance",
    "node", "a")."""
    parts = address.split(".")
    modules: list[str] = []
    while len(parts) > 2 and parts[0] == "module":
        modules.append(f"module.{parts[1]}")
        parts = parts[2:]
    mode = "managed"
    if parts[0] == "data" and len(parts) > 2:
        mode, parts = "data", parts[1:]
    match = _ADDRESS.match(".".join(parts))
    if match is None:
        return ".".join(modules), mode, parts[0], ".".join(parts[1:]), None
    raw = match["index"]
    index: int | str | None = None if raw is None else raw.strip('"') if raw.startswith('"') else int(raw)
    return ".".join(modules), mode, match["type"], match["name"], index


# -- values -------------------------------------------------------------------------------------

def omit_unknowns(value: Any) -> Any:
    """Known values only: unknown attributes left out of objects, null in lists."""
    if isinstance(value, dict):
        return {k: omit_unknowns(v) for k, v in value.items() if v is not UNKNOWN}
    if isinstance(value, list):
        return [None if v is UNKNOWN else omit_unknowns(v) for v in value]
    return value


def unknown_as_bool(value: Any) -> Any:
    """Terraform's after_unknown for one value."""
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        found = {k: unknown_as_bool(v) for k, v in value.items()}
        return {k: v for k, v in found.items() if v is not False}
    if isinstance(value, list):
        return [unknown_as_bool(v) for v in value]
    return False


def sensitive_as_bool(value: Any, sensitive: Iterable[str] = (), shapes: Mapping[str, str] | None = None) -> Any:
    """Terraform's before_sensitive / after_sensitive for one resource's values: the attributes
    named in `sensitive` are true; an unknown collection (its shape in `shapes`) is an empty one."""
    if value is None:
        return False
    marked = set(sensitive)
    shapes = shapes or {}
    if isinstance(value, dict):
        value = {k: ([] if shapes.get(k) == "list" else {}) if v is UNKNOWN and k in shapes else v
                 for k, v in value.items() if v is not UNKNOWN or k in shapes}

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            found = {k: walk(v) for k, v in item.items()}
            return {k: v for k, v in found.items() if v is not False}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return False

    if not isinstance(value, dict):
        return walk(value)
    result = walk(value)
    for name in marked:
        if name in value:
            result[name] = True
    return result


def _masked(value: Any, sensitive: Iterable[str]) -> Any:
    names = set(sensitive)
    if not isinstance(value, dict) or not names:
        return value
    return {k: (MASK if k in names and v is not None else v) for k, v in value.items()}


# -- the document --------------------------------------------------------------------------------

def render(plan: Plan) -> dict[str, Any]:
    from opsgit import __version__

    providers = plan.graph.providers if plan.graph is not None else {}
    changes = list(plan.resource_changes)
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "terraform_version": __version__,
        "opsgit_version": __version__,
        "variables": {name: {"value": value} for name, value in sorted(plan.variables.items())},
        "planned_values": _planned_values(plan, changes, providers),
        "resource_drift": [_change(c, providers) for c in plan.resource_drift],
        "resource_changes": [_change(c, providers) for c in changes],
        "output_changes": _output_changes(plan),
        "prior_state": _prior_state(plan, providers),
        "configuration": _configuration(plan, providers),
        "relevant_attributes": _relevant_attributes(plan),
        "timestamp": plan.timestamp,
        "applyable": plan.has_changes,
        "complete": not plan.targets,
        "errored": False,
        "opsgit": {
            "env": plan.env, "mode": plan.mode, "base_commit": plan.base_commit, "head_commit": plan.head_commit,
            "input_hash": plan.input_hash, "lineage": plan.lineage, "serial": plan.serial,
            "summary": dict(zip(("add", "change", "destroy"), plan.summary, strict=True)),
            "targets": list(plan.targets),
        },
    }
    if plan.policy is not None:
        document["opsgit"]["policy"] = plan.policy
    return document


def _change(change: ResourceChange, providers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    module, mode, type_name, name, index = split_address(change.address)
    data: dict[str, Any] = {"address": change.address}
    if module:
        data["module_address"] = module
    data.update({"mode": mode, "type": type_name, "name": name})
    if index is not None:
        data["index"] = index
    data["provider_name"] = provider_name(change.provider, providers)
    after = change.after
    body: dict[str, Any] = {
        "actions": list(change.actions),
        "before": _masked(change.before, change.sensitive),
        "after": _masked(omit_unknowns(after), change.sensitive),
        "after_unknown": unknown_as_bool(after) if after is not None else {},
        "before_sensitive": sensitive_as_bool(change.before, change.sensitive),
        "after_sensitive": sensitive_as_bool(after, change.sensitive, change.unknown_shapes),
    }
    if change.replace_paths:
        body["replace_paths"] = [p.split(".") for p in change.replace_paths]
    data["change"] = body
    if change.action_reason:
        data["action_reason"] = change.action_reason
    return data


def _module_tree(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Resources (each with a private "_module") as `root_module` with nested `child_modules`."""
    root: dict[str, Any] = {"resources": [], "child_modules": {}}
    for resource in resources:
        module = resource.pop("_module")
        node = root
        path = ""
        for step in _module_steps(module):
            path = f"{path}.{step}" if path else step
            node = node["child_modules"].setdefault(path, {"resources": [], "child_modules": {}, "address": path})
        node["resources"].append(resource)

    def finish(node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "address" in node:
            out["address"] = node["address"]
        out["resources"] = sorted(node["resources"], key=lambda r: str(r["address"]))
        if node["child_modules"]:
            out["child_modules"] = [finish(child) for _, child in sorted(node["child_modules"].items())]
        return out

    return finish(root)


def _module_steps(module: str) -> list[str]:
    """"module.a.module.b[0]" -> ["module.a", "module.b[0]"]."""
    if not module:
        return []
    parts = module.split(".")
    return [f"{parts[i]}.{parts[i + 1]}" for i in range(0, len(parts) - 1, 2)]


def _value_resource(address: str, type_name: str, provider: str, values: Any, sensitive: Iterable[str],
                    schema_version: int, providers: Mapping[str, Mapping[str, Any]],
                    depends_on: Iterable[str] = ()) -> dict[str, Any]:
    module, mode, _, name, index = split_address(address)
    known = omit_unknowns(values)
    item: dict[str, Any] = {"_module": module, "address": address, "mode": mode, "type": type_name, "name": name}
    if index is not None:
        item["index"] = index
    item.update({"provider_name": provider_name(provider, providers), "schema_version": schema_version,
                 "values": _masked(known, sensitive), "sensitive_values": sensitive_as_bool(known, sensitive) or {}})
    dependencies = sorted(depends_on)
    if dependencies:
        item["depends_on"] = dependencies
    return item


def _planned_values(plan: Plan, changes: list[ResourceChange],
                    providers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    resources = [_value_resource(c.address, c.type, c.provider, c.after, c.sensitive, c.schema_version, providers)
                 for c in changes if c.after is not None and c.actions != ("delete",)]
    outputs = {}
    for name, change in sorted(plan.output_changes.items()):
        if change["actions"] == ["delete"]:
            continue
        entry: dict[str, Any] = {"sensitive": bool(change.get("sensitive"))}
        if not change.get("after_unknown"):
            entry["value"] = MASK if entry["sensitive"] else change.get("after")
        outputs[name] = entry
    return {"outputs": outputs, "root_module": _module_tree(resources)}


def _prior_state(plan: Plan, providers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    from opsgit import __version__

    resources = [_value_resource(address, str(item["type"]), str(item["provider"]), item["values"],
                                 item.get("sensitive") or (), int(item.get("schema_version") or 0), providers,
                                 item.get("dependencies") or ())
                 for address, item in sorted(plan.prior.items())]
    outputs = {name: {"sensitive": bool(entry.get("sensitive")),
                      "value": MASK if entry.get("sensitive") else entry.get("value")}
               for name, entry in sorted(plan.prior_outputs.items())}
    return {"format_version": STATE_FORMAT_VERSION, "terraform_version": __version__,
            "values": {"outputs": outputs, "root_module": _module_tree(resources)}}


def _output_changes(plan: Plan) -> dict[str, Any]:
    result = {}
    for name, change in sorted(plan.output_changes.items()):
        sensitive = bool(change.get("sensitive"))
        after = change.get("after_value", change.get("after"))
        unknown = change.get("after_unknown")
        result[name] = {
            "actions": list(change["actions"]),
            "before": MASK if sensitive and change.get("before") is not None else change.get("before"),
            "after": MASK if sensitive and after is not None else omit_unknowns(after),
            "after_unknown": unknown if not isinstance(unknown, bool) or unknown else False,
            "before_sensitive": sensitive, "after_sensitive": sensitive,
        }
    return result


def _expressions(attributes: Mapping[str, Any], module: str) -> dict[str, Any]:
    """Each attribute as Terraform's configuration representation writes it: a constant, or
    the references it is built from (module-relative where they are the module's own)."""
    result: dict[str, Any] = {}
    for key, value in attributes.items():
        found = sorted(set(_references(value)))
        if found:
            relative = []
            for ref in found:
                text = ref[len(module) + 1:] if module and ref.startswith(module + ".") else ref
                relative.append(text)
                owner = text.rsplit(".", 1)[0]
                if owner != text and "." in owner:
                    relative.append(owner)
            result[key] = {"references": list(dict.fromkeys(relative))}
        else:
            result[key] = {"constant_value": value}
    return result


def _configuration(plan: Plan, providers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    from opsgit.secrets import is_secret_name

    provider_config = {}
    for name, settings in sorted(providers.items()):
        own = {k: v for k, v in settings.items() if k not in ("source", "version", "native", "auto_mtls")}
        entry: dict[str, Any] = {"name": name, "full_name": provider_name(name, providers)}
        if settings.get("version"):
            entry["version_constraint"] = str(settings["version"])
        entry["expressions"] = {k: {"constant_value": MASK if is_secret_name(k) else v} for k, v in sorted(own.items())}
        provider_config[name] = entry
    root: dict[str, Any] = {"resources": [], "module_calls": {}}
    if plan.graph is not None:
        blocks: dict[str, dict[str, Any]] = {}
        for resource in plan.graph.resources.values():
            module, mode, type_name, name, index = split_address(resource.address)
            block = f"{'data.' if mode == 'data' else ''}{type_name}.{name}"
            key = f"{module}|{block}"
            if key not in blocks:
                item: dict[str, Any] = {"address": block, "mode": mode, "type": type_name, "name": name,
                                        "provider_config_key": resource.provider,
                                        "expressions": _expressions(resource.attributes, module),
                                        "schema_version": 0}
                if resource.dependencies:
                    item["depends_on"] = sorted(resource.dependencies)
                blocks[key] = item
                node = root
                for step in _module_steps(module):
                    call = step.split(".", 1)[1].split("[", 1)[0]
                    source = resource.source.split(":", 1)[0]
                    node = node["module_calls"].setdefault(call, {
                        "source": _module_source(source),
                        "module": {"resources": [], "module_calls": {}}})["module"]
                node["resources"].append(item)
            if isinstance(index, int):
                count = blocks[key].setdefault("count_expression", {"constant_value": 0})
                count["constant_value"] = max(count["constant_value"], index + 1)
            elif isinstance(index, str):
                keys = blocks[key].setdefault("for_each_expression", {"constant_value": {}})
                keys["constant_value"][index] = index
        root["outputs"] = {name: ({"sensitive": True} if name in plan.graph.sensitive_outputs else {})
                           | _expressions({"expression": expression}, "")["expression"]
                           for name, expression in sorted(plan.graph.outputs.items())}
    return {"provider_config": provider_config, "root_module": _prune(root)}


def _module_source(path: str) -> str:
    """modules/vpc/module.yaml -> ./modules/vpc (as far as a graph knows where a module is)."""
    parts = path.split("/")
    if len(parts) >= 2 and parts[0] == "modules":
        return "./" + "/".join(parts[:2])
    return path or "."


def _prune(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if v not in ({}, [])}
    calls = node.get("module_calls") or {}
    if calls:
        out["module_calls"] = {name: {**call, "module": _prune(call["module"])} for name, call in sorted(calls.items())}
    return out


def _references(value: Any) -> list[str]:
    found: list[str] = []
    refs.collect(value, found)
    return found


def _relevant_attributes(plan: Plan) -> list[dict[str, Any]]:
    """The attributes of objects that changed outside opsgit which the configuration uses."""
    drifted = {c.address for c in plan.resource_drift}
    if not drifted or plan.graph is None:
        return []
    found: set[tuple[str, str]] = set()
    values = [r.attributes for r in plan.graph.resources.values()] + list(plan.graph.outputs.values())
    for value in values:
        for ref in _references(value):
            for address in drifted:
                if ref.startswith(address + "."):
                    found.add((address, ref[len(address) + 1:]))
    return [{"resource": address, "attribute": attribute.split(".")} for address, attribute in sorted(found)]
