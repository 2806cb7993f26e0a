"""`opsgit state list|show|rm|mv|migrate` and `opsgit import ADDRESS ID`.

They open the environment without rendering it, so they work while a module is broken; the ones
that write take the environment's run lock (of its configured backend), so that an apply running
elsewhere cannot undo them when it finishes.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from opsgit.commands.apply import LOCK_TIMEOUT
from opsgit.commands.base import Arg, Command

if TYPE_CHECKING:
    from opsgit.engine.state import ResourceState, State
    from opsgit.graph import Graph, Resource
    from opsgit.workspace import Workspace

ENV = Arg("--env", "the environment", required=True, metavar="ENV")


def _resource(state: State, address: str) -> ResourceState:
    from opsgit.errors import UserError
    from opsgit.repo.schema import suggest

    found = state.resources.get(address)
    if found is None:
        raise UserError(f"no resource {address!r} in the state", hint=suggest(address, state.resources))
    return found


def state_list(env: str) -> int:
    from opsgit import output
    from opsgit.workspace import open_workspace

    state = open_workspace(env).backend.load()
    for address in sorted(state.resources):
        output.say(address)
    return 0


def state_show(env: str, address: str) -> int:
    from opsgit import output
    from opsgit.engine.plan_text import show
    from opsgit.graph import refs
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    state = workspace.backend.load()
    resource = _resource(state, address)
    # Rendering registers the modules' sensitive values, so they are masked here too.
    _graph_or_warn(workspace, "values marked sensitive in its modules may show")
    provider = workspace.provider(resource.provider)
    data = refs.is_data(address)
    kinds = (getattr(provider, "data_sources", None) or {}) if data else provider.resource_types
    sensitive = kinds[resource.type].schema.sensitive if resource.type in kinds else frozenset()
    register = getattr(kinds[resource.type], "register_sensitive", None) if resource.type in kinds else None
    if register is not None:
        register(resource.attributes)  # a plugin's nested sensitive values, masked by value
    output.say(f"# {address}:\n{'data' if data else 'resource'} \"{resource.type}\" "
               f"\"{address.rsplit('.', 1)[-1].split('[')[0]}\" {{")
    width = max((len(k) for k in resource.attributes), default=0)
    for key, value in sorted(resource.attributes.items()):
        output.say(f"    {key.ljust(width)} = {show(value, key in sensitive)}")
    output.say("}")
    return 0


def _rewrite(workspace: Workspace, change: dict[str, ResourceState | None], lock_timeout: float) -> None:
    """Apply `change` to the state under the run lock, checked against the state as it is once the
    lock is held, in one atomic write: a kill at any moment leaves the old state or the new one,
    never half a move."""
    from dataclasses import replace

    from opsgit.locks import hold

    with hold(workspace.lock, workspace.env, "state", lock_timeout) as held:
        state = workspace.backend.load()
        resources = dict(state.resources)
        for address, resource in change.items():
            if resource is None:
                resources.pop(address, None)
            else:
                resources[address] = resource
        held.check()
        # A serial past any journal line a crashed run left, so replay never applies one again.
        workspace.backend.compact(replace(state, serial=state.serial + len(change) + 1, resources=resources))


def state_rm(env: str, addresses: list[str], *, lock_timeout: float = 0.0) -> int:
    from opsgit import output
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    state = workspace.backend.load()
    for address in addresses:
        _resource(state, address)
    _rewrite(workspace, dict.fromkeys(addresses), lock_timeout)
    for address in addresses:
        output.say(f"Removed {address}")
    output.say(f"Successfully removed {output.plural(len(addresses), 'resource instance')}. They still exist; "
               "opsgit no longer manages them.")
    return 0


def state_mv(env: str, source: str, destination: str, *, lock_timeout: float = 0.0) -> int:
    from dataclasses import replace

    from opsgit import output
    from opsgit.errors import UserError
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    state = workspace.backend.load()
    moving = _resource(state, source)
    if destination in state.resources:
        raise UserError(f"{destination} already exists in the state", hint="remove it first with `state rm`")
    _rewrite(workspace, {source: None, destination: replace(moving, address=destination)}, lock_timeout)
    output.say(f"Move \"{source}\" to \"{destination}\"\nSuccessfully moved 1 object.")
    return 0


def state_migrate(env: str, addresses: list[str], *, lock_timeout: float = 0.0) -> int:
    """Move resources to the implementation the configuration now names for their type (a
    provider plugin's, or opsgit's native one after `native:` changed): each object is read again,
    by its id, through the new one, so state holds what that implementation writes."""
    from opsgit import output
    from opsgit.errors import UserError
    from opsgit.providers.base import PlanningType, ProviderError
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    state = workspace.backend.load()
    graph = _graph_or_warn(workspace, "re-reading by the state alone")
    change: dict[str, ResourceState | None] = {}
    for address in addresses:
        current = _resource(state, address)
        kind = workspace.provider(current.provider).resource_types.get(current.type)
        if kind is None:
            raise UserError(f"provider {current.provider!r} has no resource type {current.type!r}")
        by_plugin = isinstance(kind, PlanningType)
        if by_plugin == (current.schema_version is not None):
            output.say(f"{address}: already managed by {_implementation(by_plugin)}")
            continue
        config = graph.resources.get(address) if graph is not None else None
        try:
            moved = _read_as(kind, address, current.id, config, current)
        except ProviderError as error:
            raise UserError(f"cannot re-read {address} through {_implementation(by_plugin)}: {error}",
                            hint="`opsgit state rm` it and `opsgit import` it by the id the provider "
                                 "documents") from None
        if moved is None:
            raise UserError(f"cannot re-read {address}: {_implementation(by_plugin)} finds no {current.type} "
                            f"with id {current.id!r}",
                            hint="`opsgit state rm` it and `opsgit import` it by the id the provider documents")
        change[address] = moved
        output.say(f"{address}: now managed by {_implementation(by_plugin)} [id={moved.id}]")
    if change:
        _rewrite(workspace, change, lock_timeout)
    output.say(f"Successfully migrated {output.plural(len(change), 'resource instance')}.")
    return 0


def _implementation(by_plugin: bool) -> str:
    return "the provider plugin" if by_plugin else "opsgit's native code"


def _read_as(kind: object, address: str, resource_id: str, config: Resource | None,
             current: ResourceState | None = None) -> ResourceState | None:
    """The object `resource_id` as `kind` reads it, ready for the state (a plugin type imports it
    with ImportResourceState and reads it; a native type reads it with the configuration's
    literal values as hints, such as its region)."""
    from opsgit.engine.state import ResourceState
    from opsgit.providers.base import PlanningType

    if config is not None:
        provider, type_name, dependencies = config.provider, config.type, config.dependencies
    else:
        assert current is not None
        provider, type_name, dependencies = current.provider, current.type, current.dependencies
    if isinstance(kind, PlanningType):
        stored = kind.import_object(address, resource_id)
        return ResourceState(address, type_name, provider, stored.id, stored.attributes, dependencies,
                             stored.private, stored.schema_version)
    # What the object had (migrating: the attributes this type also has), then the configuration's
    # literal values: a native read shapes its answer by them (which region, whether in a VPC).
    fields = kind.schema.fields  # type: ignore[attr-defined]
    hints = {k: v for k, v in (current.attributes if current else {}).items() if k in fields and v is not None}
    hints.update({k: v for k, v in (config.attributes if config else {}).items()
                  if isinstance(v, str) and "${" not in v})
    attributes = kind.read(resource_id, hints)  # type: ignore[attr-defined]
    if attributes is None:
        return None
    return ResourceState(address, type_name, provider, resource_id, attributes, dependencies)


def import_resource(env: str, address: str, resource_id: str, *, lock_timeout: float = 0.0) -> int:
    from opsgit import output
    from opsgit.engine.state import ResourceState
    from opsgit.errors import UserError
    from opsgit.providers.base import ProviderError
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    config = _configured(workspace, address)
    state = workspace.backend.load()
    if address in state.resources:
        raise UserError(f"{address} is already managed", hint="`opsgit state rm` it first to import another object")
    provider, type_name = (config.provider, config.type) if config is not None else _from_address(address)
    kind = workspace.provider(provider).resource_types.get(type_name)
    if kind is None:
        raise UserError(f"provider {provider!r} has no resource type {type_name!r}", hint="check the address")
    placeholder = ResourceState(address, type_name, provider, resource_id, {})
    try:
        imported = _read_as(kind, address, resource_id, config, placeholder)
    except ProviderError as error:
        raise UserError(f"cannot import {address}: {error}") from None
    if imported is None:
        raise UserError(f"cannot import {address}: no {type_name} with id {resource_id!r}")
    _rewrite(workspace, {address: imported}, lock_timeout)
    output.say(f"{address}: Import prepared!\nImport successful! The resource is now managed by opsgit; "
               "run `opsgit plan` to see how it differs from the configuration.")
    return 0


def _graph_or_warn(workspace: Workspace, otherwise: str) -> Graph | None:
    """The environment's graph; None, with a warning that says what follows, when it does not
    render now (state commands must work while a module is broken)."""
    from opsgit import output
    from opsgit.errors import UserError

    try:
        return workspace.graph
    except UserError as error:
        output.warn(f"the configuration of {workspace.env} does not render ({error}); {otherwise}")
        return None


def _configured(workspace: Workspace, address: str) -> Resource | None:
    """The resource as configured; None when the environment does not render now (the address
    alone then says the type, as `terraform import` needs the configuration for)."""
    from opsgit.errors import UserError
    from opsgit.repo.schema import suggest

    graph = _graph_or_warn(workspace, f"importing {address} by its address alone")
    if graph is None:
        return None
    config = graph.resources.get(address)
    if config is None:
        raise UserError(f"{address} is not in the configuration of {workspace.env}",
                        hint=suggest(address, graph.resources) or "declare it in a module first")
    return config


def _from_address(address: str) -> tuple[str, str]:
    """`module.web.aws_instance.node[0]` -> ("aws", "aws_instance")."""
    from opsgit.errors import UserError

    parts = address.split(".")
    while len(parts) > 2 and parts[0] == "module":
        parts = parts[2:]
    if len(parts) != 2 or "_" not in parts[0]:
        raise UserError(f"{address!r} is not a resource address", hint="write TYPE.NAME, e.g. aws_instance.web")
    return parts[0].split("_", 1)[0], parts[0]


COMMANDS = (
    Command("state", "inspect and edit the state: list, show, rm, mv, migrate", subcommands=(
        Command("list", "list managed resources", lambda a: state_list(a.env), args=(ENV,)),
        Command("show", "show one resource's attributes", lambda a: state_show(a.env, a.address), args=(
            ENV, Arg("address", "the resource's address, e.g. module.network.aws_security_group.allow_all"))),
        Command("rm", "forget resources (they keep existing)",
                lambda a: state_rm(a.env, a.addresses, lock_timeout=a.lock_timeout), args=(
                    ENV, Arg("addresses", "the resources to forget", nargs="+", metavar="ADDRESS"), LOCK_TIMEOUT)),
        Command("mv", "rename a resource in the state",
                lambda a: state_mv(a.env, a.source, a.destination, lock_timeout=a.lock_timeout), args=(
                    ENV, Arg("source", "the address it has now"), Arg("destination", "the address it gets"),
                    LOCK_TIMEOUT)),
        Command("migrate", "move resources between opsgit's native code and a provider plugin (re-read)",
                lambda a: state_migrate(a.env, a.addresses, lock_timeout=a.lock_timeout), args=(
                    ENV, Arg("addresses", "the resources whose type `native:` moved", nargs="+",
                             metavar="ADDRESS"), LOCK_TIMEOUT)),
    )),
    Command("import", "adopt an existing object into the state", lambda a: _import(a), args=(
        ENV, Arg("address", "the address to manage it as, e.g. aws_instance.web"),
        Arg("id", "the object's id in its provider (e.g. i-0abc...)"), LOCK_TIMEOUT)),
)


def _import(args: argparse.Namespace) -> int:
    return import_resource(args.env, args.address, args.id, lock_timeout=args.lock_timeout)
