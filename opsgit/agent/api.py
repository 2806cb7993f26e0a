"""The Consul HTTP API of the dev agent: routes, blocking queries, session and check timers.

Answers are shaped as Consul's are (JSON field names, status codes, error texts where clients
match on them), with `X-Consul-Index` (at least 1, 404s included), `X-Consul-KnownLeader` and
`X-Consul-LastContact` on every answer: py-consul fails without the first, the Go client
without the last.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.persist import Database
from opsgit.agent.store import DEFAULT_LOCK_DELAY, Change, Entry, Store, StoreError
from opsgit.consul.durations import parse_duration

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
MAX_TXN_OPS = 64
VERSION = "1.22.0"

Route = tuple[str, re.Pattern[str], Callable[[HttpRequest, re.Match[str]], Awaitable[HttpResponse]]]


def canonical(data: Any) -> dict[str, Any]:
    """Consul matches JSON field names case-insensitively (Go's encoding/json), and the agent's
    endpoints take snake_case too; py-consul sends `lockdelay`, `ttl`, `tagged_addresses`."""
    if not isinstance(data, dict):
        raise StoreError(400, "Request decode failed: expected a JSON object")
    return {str(key).replace("_", "").lower(): value for key, value in data.items()}


def _json_body(request: HttpRequest, *, optional: bool = False) -> Any:
    if not request.body.strip():
        if optional:
            return None
        raise StoreError(400, "Request decode failed: EOF")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as error:
        raise StoreError(400, f"Request decode failed: {error}") from None


def _duration(value: Any, what: str, *, nanoseconds: bool = False) -> float:
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


class ConsulApi:
    def __init__(self, store: Store, database: Database | None = None, token: str | None = None) -> None:
        self.store = store
        self.database = database
        self.token = token
        self.key_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.prefix_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.table_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.session_timers: dict[str, asyncio.TimerHandle] = {}
        self.check_timers: dict[str, asyncio.TimerHandle] = {}
        self.check_ttls: dict[str, float] = {}
        self.probes: dict[str, asyncio.Task[None]] = {}
        self.routes: list[Route] = self._routes()

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse:
        if self.token is not None and self._token_of(request) != self.token:
            return self._respond(HttpResponse(403, b"Permission denied", content_type="text/plain"))
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
            ("PUT", r"/v1/agent/service/deregister/(?P<id>[^/]+)", self.agent_service_deregister),
            ("PUT", r"/v1/agent/check/register", self.agent_check_register),
            ("PUT", r"/v1/agent/check/deregister/(?P<id>[^/]+)", self.agent_check_deregister),
            ("PUT", r"/v1/agent/check/(?P<verb>pass|warn|fail)/(?P<id>[^/]+)", self.agent_check_ttl),
            ("PUT", r"/v1/agent/check/update/(?P<id>[^/]+)", self.agent_check_update),
            ("GET", r"/v1/status/leader", self.status_leader),
            ("GET", r"/v1/status/peers", self.status_peers),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    # -- writes, durability and waking ------------------------------------------------------

    def commit(self, change: Change | None) -> None:
        """Make a change durable, then wake what watches it. Called before answering."""
        if change is None:
            return
        if self.database is not None:
            self.database.save(self.store, change)
        for key in change.keys:
            _wake(self.key_waiters.pop(key, None))
            for prefix in [p for p in self.prefix_waiters if key.startswith(p)]:
                _wake(self.prefix_waiters.pop(prefix))
        for table in change.tables:
            _wake(self.table_waiters.pop(table, None))

    async def blocking(self, request: HttpRequest, compute: Callable[[], tuple[int, Any]],
                       watch: tuple[str, str]) -> tuple[int, Any]:
        """Answer now, or once the resource's index passes `?index`, or at `?wait` (+ jitter)."""
        index, wait = self._blocking_params(request)
        found, payload = compute()
        if index <= 0 or found > index:
            return max(1, found), payload
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait + random.uniform(0, wait / 16)
        kind, name = watch
        waiters = {"key": self.key_waiters, "prefix": self.prefix_waiters, "table": self.table_waiters}[kind]
        while found <= index:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            future: asyncio.Future[None] = loop.create_future()
            waiters.setdefault(name, set()).add(future)
            try:
                await asyncio.wait([future], timeout=remaining)
            finally:
                pending = waiters.get(name)
                if pending is not None:
                    pending.discard(future)
                    if not pending:
                        waiters.pop(name, None)
            found, payload = compute()
        return max(1, found), payload

    def _blocking_params(self, request: HttpRequest) -> tuple[int, float]:
        raw_index = request.arg("index")
        index = 0
        if raw_index:
            if not raw_index.isdigit():
                raise StoreError(400, "Invalid index")
            index = int(raw_index)
        wait = DEFAULT_WAIT
        raw_wait = request.arg("wait")
        if raw_wait:
            try:
                wait = parse_duration(raw_wait)
            except ValueError:
                raise StoreError(400, "Invalid wait time") from None
            if wait < 0:
                raise StoreError(400, "Invalid wait time")
        return index, min(wait, MAX_WAIT)

    @staticmethod
    def _consistency(request: HttpRequest) -> None:
        if request.has("stale") and request.has("consistent"):
            raise StoreError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")

    # -- KV ------------------------------------------------------------------------------------

    async def kv_get(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self._consistency(request)
        key = match["key"]
        store = self.store
        if request.has("keys"):
            separator = request.arg("separator") or request.arg("seperator") or ""

            def compute_keys() -> tuple[int, Any]:
                found: list[str] = []
                for name in store.keys_under(key):
                    if separator:
                        cut = name.find(separator, len(key))
                        name = name[:cut + len(separator)] if cut >= 0 else name
                    if not found or found[-1] != name:
                        found.append(name)
                return store.prefix_index(key), found

            index, keys = await self.blocking(request, compute_keys, ("prefix", key))
            if not keys and key:
                return _with_index(HttpResponse(404), index)
            return _json(keys, index)
        if request.has("recurse"):
            def compute_tree() -> tuple[int, Any]:
                return store.prefix_index(key), [entry_json(store.kv[k]) for k in store.keys_under(key)]

            index, entries = await self.blocking(request, compute_tree, ("prefix", key))
            if not entries:
                return _with_index(HttpResponse(404), index)
            return _json(entries, index)
        if not key:
            raise StoreError(400, "Missing key name")

        def compute_one() -> tuple[int, Any]:
            return store.key_index(key), store.kv.get(key)

        index, entry = await self.blocking(request, compute_one, ("key", key))
        if entry is None:
            return _with_index(HttpResponse(404), index)
        if request.has("raw"):
            return _with_index(HttpResponse(200, entry.value, [("X-Content-Type-Options", "nosniff")],
                                            content_type="text/plain; charset=utf-8"), index)
        return _json([entry_json(entry)], index)

    async def kv_put(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        key = match["key"]
        if not key:
            raise StoreError(400, "Missing key name")
        chosen = [name for name in ("cas", "acquire", "release") if request.has(name)]
        if len(chosen) > 1:
            raise StoreError(400, "Conflicting flags: " + ", ".join(f"{name}=" for name in chosen))
        flags = _uint(request.arg("flags"), "flags") if request.has("flags") else 0
        cas = _uint(request.arg("cas"), "cas") if request.has("cas") else None
        ok, change = self.store.kv_set(key, request.body, flags, cas=cas, acquire=request.arg("acquire"),
                                       release=request.arg("release"))
        self.commit(change)
        return _json(ok)

    async def kv_delete(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        recurse = request.has("recurse")
        cas = _uint(request.arg("cas"), "cas") if request.has("cas") else None
        if recurse and cas is not None:
            raise StoreError(400, "Conflicting flags: cas=, recurse=")
        if not match["key"] and not recurse:
            raise StoreError(400, "Missing key name")
        ok, change = self.store.kv_delete(match["key"], recurse=recurse, cas=cas)
        self.commit(change)
        return _json(ok)

    async def txn(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        operations = _json_body(request)
        if not isinstance(operations, list):
            raise StoreError(400, "Failed to parse body: expected a list of operations")
        if len(operations) > MAX_TXN_OPS:
            raise StoreError(413, f"Transaction contains too many operations ({len(operations)} > {MAX_TXN_OPS})")
        from opsgit.agent.txn import run_transaction

        results, errors, change = run_transaction(self.store, operations)
        if errors:
            return _json({"Results": None, "Errors": errors}, status=409)
        self.commit(change)
        return _json({"Results": results, "Errors": None})

    # -- sessions ------------------------------------------------------------------------------

    async def session_create(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        body = _json_body(request, optional=True)
        fields = canonical(body) if body is not None else {}
        ttl_raw = fields.get("ttl") or ""
        ttl = _duration(ttl_raw, "TTL") if ttl_raw else None
        lock_delay = _duration(fields["lockdelay"], "LockDelay", nanoseconds=True) if "lockdelay" in fields \
            else DEFAULT_LOCK_DELAY
        checks = fields.get("checks", fields.get("nodechecks"))
        session, change = self.store.session_create(
            name=str(fields.get("name") or ""), node=fields.get("node"), lock_delay=lock_delay,
            behavior=str(fields.get("behavior") or "release").lower(), ttl=ttl,
            checks=list(checks) if checks is not None else None)
        self.commit(change)
        self._arm_session(session.id)
        return _json({"ID": session.id})

    def _arm_session(self, session_id: str) -> None:
        timer = self.session_timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        session = self.store.sessions.get(session_id)
        if session is not None and session.ttl:
            loop = asyncio.get_running_loop()
            # Consul promises only "not before the TTL"; expiring at the TTL keeps hand-over prompt.
            self.session_timers[session_id] = loop.call_later(session.ttl, self._expire_session, session_id)

    def _expire_session(self, session_id: str) -> None:
        self.session_timers.pop(session_id, None)
        self.commit(self.store.session_destroy(session_id))

    def arm_loaded_sessions(self) -> None:
        for session_id in list(self.store.sessions):
            self._arm_session(session_id)

    async def session_destroy(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        if not match["id"]:
            raise StoreError(400, "Missing session")
        timer = self.session_timers.pop(match["id"], None)
        if timer is not None:
            timer.cancel()
        self.commit(self.store.session_destroy(match["id"]))
        return _json(True)

    async def session_renew(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        session = self.store.sessions.get(match["id"])
        if session is None:
            return HttpResponse(404, f"Session id '{match['id']}' not found".encode(), content_type="text/plain")
        self._arm_session(session.id)
        return _json([session.to_json()], self.store.sessions_index)

    async def session_info(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        def compute() -> tuple[int, Any]:
            found = self.store.sessions.get(match["id"])
            return self.store.sessions_index, [found.to_json()] if found else []

        index, data = await self.blocking(request, compute, ("table", "sessions"))
        return _json(data, index)

    async def session_list(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        index, data = await self.blocking(
            request, lambda: (self.store.sessions_index, [s.to_json() for s in self.store.sessions.values()]),
            ("table", "sessions"))
        return _json(data, index)

    async def session_node(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        index, data = await self.blocking(
            request, lambda: (self.store.sessions_index,
                              [s.to_json() for s in self.store.sessions_of_node(match["node"])]),
            ("table", "sessions"))
        return _json(data, index)

    # -- catalog -------------------------------------------------------------------------------

    async def catalog_register(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(_json_body(request))
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
        service = _service(canonical(fields["service"]), node["Address"]) if fields.get("service") else None
        raw_checks = list(fields.get("checks") or []) + ([fields["check"]] if fields.get("check") else [])
        checks = [_check(canonical(c), service) for c in raw_checks]
        self.commit(self.store.register(node, service, checks))
        return _json(True)

    async def catalog_deregister(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(_json_body(request))
        if not fields.get("node"):
            raise StoreError(400, "Must provide node")
        self.commit(self.store.deregister(fields["node"], fields.get("serviceid"), fields.get("checkid")))
        return _json(True)

    async def catalog_datacenters(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return _json([self.store.datacenter])

    async def catalog_nodes(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        index, data = await self.blocking(
            request, lambda: (self.store.catalog_index, [_node_json(n) for _, n in sorted(self.store.nodes.items())]),
            ("table", "catalog"))
        return _json(data, index)

    async def catalog_services(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        def compute() -> tuple[int, Any]:
            services: dict[str, set[str]] = {}
            for service in self.store.services.values():
                services.setdefault(service["Service"], set()).update(service.get("Tags") or [])
            return self.store.catalog_index, {name: sorted(tags) for name, tags in sorted(services.items())}

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    async def catalog_service(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        tags = [value for key, value in request.query if key == "tag"]

        def compute() -> tuple[int, Any]:
            rows = []
            for node, service, _ in self.store.service_entries(match["name"]):
                if all(tag in (service.get("Tags") or []) for tag in tags):
                    rows.append(_catalog_service_json(node, service))
            return self.store.catalog_index, rows

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    async def catalog_node(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        def compute() -> tuple[int, Any]:
            node = self.store.nodes.get(match["name"])
            if node is None:
                return self.store.catalog_index, None
            services = {s["ID"]: _agent_service_json(s) for (n, _), s in sorted(self.store.services.items())
                        if n == match["name"]}
            return self.store.catalog_index, {"Node": _node_json(node), "Services": services}

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    # -- health --------------------------------------------------------------------------------

    async def health_service(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        passing = request.has("passing") and request.arg("passing") not in ("0", "false")
        tags = [value for key, value in request.query if key == "tag"]

        def compute() -> tuple[int, Any]:
            rows = []
            for node, service, checks in self.store.service_entries(match["name"]):
                if not all(tag in (service.get("Tags") or []) for tag in tags):
                    continue
                if passing and any(check["Status"] != "passing" for check in checks):
                    continue
                rows.append({"Node": _node_json(node), "Service": _agent_service_json(service),
                             "Checks": [_check_json(c) for c in checks]})
            return self.store.catalog_index, rows

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    async def health_checks(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        def compute() -> tuple[int, Any]:
            return self.store.catalog_index, [_check_json(c) for _, c in sorted(self.store.checks.items())
                                              if c.get("ServiceName") == match["name"]]

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    async def health_node(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        def compute() -> tuple[int, Any]:
            return self.store.catalog_index, [_check_json(c) for (n, _), c in sorted(self.store.checks.items())
                                              if n == match["name"]]

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    async def health_state(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        state = match["state"]
        if state not in ("any", "passing", "warning", "critical"):
            raise StoreError(400, f"Invalid check state {state!r}")

        def compute() -> tuple[int, Any]:
            return self.store.catalog_index, [_check_json(c) for _, c in sorted(self.store.checks.items())
                                              if state == "any" or c["Status"] == state]

        index, data = await self.blocking(request, compute, ("table", "catalog"))
        return _json(data, index)

    # -- agent ---------------------------------------------------------------------------------

    async def agent_self(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        node = self.store.nodes[self.store.node_name]
        return _json({
            "Config": {"Datacenter": self.store.datacenter, "NodeName": self.store.node_name, "NodeID": node["ID"],
                       "Server": True, "Revision": "opsgit", "Version": VERSION, "PrimaryDatacenter":
                       self.store.datacenter},
            "DebugConfig": {"Datacenter": self.store.datacenter, "NodeName": self.store.node_name},
            "Member": _member(node), "Meta": {}, "Stats": {"consul": {"leader": "true", "server": "true"}},
            "xDS": None})

    async def agent_members(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return _json([_member(self.store.nodes[self.store.node_name])])

    def _own_services(self) -> dict[str, dict[str, Any]]:
        return {s["ID"]: s for (n, _), s in sorted(self.store.services.items()) if n == self.store.node_name}

    async def agent_services(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return _json({sid: _agent_service_json(s) for sid, s in self._own_services().items()})

    async def agent_service(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        service = self._own_services().get(match["id"])
        if service is None:
            return HttpResponse(404, f"unknown service ID: {match['id']}".encode(), content_type="text/plain")
        return _json(_agent_service_json(service))

    async def agent_checks(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return _json({c["CheckID"]: _check_json(c) for (n, _), c in sorted(self.store.checks.items())
                      if n == self.store.node_name and c["CheckID"] != "serfHealth"})

    async def agent_service_register(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(_json_body(request))
        if not fields.get("name"):
            raise StoreError(400, "Missing service name")
        service = _service({"service": fields["name"], **fields}, "")
        definitions = list(fields.get("checks") or []) + ([fields["check"]] if fields.get("check") else [])
        checks = []
        for number, definition in enumerate(definitions, start=1):
            spec = canonical(definition)
            spec.setdefault("checkid", f"service:{service['ID']}" + (f":{number}" if len(definitions) > 1 else ""))
            spec.setdefault("name", f"Service '{service['Service']}' check")
            checks.append((_check(spec, service), spec))
        if request.has("replace-existing-checks"):
            self.store.deregister(self.store.node_name, service_id=service["ID"])
        node = dict(self.store.nodes[self.store.node_name])
        self.commit(self.store.register(node, service, [check for check, _ in checks]))
        for check, spec in checks:
            self._arm_check(check["CheckID"], spec)
        return HttpResponse(200, b"")

    async def agent_service_deregister(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        for check_id in [c["CheckID"] for (n, _), c in self.store.checks.items()
                         if n == self.store.node_name and c.get("ServiceID") == match["id"]]:
            self._disarm_check(check_id)
        if (self.store.node_name, match["id"]) in self.store.services:
            self.commit(self.store.deregister(self.store.node_name, service_id=match["id"]))
        return HttpResponse(200, b"")

    async def agent_check_register(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        spec = canonical(_json_body(request))
        if not spec.get("name"):
            raise StoreError(400, "Missing check name")
        spec.setdefault("checkid", spec["name"])
        service = self.store.services.get((self.store.node_name, spec.get("serviceid") or ""))
        check = _check(spec, service)
        self.commit(self.store.register(dict(self.store.nodes[self.store.node_name]), None, [check]))
        self._arm_check(check["CheckID"], spec)
        return HttpResponse(200, b"")

    async def agent_check_deregister(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self._disarm_check(match["id"])
        self.commit(self.store.deregister(self.store.node_name, check_id=match["id"]))
        return HttpResponse(200, b"")

    async def agent_check_ttl(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[match["verb"]]
        self.update_check(match["id"], status, request.arg("note") or "", ttl_update=True)
        return HttpResponse(200, b"")

    async def agent_check_update(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        fields = canonical(_json_body(request))
        status = str(fields.get("status") or "")
        if status not in ("passing", "warning", "critical"):
            raise StoreError(400, f"Invalid check status: {status!r}")
        self.update_check(match["id"], status, str(fields.get("output") or ""), ttl_update=True)
        return HttpResponse(200, b"")

    def update_check(self, check_id: str, status: str, output: str, *, ttl_update: bool = False) -> None:
        change, critical = self.store.set_check_status(self.store.node_name, check_id, status, output)
        self.commit(change)
        if critical:
            for session in list(self.store.sessions.values()):
                if check_id in session.checks and session.node == self.store.node_name:
                    self.commit(self.store.session_destroy(session.id))
        if ttl_update and check_id in self.check_ttls:
            self._arm_ttl(check_id, self.check_ttls[check_id])

    def _arm_check(self, check_id: str, spec: dict[str, Any]) -> None:
        self._disarm_check(check_id)
        if spec.get("ttl"):
            self._arm_ttl(check_id, _duration(spec["ttl"], "TTL"))
        elif spec.get("http") or spec.get("tcp"):
            from opsgit.agent.probes import probe_forever

            interval = _duration(spec.get("interval") or "10s", "Interval")
            timeout = _duration(spec.get("timeout") or "10s", "Timeout")
            self.probes[check_id] = asyncio.get_running_loop().create_task(
                probe_forever(self, check_id, spec.get("http"), spec.get("tcp"), interval, timeout))

    def _arm_ttl(self, check_id: str, ttl: float) -> None:
        """A TTL check goes critical unless it is updated within its TTL."""
        timer = self.check_timers.pop(check_id, None)
        if timer is not None:
            timer.cancel()
        self.check_ttls[check_id] = ttl
        self.check_timers[check_id] = asyncio.get_running_loop().call_later(ttl, self._ttl_expired, check_id)

    def _ttl_expired(self, check_id: str) -> None:
        self.check_timers.pop(check_id, None)
        if (self.store.node_name, check_id) in self.store.checks:
            self.update_check(check_id, "critical", "TTL expired")

    def _disarm_check(self, check_id: str) -> None:
        self.check_ttls.pop(check_id, None)
        timer = self.check_timers.pop(check_id, None)
        if timer is not None:
            timer.cancel()
        probe = self.probes.pop(check_id, None)
        if probe is not None:
            probe.cancel()

    # -- status --------------------------------------------------------------------------------

    async def status_leader(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return _json("127.0.0.1:8300")

    async def status_peers(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        return _json(["127.0.0.1:8300"])

    def reap(self) -> None:
        self.store.reap_tombstones(time.monotonic())


# -- shapes ------------------------------------------------------------------------------------

def _wake(futures: set[asyncio.Future[None]] | None) -> None:
    for future in futures or ():
        if not future.done():
            future.set_result(None)


def _json(data: Any, index: int | None = None, *, status: int = 200) -> HttpResponse:
    response = HttpResponse(status, json.dumps(data).encode())
    return _with_index(response, index) if index is not None else response


def _with_index(response: HttpResponse, index: int) -> HttpResponse:
    response.headers.append(("X-Consul-Index", str(max(1, index))))
    return response


def _uint(raw: str | None, name: str) -> int:
    if raw is None or not raw.isdigit():
        raise StoreError(400, f"Invalid {name}: {raw!r}")
    return int(raw)


def _service(fields: dict[str, Any], default_address: str) -> dict[str, Any]:
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


def _check(fields: dict[str, Any], service: dict[str, Any] | None) -> dict[str, Any]:
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


def _node_json(node: dict[str, Any]) -> dict[str, Any]:
    return {"ID": node.get("ID", ""), "Node": node["Node"], "Address": node["Address"],
            "Datacenter": node.get("Datacenter", "dc1"), "TaggedAddresses": node.get("TaggedAddresses") or {},
            "Meta": node.get("Meta") or {}, "CreateIndex": node.get("CreateIndex", 1),
            "ModifyIndex": node.get("ModifyIndex", 1)}


def _agent_service_json(service: dict[str, Any]) -> dict[str, Any]:
    return {"ID": service["ID"], "Service": service["Service"], "Tags": service.get("Tags") or [],
            "Address": service.get("Address", ""), "Meta": service.get("Meta") or {}, "Port": service.get("Port", 0),
            "TaggedAddresses": service.get("TaggedAddresses") or {},
            "Weights": service.get("Weights") or {"Passing": 1, "Warning": 1},
            "EnableTagOverride": service.get("EnableTagOverride", False), "Datacenter": "dc1",
            "CreateIndex": service.get("CreateIndex", 1), "ModifyIndex": service.get("ModifyIndex", 1)}


def _catalog_service_json(node: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    return {"ID": node.get("ID", ""), "Node": node["Node"], "Address": node["Address"],
            "Datacenter": node.get("Datacenter", "dc1"), "TaggedAddresses": node.get("TaggedAddresses") or {},
            "NodeMeta": node.get("Meta") or {}, "ServiceID": service["ID"], "ServiceName": service["Service"],
            "ServiceTags": service.get("Tags") or [], "ServiceAddress": service.get("Address", ""),
            "ServicePort": service.get("Port", 0), "ServiceMeta": service.get("Meta") or {},
            "ServiceTaggedAddresses": service.get("TaggedAddresses") or {},
            "ServiceEnableTagOverride": service.get("EnableTagOverride", False),
            "ServiceWeights": service.get("Weights") or {"Passing": 1, "Warning": 1}, "ServiceKind": "",
            "CreateIndex": service.get("CreateIndex", 1), "ModifyIndex": service.get("ModifyIndex", 1)}


def _check_json(check: dict[str, Any]) -> dict[str, Any]:
    return {key: check.get(key, default) for key, default in (
        ("Node", ""), ("CheckID", ""), ("Name", ""), ("Status", "critical"), ("Notes", ""), ("Output", ""),
        ("ServiceID", ""), ("ServiceName", ""), ("ServiceTags", []), ("Type", ""), ("CreateIndex", 1),
        ("ModifyIndex", 1))}


def _member(node: dict[str, Any]) -> dict[str, Any]:
    return {"Name": node["Node"], "Addr": node["Address"], "Port": 8301, "Status": 1,
            "Tags": {"role": "consul", "dc": node.get("Datacenter", "dc1"), "build": VERSION}}
