"""`/v1/status`."""

from __future__ import annotations

import re

from opsgit.agent.core import ApiCore
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import (
    json_response,
)


class StatusEndpoints(ApiCore):
    async def status_leader(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return json_response("127.0.0.1:8300")

    async def status_peers(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return json_response(["127.0.0.1:8300"])
