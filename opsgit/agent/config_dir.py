"""`--config-dir DIR`: service and check definitions in Consul's JSON, as opsgit's images ship
them in `/etc/consul.d/` (`{"service": {...}}`, `{"services": [...]}`, `{"check": {...}}`,
`{"checks": [...]}`), loaded at start and again on SIGHUP or `PUT /v1/agent/reload`: what the
files add is registered, what they change is updated, what they no longer hold is deregistered.
Definitions registered through the HTTP API are left alone. HCL files (`service { ... }` blocks,
as Consul's documentation writes them) are read with python-hcl2; a block becomes the JSON form's
object, and repeated `service`/`check` blocks become the lists they stand for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsgit import output
from opsgit.agent.shapes import canonical
from opsgit.agent.store import StoreError
from opsgit.errors import ConfigError

if TYPE_CHECKING:
    from opsgit.agent.api import ConsulApi
    from opsgit.agent.endpoints.agent import AgentEndpoints


def read_definitions(directories: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every service and check definition in the directories' `*.json` and `*.hcl` files, in file-name order;
    a file that is not such a definition is a ConfigError naming it and its line."""
    services: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for directory in directories:
        if not directory.is_dir():
            raise ConfigError(f"--config-dir {directory} is not a directory")
        for path in sorted(directory.iterdir()):
            if path.suffix == ".hcl":
                document: Any = _read_hcl(path)
            elif path.suffix == ".json":
                try:
                    document = json.loads(path.read_text())
                except ValueError as error:
                    line = getattr(error, "lineno", None)
                    raise ConfigError(f"invalid JSON: {error}", file=str(path), line=line) from None
            else:
                continue
            if not isinstance(document, dict):
                raise ConfigError("a config file must hold an object with service(s) or check(s)", file=str(path))
            found = canonical(document)
            services += [canonical(s) for s in _as_list(found.get("service")) + list(found.get("services") or [])]
            checks += [canonical(c) for c in _as_list(found.get("check")) + list(found.get("checks") or [])]
    return services, checks


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _read_hcl(path: Path) -> dict[str, Any]:
    import hcl2
    from hcl2.utils import SerializationOptions
    from lark.exceptions import LarkError

    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    try:
        document = hcl2.loads(path.read_text(), serialization_options=options)
    except LarkError as error:
        problem = str(error).splitlines()[0]
        raise ConfigError(f"invalid HCL: {problem}", file=str(path), line=getattr(error, "line", None)) from None
    # python-hcl2 gives every block as a list of objects: `service { }` blocks are the JSON
    # form's "services" list, `check { }` blocks its "checks"; a service's `check` blocks likewise.
    found = dict(document)
    for block, plural in (("service", "services"), ("check", "checks")):
        blocks = found.pop(block, None)
        if blocks is not None:
            items = blocks if isinstance(blocks, list) else [blocks]
            found[plural] = list(found.get(plural) or []) + items
    found["services"] = [_unblock_service(s) for s in found.get("services") or []]
    return found


def _unblock_service(service: Any) -> Any:
    if not isinstance(service, dict):
        return service
    fixed = dict(service)
    blocks = fixed.pop("check", None)
    if isinstance(blocks, list):
        fixed["checks"] = list(fixed.get("checks") or []) + blocks
    elif blocks is not None:
        fixed["check"] = blocks
    return fixed


def load(api: AgentEndpoints) -> None:
    """Register what the config directories hold, deregister what they held and no longer do."""
    services, checks = read_definitions(api.config_dirs)
    for definition in services:  # every refusal before any change
        for check in [definition.get("check"), *(definition.get("checks") or [])]:
            if check:
                api.refuse_unrunnable(canonical(check))
    for definition in checks:
        api.refuse_unrunnable(definition)
    service_ids, check_ids = set(), set()
    for definition in services:
        service_ids.add(api.register_service(definition, replace_checks=True))
    for definition in checks:
        check_ids.add(api.register_check(definition))
    old_services, old_checks = api.from_config
    api.deregister_own(old_services - service_ids, old_checks - check_ids)
    api.from_config = (service_ids, check_ids)


def reload(api: AgentEndpoints | ConsulApi) -> str | None:
    """SIGHUP and `/v1/agent/reload`: load again; on a bad file keep what runs and say why."""
    try:
        load(api)
    except (ConfigError, StoreError) as error:
        message = f"config reload failed: {error}"
        output.log(f"==> {message}")
        return message
    output.log(f"==> reloaded {', '.join(str(d) for d in api.config_dirs)}")
    return None
