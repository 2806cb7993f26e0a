"""`--config-dir DIR`: service and check definitions in Consul's JSON, as opsgit's images ship
them in `/etc/consul.d/` (`{"service": {...}}`, `{"services": [...]}`, `{"check": {...}}`,
`{"checks": [...]}`), loaded at start and again on SIGHUP or `PUT /v1/agent/reload`: what the
files add is registered, what they change is updated, what they no longer hold is deregistered.
Definitions registered through the HTTP API are left alone. HCL files are not read (reported).
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
    """Every service and check definition in the directories' `*.json` files, in file-name order;
    a file that is not such a definition is a ConfigError naming it and its line."""
    services: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for directory in directories:
        if not directory.is_dir():
            raise ConfigError(f"--config-dir {directory} is not a directory")
        for path in sorted(directory.iterdir()):
            if path.suffix == ".hcl":
                output.warn(f"{path}: HCL is not read by the dev agent; write it as JSON")
                continue
            if path.suffix != ".json":
                continue
            try:
                document = json.loads(path.read_text())
            except ValueError as error:
                line = getattr(error, "lineno", None)
                raise ConfigError(f"invalid JSON: {error}", file=str(path), line=line) from None
            if not isinstance(document, dict):
                raise ConfigError("a config file must hold an object with service(s) or check(s)", file=str(path))
            found = canonical(document)
            services += [canonical(s) for s in ([found["service"]] if "service" in found else [])
                         + list(found.get("services") or [])]
            checks += [canonical(c) for c in ([found["check"]] if "check" in found else [])
                       + list(found.get("checks") or [])]
    return services, checks


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
