"""`/v1/health`."""

from __future__ import annotations

import re
from typing import Any

from opsgit.agent.core import ApiCore
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import (
    agent_service_json,
    check_json,
    json_response,
    node_json,
)
from opsgit.agent.store import StoreError


class HealthEndpoints(ApiCore):
    async def health_service(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        passing = request.has("passing") and request.arg("passing") not in ("0", "false")
        tags = [value for key, value in request.query if key == "tag"]
        row_filter = self.row_filter(request)
        meta = self.node_meta(request)

        def compute() -> tuple[int, Any]:
            rows = []
            for node, service, checks in self.store.service_entries(match["name"]):
                if not all(tag in (service.get("Tags") or []) for tag in tags) or not meta(node["Node"]):
                    continue
                if passing and any(check["Status"] != "passing" for check in checks):
                    continue
                rows.append({"Node": node_json(node), "Service": agent_service_json(service),
                             "Checks": [check_json(c) for c in checks]})
            return self.store.catalog_index, row_filter.rows(rows)

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)

    async def health_checks(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        filtered = self.row_filter(request).rows
        meta = self.node_meta(request)

        def compute() -> tuple[int, Any]:
            return self.store.catalog_index, filtered([check_json(c) for (n, _), c in sorted(self.store.checks.items())
                                                       if c.get("ServiceName") == match["name"] and meta(n)])

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)

    async def health_node(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        filtered = self.row_filter(request).rows

        def compute() -> tuple[int, Any]:
            return self.store.catalog_index, filtered([check_json(c) for (n, _), c in sorted(self.store.checks.items())
                                                       if n == match["name"]])

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)

    async def health_state(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        state = match["state"]
        if state not in ("any", "passing", "warning", "critical"):
            raise StoreError(400, f"Invalid check state {state!r}")
        filtered = self.row_filter(request).rows
        meta = self.node_meta(request)

        def compute() -> tuple[int, Any]:
            return self.store.catalog_index, filtered([check_json(c) for (n, _), c in sorted(self.store.checks.items())
                                                       if (state == "any" or c["Status"] == state) and meta(n)])

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return json_response(data, index)
