"""`opsgit state list|show|rm|mv` and `opsgit import ADDRESS ID`."""

from __future__ import annotations

from dataclasses import replace

from opsgit import output
from opsgit.engine.plan_text import show
from opsgit.engine.runlock import local_run_lock
from opsgit.engine.state import ResourceState, State
from opsgit.engine.workspace import Workspace, open_workspace
from opsgit.errors import UserError
from opsgit.repo.schema import suggest


def _resource(state: State, address: str) -> ResourceState:
    found = state.resources.get(address)
    if found is None:
        raise UserError(f"no resource {address!r} in the state", hint=suggest(address, state.resources))
    return found


def state_list(env: str) -> int:
    state = open_workspace(env).backend.load()
    for address in sorted(state.resources):
        output.say(address)
    return 0


def state_show(env: str, address: str) -> int:
    workspace = open_workspace(env)
    state = workspace.backend.load()
    resource = _resource(state, address)
    sensitive = workspace.providers(state)[resource.provider].resource_types[resource.type].schema.sensitive
    output.say(f"# {address}:\nresource \"{resource.type}\" \"{address.rsplit('.', 1)[-1].split('[')[0]}\" {{")
    width = max((len(k) for k in resource.attributes), default=0)
    for key, value in sorted(resource.attributes.items()):
        output.say(f"    {key.ljust(width)} = {show(value, key in sensitive)}")
    output.say("}")
    return 0


def _rewrite(workspace: Workspace, change: dict[str, ResourceState | None]) -> State:
    with local_run_lock(workspace.state_directory, workspace.env, "state"):
        state = workspace.backend.load()
        serial = state.serial
        resources = dict(state.resources)
        for address, resource in change.items():
            serial += 1
            workspace.backend.record(state.lineage, serial, address, resource)
            if resource is None:
                resources.pop(address, None)
            else:
                resources[address] = resource
        final = replace(state, serial=serial + 1, resources=resources)
        workspace.backend.compact(final)
        return final


def state_rm(env: str, addresses: list[str]) -> int:
    workspace = open_workspace(env)
    state = workspace.backend.load()
    for address in addresses:
        _resource(state, address)
    _rewrite(workspace, dict.fromkeys(addresses))
    for address in addresses:
        output.say(f"Removed {address}")
    output.say(f"Successfully removed {len(addresses)} resource instance(s). They still exist; opsgit no longer "
               "manages them.")
    return 0


def state_mv(env: str, source: str, destination: str) -> int:
    workspace = open_workspace(env)
    state = workspace.backend.load()
    moving = _resource(state, source)
    if destination in state.resources:
        raise UserError(f"{destination} already exists in the state", hint="remove it first with `state rm`")
    _rewrite(workspace, {source: None, destination: replace(moving, address=destination)})
    output.say(f"Move \"{source}\" to \"{destination}\"\nSuccessfully moved 1 object(s).")
    return 0


def import_resource(env: str, address: str, resource_id: str) -> int:
    workspace = open_workspace(env)
    config = workspace.graph.resources.get(address)
    if config is None:
        raise UserError(f"{address} is not in the configuration of {env}",
                        hint=suggest(address, workspace.graph.resources) or "declare it in a module first")
    state = workspace.backend.load()
    if address in state.resources:
        raise UserError(f"{address} is already managed", hint="`opsgit state rm` it first to import another object")
    kind = workspace.providers(state)[config.provider].resource_types[config.type]
    attributes = kind.read(resource_id, {k: v for k, v in config.attributes.items()
                                         if isinstance(v, str) and "${" not in v})
    if attributes is None:
        raise UserError(f"cannot import {address}: no {config.type} with id {resource_id!r}")
    _rewrite(workspace, {address: ResourceState(address, config.type, config.provider, resource_id, attributes,
                                                config.dependencies)})
    output.say(f"{address}: Import prepared!\nImport successful! The resource is now managed by opsgit; "
               "run `opsgit plan` to see how it differs from the configuration.")
    return 0
