"""`/v1/catalog`."""

from __future__ import annotations

import re
from typing import Any

from opsgit.agent.core import ApiCore
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import (
    agent_service_json,
    canonical,
    catalog_service_json,
    check_fields,
    json_body,
    json_response,
    node_json,
    service_fields,
)
from opsgit.agent.store import StoreError


class CatalogEndpoints(ApiCore):
    async def catalog_register(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(json_body(request))
        node_name = fields.get("node")
        if not node_name:
            raise StoreError(400, "Must provide node")
        address = fields.get("address")
        if not address and node_name not in self.store.nodes:
            raise StoreError(400, "Must provide address")
        node = {"Node": node_name, "Address": address or self.store.nodes[node_name]["Address"]}
        for source, target in (("id", "ID"), ("taggedaddresses", "TaggedAddresses"), ("nodemeta", "Meta"),
                               ("datacenter", "Datacenter")):
            if source in fields:
                node[target] = fields[source]
        service = service_fields(canonical(fields["service"]), node["Address"]) if fields.get("service") else None
        raw_checks = list(fields.get("checks") or []) + ([fields["check"]] if fields.get("check") else [])
        checks = [check_fields(canonical(c), service) for c in raw_checks]
        self.commit(self.store.register(node, service, checks))
        return json_response(True)

    async def catalog_deregister(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(json_body(request))
        if not fields.get("node"):
            raise StoreError(400, "Must provide node")
        self.commit(self.store.deregister(fields["node"], fields.get("serviceid"), fields.get("checkid")))
        return json_response(True)

    async def catalog_datacenters(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return json_response([self.store.datacenter])

    async def catalog_nodes(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        rows = self.row_filter(request)
        meta = self.node_meta(request)

        def compute() -> tuple[int, Any]:
            nodes = [node_json(n) for name, n in sorted(self.store.nodes.items()) if meta(name)]
            return self.store.catalog_index, rows.rows(nodes)

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)

    async def catalog_services(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        rows = self.row_filter(request)
        meta = self.node_meta(request)

        def compute() -> tuple[int, Any]:
            services: dict[str, set[str]] = {}
            for (node_name, _), service in sorted(self.store.services.items()):
                if not meta(node_name):
                    continue
                # the filter sees each instance as /catalog/service shows it, before they are folded
                if rows.active and not rows.matches(catalog_service_json(self.store.nodes[node_name], service)):
                    continue
                services.setdefault(service["Service"], set()).update(service.get("Tags") or [])
            return self.store.catalog_index, {name: sorted(tags) for name, tags in sorted(services.items())}

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)

    async def catalog_service(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        tags = [value for key, value in request.query if key == "tag"]
        rows = self.row_filter(request)
        meta = self.node_meta(request)

        def compute() -> tuple[int, Any]:
            found = []
            for node, service, _ in self.store.service_entries(match["name"]):
                if all(tag in (service.get("Tags") or []) for tag in tags) and meta(node["Node"]):
                    found.append(catalog_service_json(node, service))
            return self.store.catalog_index, rows.rows(found)

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)

    async def catalog_node(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        rows = self.row_filter(request)

        def compute() -> tuple[int, Any]:
            node = self.store.nodes.get(match["name"])
            if node is None:
                return self.store.catalog_index, None
            services = {s["ID"]: agent_service_json(s) for (n, _), s in sorted(self.store.services.items())
                        if n == match["name"]}
            # Consul filters the node's services
            return self.store.catalog_index, {"Node": node_json(node), "Services": rows.values(services)}

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)
