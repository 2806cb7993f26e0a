"""`/v1/agent`: the local agent's services, checks and members."""

from __future__ import annotations

import json
import re
from typing import Any

from opsgit.agent.core import ApiCore
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import (
    agent_service_json,
    canonical,
    check_fields,
    check_json,
    json_body,
    json_response,
    member,
    service_fields,
)
from opsgit.agent.store import VERSION, StoreError
from opsgit.consul.gobool import GO_BOOLS

NODE_MAINTENANCE = "_node_maintenance"
SERVICE_MAINTENANCE = "_service_maintenance:"
# Consul's default notes (agent/agent.go) when maintenance is enabled without a reason
NODE_REASON = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
SERVICE_REASON = ("Maintenance mode is enabled for this service, but no reason was provided. This is a default "
                  "message.")


def _enable(request: HttpRequest) -> bool:
    """`?enable=` as Go's strconv.ParseBool reads it (py-consul sends `True`)."""
    raw = request.arg("enable")
    if raw is None or raw == "":
        raise StoreError(400, "Missing value for enable")
    if raw not in GO_BOOLS:
        raise StoreError(400, f"Invalid value for enable: {json.dumps(raw)}")
    return GO_BOOLS[raw]


class AgentEndpoints(ApiCore):
    async def agent_self(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        node = self.store.nodes[self.store.node_name]
        return json_response({
            "Config": {"Datacenter": self.store.datacenter, "NodeName": self.store.node_name, "NodeID": node["ID"],
                       "Server": True, "Revision": "opsgit", "Version": VERSION, "PrimaryDatacenter":
                       self.store.datacenter},
            "DebugConfig": {"Datacenter": self.store.datacenter, "NodeName": self.store.node_name},
            "Member": member(node), "Meta": {},
            "Stats": {"consul": {"leader": "true", "server": "true", "leader_addr": f"{node['Address']}:8300",
                                 "known_datacenters": "1", "bootstrap": "false"}},
            "xDS": None})

    async def agent_members(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        wan = request.arg("wan") not in (None, "", "0", "false")
        return json_response([member(self.store.nodes[self.store.node_name], wan=wan)])

    async def agent_services(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        rows = self.row_filter(request)
        services = {sid: agent_service_json(s) for sid, s in self._own_services().items()}
        return json_response(rows.values(services))

    async def agent_service(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        service = self._own_services().get(match["id"])
        if service is None:
            return HttpResponse(404, f"unknown service ID: {match['id']}".encode(), content_type="text/plain")
        return json_response(agent_service_json(service))

    async def agent_checks(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        rows = self.row_filter(request)
        checks = {c["CheckID"]: check_json(c) for (n, _), c in sorted(self.store.checks.items())
                  if n == self.store.node_name and c["CheckID"] != "serfHealth"}
        return json_response(rows.values(checks))

    async def agent_service_register(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self.register_service(canonical(json_body(request)), replace_checks=request.has("replace-existing-checks"))
        return HttpResponse(200, b"")

    def register_service(self, fields: dict[str, Any], *, replace_checks: bool = False) -> str:
        """A service definition (with its checks) on this agent, as the endpoint and a config
        directory give it; its ID."""
        if not fields.get("name"):
            raise StoreError(400, "Missing service name")
        service = service_fields({"service": fields["name"], **fields}, "")
        definitions = list(fields.get("checks") or []) + ([fields["check"]] if fields.get("check") else [])
        checks = []
        for number, definition in enumerate(definitions, start=1):
            spec = canonical(definition)
            self.refuse_unrunnable(spec)
            # a check's ID is `ID` in Consul's definitions (`CheckID` too), else derived from the service
            spec.setdefault("checkid", spec.get("id") or
                            f"service:{service['ID']}" + (f":{number}" if len(definitions) > 1 else ""))
            spec.setdefault("name", f"Service '{service['Service']}' check")
            checks.append((check_fields(spec, service), spec))
        if replace_checks:
            self.store.deregister(self.store.node_name, service_id=service["ID"])
        node = dict(self.store.nodes[self.store.node_name])
        self.commit(self.store.register(node, service, [check for check, _ in checks]))
        for check, spec in checks:
            self._arm_check(check["CheckID"], spec)
        return str(service["ID"])

    async def agent_service_deregister(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self.deregister_own({match["id"]}, set())
        return HttpResponse(200, b"")

    async def agent_check_register(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self.register_check(canonical(json_body(request)))
        return HttpResponse(200, b"")

    def register_check(self, spec: dict[str, Any]) -> str:
        """A check definition on this agent; its ID."""
        if not spec.get("name"):
            raise StoreError(400, "Missing check name")
        self.refuse_unrunnable(spec)
        spec.setdefault("checkid", spec.get("id") or spec["name"])
        service = self.store.services.get((self.store.node_name, spec.get("serviceid") or ""))
        check = check_fields(spec, service)
        self.commit(self.store.register(dict(self.store.nodes[self.store.node_name]), None, [check]))
        self._arm_check(check["CheckID"], spec)
        return str(check["CheckID"])

    def deregister_own(self, service_ids: set[str], check_ids: set[str]) -> None:
        for service_id in service_ids:
            for check_id in [c["CheckID"] for (n, _), c in self.store.checks.items()
                             if n == self.store.node_name and c.get("ServiceID") == service_id]:
                self._disarm_check(check_id)
            if (self.store.node_name, service_id) in self.store.services:
                self.commit(self.store.deregister(self.store.node_name, service_id=service_id))
        for check_id in check_ids:
            self._disarm_check(check_id)
            if (self.store.node_name, check_id) in self.store.checks:
                self.commit(self.store.deregister(self.store.node_name, check_id=check_id))

    async def agent_reload(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """`PUT /v1/agent/reload`: read the config directories again, as SIGHUP does."""
        if self.config_dirs:
            from opsgit.agent.config_dir import reload

            error = reload(self)
            if error:
                return HttpResponse(500, error.encode(), content_type="text/plain")
        return HttpResponse(200, b"")

    async def agent_maintenance(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """Node maintenance: a critical check on the node takes every service on it out of
        health answers and DNS until it is disabled."""
        self._maintain(_enable(request), NODE_MAINTENANCE, "Node Maintenance Mode",
                       request.arg("reason") or NODE_REASON, "")
        return HttpResponse(200, b"")

    async def agent_service_maintenance(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        service = self._own_services().get(match["id"])
        enable = _enable(request)
        if service is None:
            return HttpResponse(404, f'No service registered with ID "{match["id"]}"'.encode(),
                                content_type="text/plain")
        self._maintain(enable, SERVICE_MAINTENANCE + service["ID"], "Service Maintenance Mode",
                       request.arg("reason") or SERVICE_REASON, service["ID"])
        return HttpResponse(200, b"")

    def _maintain(self, enable: bool, check_id: str, name: str, notes: str, service_id: str) -> None:
        if enable:
            check = {"CheckID": check_id, "Name": name, "Status": "critical", "Notes": notes, "Output": "",
                     "ServiceID": service_id, "Type": "maintenance"}
            self.commit(self.store.register(dict(self.store.nodes[self.store.node_name]), None, [check]))
        elif (self.store.node_name, check_id) in self.store.checks:
            self.commit(self.store.deregister(self.store.node_name, check_id=check_id))

    async def agent_check_deregister(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self._disarm_check(match["id"])
        self.commit(self.store.deregister(self.store.node_name, check_id=match["id"]))
        return HttpResponse(200, b"")

    async def agent_check_ttl(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[match["verb"]]
        self.update_check(match["id"], status, request.arg("note") or "", ttl_update=True)
        return HttpResponse(200, b"")

    async def agent_check_update(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(json_body(request))
        status = str(fields.get("status") or "")
        if status not in ("passing", "warning", "critical"):
            raise StoreError(400, f"Invalid check status: {status!r}")
        self.update_check(match["id"], status, str(fields.get("output") or ""), ttl_update=True)
        return HttpResponse(200, b"")
