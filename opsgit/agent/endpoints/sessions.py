"""`/v1/session`."""

from __future__ import annotations

import re
from typing import Any

from opsgit.agent.core import ApiCore
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import (
    canonical,
    duration,
    json_body,
    json_response,
)
from opsgit.agent.store import DEFAULT_LOCK_DELAY, StoreError


class SessionsEndpoints(ApiCore):
    async def session_create(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        body = json_body(request, optional=True)
        fields = canonical(body) if body is not None else {}
        ttl_raw = fields.get("ttl") or ""
        ttl = duration(ttl_raw, "TTL") if ttl_raw else None
        lock_delay = duration(fields["lockdelay"], "LockDelay", nanoseconds=True) if "lockdelay" in fields \
            else DEFAULT_LOCK_DELAY
        checks = fields.get("checks", fields.get("nodechecks"))
        session, change = self.store.session_create(
            name=str(fields.get("name") or ""), node=fields.get("node"), lock_delay=lock_delay,
            behavior=str(fields.get("behavior") or "release").lower(), ttl=ttl,
            checks=list(checks) if checks is not None else None)
        self.commit(change)
        self._arm_session(session.id)
        return json_response({"ID": session.id})

    async def session_destroy(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        if not match["id"]:
            raise StoreError(400, "Missing session")
        timer = self.session_timers.pop(match["id"], None)
        if timer is not None:
            timer.cancel()
        self.commit(self.store.session_destroy(match["id"]))
        return json_response(True)

    async def session_renew(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        session = self.store.sessions.get(match["id"])
        if session is None:
            return HttpResponse(404, f"Session id '{match['id']}' not found".encode(), content_type="text/plain")
        self._arm_session(session.id)
        return json_response([session.to_json()], self.store.sessions_index)

    async def session_info(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        def compute() -> tuple[int, Any]:
            found = self.store.sessions.get(match["id"])
            return self.store.sessions_index, [found.to_json()] if found else []

        index, data = await self.blocking(request, compute, ("table", "sessions"))
        return json_response(data, index)

    async def session_list(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        index, data = await self.blocking(
            request, lambda: (self.store.sessions_index, [s.to_json() for s in self.store.sessions.values()]),
            ("table", "sessions"))
        return json_response(data, index)

    async def session_node(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        index, data = await self.blocking(
            request, lambda: (self.store.sessions_index,
                              [s.to_json() for s in self.store.sessions_of_node(match["node"])]),
            ("table", "sessions"))
        return json_response(data, index)
