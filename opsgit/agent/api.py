"""The Consul HTTP API of the dev agent: the routes and their dispatch. The endpoints are in
`agent/endpoints/` (one module per family of Consul's API), what they share (the store,
durability, blocking queries, session and check timers) in `core.py`, the JSON shapes in `shapes.py`.

Answers are shaped as Consul's are (JSON field names, status codes, error texts where clients
match on them), with `X-Consul-Index` (at least 1, 404s included), `X-Consul-KnownLeader` and
`X-Consul-LastContact` on every answer: py-consul fails without the first, the Go client
without the last.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from opsgit.agent.endpoints.agent import AgentEndpoints
from opsgit.agent.endpoints.catalog import CatalogEndpoints
from opsgit.agent.endpoints.events import EventsEndpoints
from opsgit.agent.endpoints.health import HealthEndpoints
from opsgit.agent.endpoints.kv import KvEndpoints
from opsgit.agent.endpoints.sessions import SessionsEndpoints
from opsgit.agent.endpoints.status import StatusEndpoints
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.persist import Database
from opsgit.agent.store import Store, StoreError

# Consul answers these without a token (clients probe them before they have one).
OPEN_PATHS = frozenset({"/v1/status/leader", "/v1/status/peers"})
# The reads served by Consul's servers with a consistency mode (the agent's own endpoints have none).
CONSISTENT_READS = ("/v1/kv/", "/v1/catalog/", "/v1/health/", "/v1/session/")


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


Route = tuple[str, re.Pattern[str], Callable[[HttpRequest, re.Match[str]], Awaitable[HttpResponse]]]


class ConsulApi(KvEndpoints, SessionsEndpoints, CatalogEndpoints, HealthEndpoints, AgentEndpoints, EventsEndpoints,
                StatusEndpoints):
    def __init__(self, store: Store, database: Database | None = None, token: str | None = None, *,
                 enable_script_checks: bool = False) -> None:
        super().__init__(store, database, token, enable_script_checks=enable_script_checks)
        self.routes: list[Route] = self._routes()

    async def handle(self, request: HttpRequest) -> HttpResponse:
        given = self._token_of(request)
        if self.token is not None and request.path not in OPEN_PATHS and not _same(given, self.token):
            # Consul's two answers: no token is the anonymous token, which may do nothing here;
            # a token it does not know is "ACL not found". No X-Consul-Index: a client without
            # the token must not watch write activity.
            return HttpResponse(403, b"Permission denied" if not given else b"ACL not found",
                                content_type="text/plain")
        datacenter = request.arg("dc")
        if datacenter and datacenter != self.store.datacenter and request.path.startswith("/v1/"):
            # Consul's answer for a datacenter it has no route to (structs.ErrNoDCPath)
            return HttpResponse(500, b"No path to datacenter", content_type="text/plain")
        allowed: list[str] = []
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if not match:
                continue
            if request.method != method and not (method == "GET" and request.method == "HEAD"):
                allowed.append(method)
                continue
            try:
                response = await handler(request, match)
            except StoreError as error:
                response = HttpResponse(error.status, str(error).encode(), content_type="text/plain")
            if request.method in ("GET", "HEAD") and request.path.startswith(CONSISTENT_READS):
                # what Consul's servers tell a read about the consistency it got
                mode = "stale" if request.has("stale") else "consistent" if request.has("consistent") else "leader"
                response.headers.append(("X-Consul-Effective-Consistency", mode))
            return self._respond(response)
        if allowed:
            return self._respond(HttpResponse(405, b"method not allowed", [("Allow", ", ".join(sorted(allowed)))],
                                              content_type="text/plain"))
        return self._respond(HttpResponse(404, b"404 page not found", content_type="text/plain"))

    def _token_of(self, request: HttpRequest) -> str | None:
        if request.arg("token"):
            return request.arg("token")
        if "x-consul-token" in request.headers:
            return request.headers["x-consul-token"]
        authorization = request.headers.get("authorization", "")
        return authorization[7:].strip() if authorization.lower().startswith("bearer ") else None

    def _respond(self, response: HttpResponse) -> HttpResponse:
        names = {name.lower() for name, _ in response.headers}
        if "x-consul-index" not in names:
            response.headers.append(("X-Consul-Index", str(max(1, self.store.index))))
        response.headers += [("X-Consul-KnownLeader", "true"), ("X-Consul-LastContact", "0"),
                             ("X-Consul-Default-Acl-Policy", "deny" if self.token else "allow")]
        return response

    def _routes(self) -> list[Route]:
        table: list[tuple[str, str, Callable[[HttpRequest, re.Match[str]], Awaitable[HttpResponse]]]] = [
            ("GET", r"/v1/kv/(?P<key>.*)", self.kv_get),
            ("PUT", r"/v1/kv/(?P<key>.*)", self.kv_put),
            ("DELETE", r"/v1/kv/(?P<key>.*)", self.kv_delete),
            ("PUT", r"/v1/txn", self.txn),
            ("PUT", r"/v1/session/create", self.session_create),
            ("PUT", r"/v1/session/destroy/(?P<id>[^/]*)", self.session_destroy),
            ("PUT", r"/v1/session/renew/(?P<id>[^/]*)", self.session_renew),
            ("GET", r"/v1/session/info/(?P<id>[^/]*)", self.session_info),
            ("GET", r"/v1/session/list", self.session_list),
            ("GET", r"/v1/session/node/(?P<node>[^/]+)", self.session_node),
            ("PUT", r"/v1/catalog/register", self.catalog_register),
            ("PUT", r"/v1/catalog/deregister", self.catalog_deregister),
            ("GET", r"/v1/catalog/datacenters", self.catalog_datacenters),
            ("GET", r"/v1/catalog/nodes", self.catalog_nodes),
            ("GET", r"/v1/catalog/services", self.catalog_services),
            ("GET", r"/v1/catalog/service/(?P<name>[^/]+)", self.catalog_service),
            ("GET", r"/v1/catalog/node/(?P<name>[^/]+)", self.catalog_node),
            ("GET", r"/v1/health/service/(?P<name>[^/]+)", self.health_service),
            ("GET", r"/v1/health/checks/(?P<name>[^/]+)", self.health_checks),
            ("GET", r"/v1/health/node/(?P<name>[^/]+)", self.health_node),
            ("GET", r"/v1/health/state/(?P<state>[^/]+)", self.health_state),
            ("GET", r"/v1/agent/self", self.agent_self),
            ("GET", r"/v1/agent/members", self.agent_members),
            ("GET", r"/v1/agent/services", self.agent_services),
            ("GET", r"/v1/agent/service/(?P<id>[^/]+)", self.agent_service),
            ("GET", r"/v1/agent/checks", self.agent_checks),
            ("PUT", r"/v1/agent/service/register", self.agent_service_register),
            ("PUT", r"/v1/agent/reload", self.agent_reload),
            ("PUT", r"/v1/agent/maintenance", self.agent_maintenance),
            ("PUT", r"/v1/agent/service/maintenance/(?P<id>[^/]+)", self.agent_service_maintenance),
            ("PUT", r"/v1/agent/service/deregister/(?P<id>[^/]+)", self.agent_service_deregister),
            ("PUT", r"/v1/agent/check/register", self.agent_check_register),
            ("PUT", r"/v1/agent/check/deregister/(?P<id>[^/]+)", self.agent_check_deregister),
            ("PUT", r"/v1/agent/check/(?P<verb>pass|warn|fail)/(?P<id>[^/]+)", self.agent_check_ttl),
            ("PUT", r"/v1/agent/check/update/(?P<id>[^/]+)", self.agent_check_update),
            ("PUT", r"/v1/event/fire/(?P<name>.*)", self.event_fire),
            ("GET", r"/v1/event/list", self.event_list),
            ("GET", r"/v1/status/leader", self.status_leader),
            ("GET", r"/v1/status/peers", self.status_peers),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]
