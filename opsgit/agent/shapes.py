"""The JSON shapes of Consul's answers and the parsing of its requests: field names, status codes
and error texts as Consul has them, where clients match on them."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import Any

from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.store import VERSION, Entry, StoreError
from opsgit.consul.durations import parse_duration

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
MAX_TXN_OPS = 64


# The JSON types of the request fields Consul's endpoints read (its Go structs), by canonical
# name: a field of another type is refused with 400 before anything uses it, as Consul does.
NUMBER = (int, float)
DURATION = (str, int, float)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "id": (str,), "node": (str,), "address": (str,), "datacenter": (str,),
    "service": (dict, str), "serviceid": (str,), "checkid": (str,), "check": (dict,), "checks": (list,),
    "nodechecks": (list,), "servicechecks": (list,), "tags": (list,), "port": (int,), "meta": (dict,),
    "nodemeta": (dict,), "taggedaddresses": (dict,), "weights": (dict,), "enabletagoverride": (bool,),
    "behavior": (str,), "ttl": DURATION, "lockdelay": DURATION, "interval": DURATION, "timeout": DURATION,
    "deregistercriticalserviceafter": DURATION, "status": (str,), "output": (str,), "notes": (str,),
    "http": (str,), "tcp": (str,), "method": (str,), "header": (dict,), "tlsskipverify": (bool,),
}
GO_TYPES = {str: "string", int: "int", float: "float64", bool: "bool", dict: "object", list: "array"}


def canonical(data: Any) -> dict[str, Any]:
    """Consul matches JSON field names case-insensitively (Go's encoding/json), and the agent's
    endpoints take snake_case too; py-consul sends `lockdelay`, `ttl`, `tagged_addresses`. Known
    fields are checked against their JSON type (null is absent)."""
    if not isinstance(data, dict):
        raise StoreError(400, "Request decode failed: expected a JSON object")
    fields = {str(key).replace("_", "").lower(): value for key, value in data.items()}
    for name, value in fields.items():
        wanted = FIELD_TYPES.get(name)
        if wanted is None or value is None:
            continue
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            raise StoreError(400, f"Request decode failed: json: cannot unmarshal {json_kind(value)} into Go "
                                  f"struct field {name} of type {GO_TYPES[wanted[0]]}")
    return fields


def json_kind(value: Any) -> str:
    """What a decoded JSON value was, in the words of Go's decoder errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    kinds: dict[type, str] = {str: "string", dict: "object", list: "array"}
    return kinds.get(type(value), type(value).__name__)


def json_body(request: HttpRequest, *, optional: bool = False) -> Any:
    if not request.body.strip():
        if optional:
            return None
        raise StoreError(400, "Request decode failed: EOF")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as error:
        raise StoreError(400, f"Request decode failed: {error}") from None
    except RecursionError:
        raise StoreError(400, "Request decode failed: exceeded max depth") from None


def duration(value: Any, what: str, *, nanoseconds: bool = False) -> float:
    if isinstance(value, float) and not math.isfinite(value):
        raise StoreError(400, f"Request decode failed: invalid {what} duration {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Consul: a bare number is nanoseconds, but one below 1000 means seconds (a common mistake)
        return float(value) if not nanoseconds or value < 1000 else value / 1e9
    try:
        return parse_duration(str(value))
    except ValueError:
        raise StoreError(400, f"Request decode failed: invalid {what} duration {value!r}") from None


def entry_json(entry: Entry, *, with_value: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"LockIndex": entry.lock_index, "Key": entry.key, "Flags": entry.flags,
                            "Value": base64.b64encode(entry.value).decode() if with_value and entry.value else None,
                            "CreateIndex": entry.create_index, "ModifyIndex": entry.modify_index}
    if entry.session:
        data["Session"] = entry.session
    return data


def wake(futures: set[asyncio.Future[None]] | None) -> None:
    for future in futures or ():
        if not future.done():
            future.set_result(None)


def json_response(data: Any, index: int | None = None, *, status: int = 200) -> HttpResponse:
    response = HttpResponse(status, json.dumps(data).encode())
    return with_index(response, index) if index is not None else response


def with_index(response: HttpResponse, index: int) -> HttpResponse:
    response.headers.append(("X-Consul-Index", str(max(1, index))))
    return response


def uint(raw: str | None, name: str) -> int:
    """An unsigned 64-bit query value, as Consul parses it (anything else is 400)."""
    if raw is None or not raw.isascii() or not raw.isdigit() or int(raw) >= 2**64:
        raise StoreError(400, f"Invalid {name}: {raw!r}")
    return int(raw)


def service_fields(fields: dict[str, Any], default_address: str) -> dict[str, Any]:
    name = fields.get("service") or fields.get("name")
    if not name:
        raise StoreError(400, "Must provide service name")
    port = fields.get("port") or 0
    if not isinstance(port, int):
        raise StoreError(400, f"Request decode failed: invalid port {port!r}")
    return {"ID": fields.get("id") or name, "Service": name, "Tags": list(fields.get("tags") or []),
            "Address": fields.get("address") or "", "Meta": dict(fields.get("meta") or {}), "Port": port,
            "TaggedAddresses": dict(fields.get("taggedaddresses") or {}),
            "Weights": fields.get("weights") or {"Passing": 1, "Warning": 1},
            "EnableTagOverride": bool(fields.get("enabletagoverride", False))}


def check_fields(fields: dict[str, Any], service: dict[str, Any] | None) -> dict[str, Any]:
    name = fields.get("name") or fields.get("checkid")
    if not name:
        raise StoreError(400, "Must provide check name")
    status = str(fields.get("status") or "critical")
    if status not in ("passing", "warning", "critical"):
        raise StoreError(400, f"Invalid check status {status!r}")
    service_id = fields.get("serviceid") or (service["ID"] if service else "")
    kind = "ttl" if fields.get("ttl") else "http" if fields.get("http") else "tcp" if fields.get("tcp") else ""
    return {"CheckID": fields.get("checkid") or name, "Name": name, "Status": status,
            "Notes": str(fields.get("notes") or ""), "Output": str(fields.get("output") or ""),
            "ServiceID": service_id, "ServiceName": service["Service"] if service else "",
            "ServiceTags": service["Tags"] if service else [], "Type": kind,
            "Definition": {k: fields[k] for k in ("http", "tcp", "interval", "timeout", "ttl") if k in fields}}


def node_json(node: dict[str, Any]) -> dict[str, Any]:
    return {"ID": node.get("ID", ""), "Node": node["Node"], "Address": node["Address"],
            "Datacenter": node.get("Datacenter", "dc1"), "TaggedAddresses": node.get("TaggedAddresses") or {},
            "Meta": node.get("Meta") or {}, "CreateIndex": node.get("CreateIndex", 1),
            "ModifyIndex": node.get("ModifyIndex", 1)}


def agent_service_json(service: dict[str, Any]) -> dict[str, Any]:
    return {"ID": service["ID"], "Service": service["Service"], "Tags": service.get("Tags") or [],
            "Address": service.get("Address", ""), "Meta": service.get("Meta") or {}, "Port": service.get("Port", 0),
            "TaggedAddresses": service.get("TaggedAddresses") or {},
            "Weights": service.get("Weights") or {"Passing": 1, "Warning": 1},
            "EnableTagOverride": service.get("EnableTagOverride", False), "Datacenter": "dc1",
            "CreateIndex": service.get("CreateIndex", 1), "ModifyIndex": service.get("ModifyIndex", 1)}


def catalog_service_json(node: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    return {"ID": node.get("ID", ""), "Node": node["Node"], "Address": node["Address"],
            "Datacenter": node.get("Datacenter", "dc1"), "TaggedAddresses": node.get("TaggedAddresses") or {},
            "NodeMeta": node.get("Meta") or {}, "ServiceID": service["ID"], "ServiceName": service["Service"],
            "ServiceTags": service.get("Tags") or [], "ServiceAddress": service.get("Address", ""),
            "ServicePort": service.get("Port", 0), "ServiceMeta": service.get("Meta") or {},
            "ServiceTaggedAddresses": service.get("TaggedAddresses") or {},
            "ServiceEnableTagOverride": service.get("EnableTagOverride", False),
            "ServiceWeights": service.get("Weights") or {"Passing": 1, "Warning": 1}, "ServiceKind": "",
            "CreateIndex": service.get("CreateIndex", 1), "ModifyIndex": service.get("ModifyIndex", 1)}


def check_json(check: dict[str, Any]) -> dict[str, Any]:
    return {key: check.get(key, default) for key, default in (
        ("Node", ""), ("CheckID", ""), ("Name", ""), ("Status", "critical"), ("Notes", ""), ("Output", ""),
        ("ServiceID", ""), ("ServiceName", ""), ("ServiceTags", []), ("Type", ""), ("CreateIndex", 1),
        ("ModifyIndex", 1))}


def member(node: dict[str, Any], *, wan: bool = False) -> dict[str, Any]:
    """The agent as a serf member of the LAN pool (port 8301) or, as a server, of the WAN pool
    (8302, named `node.dc`), with the tags a Consul server gossips."""
    datacenter = node.get("Datacenter", "dc1")
    tags = {"acls": "0", "bootstrap": "1", "build": f"{VERSION}:opsgit", "dc": datacenter, "ft_fs": "1",
            "ft_si": "1", "id": node.get("ID", ""), "port": "8300", "raft_vsn": "3", "role": "consul",
            "segment": "", "vsn": "2", "vsn_max": "3", "vsn_min": "2", "wan_join_port": "8302"}
    return {"Name": f"{node['Node']}.{datacenter}" if wan else node["Node"], "Addr": node["Address"],
            "Port": 8302 if wan else 8301, "Tags": tags, "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5,
            "ProtocolCur": 2, "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4}
